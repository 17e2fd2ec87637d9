package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/tapeless/tapeless/storage"
)

// Environment variables naming the test MinIO servers and their keys.
const (
	EnvPrimary   = "TAPELESS_TEST_S3_PRIMARY"
	EnvSecondary = "TAPELESS_TEST_S3_SECONDARY"
	EnvAccessKey = "TAPELESS_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "TAPELESS_TEST_S3_SECRET_KEY"
)

// Test bucket names, on both servers.
const (
	Bucket     = "tapeless-test"
	LockBucket = "tapeless-lock"
)

// MinIO returns an s3:// URL on the plain test bucket of the "primary" or
// "secondary" test server, under a fresh random prefix, and the options
// with its keys. The objects under the prefix are removed when the test
// ends. Without the TAPELESS_TEST_S3_* variables, or when the server does
// not answer, the test is skipped — except under CI=true, where it fails:
// S3 tests never silently skip in CI.
func MinIO(t testing.TB, which string) (string, storage.Options) {
	t.Helper()
	return minioURL(t, which, Bucket)
}

// MinIOLock is MinIO on the object-lock bucket. Its objects are not
// removed afterwards: retention forbids it (the bucket has no default
// retention, so unlocked objects could be, but tests leave them).
func MinIOLock(t testing.TB, which string) (string, storage.Options) {
	t.Helper()
	return minioURL(t, which, LockBucket)
}

// Env returns host:port and keys of the test server which, skipping or
// failing the test as MinIO does when they are not available.
func Env(t testing.TB, which string) (host string, o storage.Options) {
	t.Helper()
	var env string
	switch which {
	case "primary":
		env = EnvPrimary
	case "secondary":
		env = EnvSecondary
	default:
		t.Fatalf("storagetest: unknown MinIO server %q (want primary or secondary)", which)
	}
	host = os.Getenv(env)
	o = storage.Options{AccessKey: os.Getenv(EnvAccessKey), SecretKey: os.Getenv(EnvSecretKey)}
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("storagetest: CI=true and "+format, args...)
		}
		t.Skipf("storagetest: "+format+" (run make test, or scripts/minio.sh up and eval \"$(scripts/minio.sh env)\")", args...)
	}
	if host == "" || o.AccessKey == "" || o.SecretKey == "" {
		unavailable("%s, %s or %s is not set", env, EnvAccessKey, EnvSecretKey)
	}
	conn, err := net.DialTimeout("tcp", host, 2*time.Second)
	if err != nil {
		unavailable("MinIO %s at %s does not answer: %v", which, host, err)
	} else {
		conn.Close()
	}
	return host, o
}

var (
	bucketsMu sync.Mutex
	buckets   = map[string]bool{} // host/bucket known to exist
)

// Client returns a minio-go client for the test server, for tests that
// must look behind the Backend (retention, incomplete uploads).
func Client(t testing.TB, host string, o storage.Options) *minio.Client {
	t.Helper()
	c, err := minio.New(host, &minio.Options{Creds: credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""), Secure: false})
	if err != nil {
		t.Fatalf("storagetest: minio client for %s: %v", host, err)
	}
	return c
}

func ensureBucket(t testing.TB, c *minio.Client, host, bucket string) {
	t.Helper()
	bucketsMu.Lock()
	defer bucketsMu.Unlock()
	if buckets[host+"/"+bucket] {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ok, err := c.BucketExists(ctx, bucket)
	if err != nil {
		t.Fatalf("storagetest: check bucket %s on %s: %v", bucket, host, err)
	}
	if !ok {
		err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{ObjectLocking: bucket == LockBucket})
		if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
			t.Fatalf("storagetest: create bucket %s on %s: %v", bucket, host, err)
		}
	}
	buckets[host+"/"+bucket] = true
}

var unsafeRE = regexp.MustCompile(`[^a-zA-Z0-9-]+`)

func minioURL(t testing.TB, which, bucket string) (string, storage.Options) {
	t.Helper()
	host, o := Env(t, which)
	c := Client(t, host, o)
	ensureBucket(t, c, host, bucket)
	name := unsafeRE.ReplaceAllString(t.Name(), "-")
	if len(name) > 60 {
		name = name[:60]
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	prefix := strings.Trim(name, "-") + "-" + hex.EncodeToString(rnd[:])
	if bucket == Bucket {
		t.Cleanup(func() { removePrefix(t, c, bucket, prefix+"/") })
	}
	return "s3://" + host + "/" + bucket + "/" + prefix + "?insecure=1", o
}

// removePrefix deletes what a test left, including incomplete uploads, so
// the 100 MiB round trips do not pile up on the test server.
func removePrefix(t testing.TB, c *minio.Client, bucket, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	objs := make(chan minio.ObjectInfo)
	go func() {
		defer close(objs)
		for oi := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if oi.Err != nil {
				return
			}
			objs <- oi
		}
	}()
	for res := range c.RemoveObjects(ctx, bucket, objs, minio.RemoveObjectsOptions{}) {
		if res.Err != nil {
			t.Logf("storagetest: clean up %s: %v", res.ObjectName, res.Err)
		}
	}
	// MinIO lists uploads only for an exact name or for the whole bucket.
	for u := range c.ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err == nil && strings.HasPrefix(u.Key, prefix) {
			_ = c.RemoveIncompleteUpload(ctx, bucket, u.Key)
		}
	}
}
