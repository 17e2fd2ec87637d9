package s3fault

import (
	"strings"
	"testing"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// MinIO starts a proxy in front of the test MinIO server which (see
// storagetest.MinIO) and returns it with an s3:// URL through it, on a
// fresh prefix that is removed when the test ends, and the keys. The
// proxy closes when the test ends.
func MinIO(t testing.TB, which string, seed uint64) (*Proxy, string, storage.Options) {
	t.Helper()
	u, o := storagetest.MinIO(t, which)
	host, _ := storagetest.Env(t, which)
	p := New(Config{Target: host, AccessKey: o.AccessKey, SecretKey: o.SecretKey, Seed: seed})
	t.Cleanup(p.Close)
	return p, p.Through(u), o
}

// Through rewrites an s3://HOST/... URL to go through the proxy.
func (p *Proxy) Through(u string) string {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return u
	}
	_, path, _ := strings.Cut(rest, "/")
	return "s3://" + p.Host + "/" + path
}
