package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// testServer returns the primary test MinIO and its keys, skipping when
// none is configured (failing in CI, where S3 tests must run).
func testServer(t *testing.T) (endpoint, accessKey, secretKey string) {
	t.Helper()
	endpoint = os.Getenv("TAPELESS_TEST_S3_PRIMARY")
	accessKey = os.Getenv("TAPELESS_TEST_S3_ACCESS_KEY")
	secretKey = os.Getenv("TAPELESS_TEST_S3_SECRET_KEY")
	if endpoint == "" || accessKey == "" || secretKey == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("TAPELESS_TEST_S3_* not set in CI; run the tests with make test")
		}
		t.Skip("no MinIO: TAPELESS_TEST_S3_* not set (make test sets them)")
	}
	return endpoint, accessKey, secretKey
}

// freshBuckets returns bucket names no other test uses, and removes the
// buckets when the test ends.
func freshBuckets(t *testing.T, c *minio.Client) (plain, locked string) {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	suffix := hex.EncodeToString(b)
	plain, locked = "miniosetup-plain-"+suffix, "miniosetup-lock-"+suffix
	t.Cleanup(func() {
		ctx := context.Background()
		for _, name := range []string{plain, locked} {
			if err := c.RemoveBucket(ctx, name); err != nil {
				var r minio.ErrorResponse
				if !errors.As(err, &r) || r.Code != "NoSuchBucket" {
					t.Errorf("remove bucket %s: %v", name, err)
				}
			}
		}
	})
	return plain, locked
}

func newClient(t *testing.T, endpoint, accessKey, secretKey string) *minio.Client {
	t.Helper()
	c, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(accessKey, secretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSetupCreatesBucketsIdempotently(t *testing.T) {
	endpoint, ak, sk := testServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newClient(t, endpoint, ak, sk)
	plain, locked := freshBuckets(t, c)
	buckets := []bucket{{plain, false}, {locked, true}}

	for run := 1; run <= 2; run++ {
		if err := setup(ctx, endpoint, ak, sk, buckets); err != nil {
			t.Fatalf("setup run %d: %v", run, err)
		}
	}
	for _, name := range []string{plain, locked} {
		ok, err := c.BucketExists(ctx, name)
		if err != nil || !ok {
			t.Fatalf("bucket %s exists = %v, %v; want true, nil", name, ok, err)
		}
	}
	if _, _, _, _, err := c.GetObjectLockConfig(ctx, locked); err != nil {
		t.Errorf("lock bucket %s has no object lock: %v", locked, err)
	}
	if _, _, _, _, err := c.GetObjectLockConfig(ctx, plain); err == nil {
		t.Errorf("plain bucket %s has object lock, want none", plain)
	}
}

// TestSetupRefusesLockBucketWithoutLock covers a bucket someone made by hand
// without object lock: it cannot gain it, so setup must fail at once rather
// than retry or pretend.
func TestSetupRefusesLockBucketWithoutLock(t *testing.T) {
	endpoint, ak, sk := testServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newClient(t, endpoint, ak, sk)
	_, locked := freshBuckets(t, c)
	if err := c.MakeBucket(ctx, locked, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}

	err := setup(ctx, endpoint, ak, sk, []bucket{{locked, true}})
	if err == nil {
		t.Fatal("setup accepted a lock bucket without object lock")
	}
	var lm errLockMissing
	if !errors.As(err, &lm) {
		t.Errorf("setup error = %v, want errLockMissing", err)
	}
	if ctx.Err() != nil {
		t.Errorf("setup retried a permanent error until the deadline: %v", err)
	}
}

func TestSetupWrongKeysFailsFast(t *testing.T) {
	endpoint, ak, _ := testServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := setup(ctx, endpoint, ak, "not-the-secret", []bucket{{"tapeless-test", false}})
	if err == nil {
		t.Fatal("setup with a wrong secret key succeeded")
	}
	if !permanent(err) {
		t.Errorf("setup error = %v, want a permanent (not retried) error", err)
	}
	if ctx.Err() != nil {
		t.Errorf("setup kept retrying wrong keys until the deadline: %v", err)
	}
}
