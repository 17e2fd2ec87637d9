package storage_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		in   string
		want storage.URL
		str  string
	}{
		{"file:///var/lib/v", storage.URL{Scheme: "file", Path: "/var/lib/v"}, "file:///var/lib/v"},
		{"file:///var/lib/v/", storage.URL{Scheme: "file", Path: "/var/lib/v"}, "file:///var/lib/v"},
		{"s3://127.0.0.1:9000/bkt", storage.URL{Scheme: "s3", Host: "127.0.0.1:9000", Bucket: "bkt"}, "s3://127.0.0.1:9000/bkt"},
		{"s3://minio.example:9000/bkt/vaults/one/?insecure=1", storage.URL{Scheme: "s3", Host: "minio.example:9000", Bucket: "bkt", Prefix: "vaults/one", Insecure: true}, "s3://minio.example:9000/bkt/vaults/one?insecure=1"},
		{"s3://s3.amazonaws.com/bkt?region=eu-west-1", storage.URL{Scheme: "s3", Host: "s3.amazonaws.com", Bucket: "bkt", Region: "eu-west-1"}, "s3://s3.amazonaws.com/bkt?region=eu-west-1"},
	} {
		got, err := storage.ParseURL(c.in)
		if err != nil {
			t.Errorf("ParseURL(%q) = %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseURL(%q) = %+v, want %+v", c.in, got, c.want)
		}
		if got.String() != c.str {
			t.Errorf("ParseURL(%q).String() = %q, want %q", c.in, got.String(), c.str)
		}
	}
}

// TestBadURL: each bad URL ends in one line that names the URL, without
// any secret in it, and says what form is expected.
func TestBadURL(t *testing.T) {
	const secret = "hunter2-very-secret"
	for _, c := range []struct{ in, shows string }{
		{"", `""`},
		{"vault", `"vault"`},
		{"ftp://host/bucket", "unsupported scheme"},
		{"file://relative/path", "three slashes"},
		{"s3://", "missing host"},
		{"s3://127.0.0.1:9000", "missing bucket"},
		{"s3://127.0.0.1:9000/", "missing bucket"},
		{"s3://127.0.0.1:99999/bkt", "bad port"},
		{"s3://127.0.0.1:9000/Bad_Bucket", "not valid"},
		{"s3://127.0.0.1:9000/bkt?insecure=yes", "insecure=1"},
		{"s3://127.0.0.1:9000/bkt?secure=0", "unknown query"},
		{"s3://127.0.0.1:9000/bkt/a//b", "bad prefix"},
		{"s3://AKIA:" + secret + "@127.0.0.1:9000/bkt", "keys do not belong"},
		{"s3://AKIA:" + secret + "@127.0.0.1:9000/bkt%zz", ""},
		{"%zz://x", "cannot parse"},
	} {
		_, err := storage.Open(context.Background(), c.in, storage.Options{SecretKey: secret})
		if err == nil {
			t.Errorf("Open(%q) = nil error", c.in)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, secret) {
			t.Errorf("Open(%q) error shows the secret: %s", c.in, msg)
		}
		if strings.Contains(msg, "\n") || !strings.Contains(msg, "file:///abs/path or s3://") || !strings.Contains(msg, c.shows) {
			t.Errorf("Open(%q) = %q, want one line with %q and the expected forms", c.in, msg, c.shows)
		}
		if !strings.Contains(c.in, "@") && !strings.Contains(msg, c.in) {
			t.Errorf("Open(%q) = %q does not name the URL", c.in, msg)
		}
	}
}

func TestOpenFileRefusesObjectLock(t *testing.T) {
	_, err := storage.Open(context.Background(), "file://"+t.TempDir(), storage.Options{ObjectLockDays: 30})
	if err == nil || !strings.Contains(err.Error(), "object lock") {
		t.Errorf("Open(file, lock days) = %v, want a refusal naming object lock", err)
	}
}

func TestOpenKeysFromEnvironment(t *testing.T) {
	host, o := storagetest.Env(t, "primary")
	t.Setenv("AWS_ACCESS_KEY_ID", o.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", o.SecretKey)
	b, err := storage.Open(context.Background(), "s3://"+host+"/"+storagetest.Bucket+"?insecure=1", storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.Innermost(b).(*storage.S3).Check(context.Background()); err != nil {
		t.Errorf("Check with keys from the environment = %v", err)
	}
}

func TestPrefixed(t *testing.T) {
	ctx := context.Background()
	root, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	storagetest.MustSave(t, root, "other/x", []byte("x"))
	v := storage.Prefixed(root, "/vaults/one/")
	if got, want := v.Location(), root.Location()+"/vaults/one"; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	storagetest.MustSave(t, v, "packs/a", []byte("a"))
	if got := storagetest.MustList(t, root, ""); strings.Join(got, " ") != "other/x vaults/one/packs/a" {
		t.Errorf("root listing = %q", got)
	}
	if got := storagetest.MustList(t, v, ""); strings.Join(got, " ") != "packs/a" {
		t.Errorf("prefixed listing = %q, want [packs/a]", got)
	}
	info, err := v.Stat(ctx, "packs/a")
	if err != nil || info.Name != "packs/a" {
		t.Errorf("Stat = %+v, %v", info, err)
	}
	if _, err := v.Stat(ctx, "../other/x"); !errors.Is(err, storage.ErrInvalidName) {
		t.Errorf("Stat(../other/x) = %v, want ErrInvalidName", err)
	}
	if storage.Innermost(v) != storage.Backend(root) {
		t.Errorf("Innermost did not find the file backend")
	}
}

func TestPrefixedConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		b, err := storage.NewFile(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return storage.Prefixed(b, "accounts/vault-1")
	})
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := storage.Open(ctx, "file://"+dir+"/vault", storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.Check(ctx, storage.Prefixed(b, "x")); err != nil {
		t.Errorf("Check(file) = %v", err)
	}
	if err := os.RemoveAll(dir + "/vault"); err != nil {
		t.Fatal(err)
	}
	if err := storage.Check(ctx, b); err == nil || !strings.Contains(err.Error(), b.Location()) {
		t.Errorf("Check(removed directory) = %v, want an error naming %s", err, b.Location())
	}
	if err := storage.Check(ctx, storagetest.NewFault(b)); err == nil {
		t.Errorf("Check through Fault = nil, want the file backend's error")
	}
}
