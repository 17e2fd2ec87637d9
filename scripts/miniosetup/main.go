// Command miniosetup creates the test buckets on one or more MinIO servers:
// a plain bucket and one with object lock enabled. It is idempotent, so
// scripts/minio.sh runs it after every start, and also against servers that
// someone started by hand.
//
// Usage:
//
//	go run ./scripts/miniosetup -endpoints 127.0.0.1:9000,127.0.0.1:9100
//
// Keys come from -access-key/-secret-key or TAPELESS_TEST_S3_ACCESS_KEY and
// TAPELESS_TEST_S3_SECRET_KEY.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// bucket is one test bucket and whether it needs object lock.
type bucket struct {
	name string
	lock bool
}

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:9000,127.0.0.1:9100", "comma-separated host:port list of MinIO servers")
	accessKey := flag.String("access-key", envOr("TAPELESS_TEST_S3_ACCESS_KEY", "tapeless-admin"), "S3 access key")
	secretKey := flag.String("secret-key", envOr("TAPELESS_TEST_S3_SECRET_KEY", "tapeless-admin-secret"), "S3 secret key")
	plain := flag.String("bucket", "tapeless-test", "name of the plain bucket")
	locked := flag.String("lock-bucket", "tapeless-lock", "name of the bucket with object lock")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	buckets := []bucket{{*plain, false}, {*locked, true}}
	for _, ep := range strings.Split(*endpoints, ",") {
		ep = strings.TrimSpace(ep)
		if ep == "" {
			continue
		}
		if err := setup(ctx, ep, *accessKey, *secretKey, buckets); err != nil {
			fmt.Fprintf(os.Stderr, "miniosetup: %v\n", err)
			os.Exit(1)
		}
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// setup makes sure every bucket exists on the server at endpoint. A server
// that has just started may answer its health check before it accepts
// bucket operations, so transient failures are retried until ctx expires.
func setup(ctx context.Context, endpoint, accessKey, secretKey string, buckets []bucket) error {
	client, err := minio.New(endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(accessKey, secretKey, ""),
		Secure: false,
	})
	if err != nil {
		return fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	for _, b := range buckets {
		var lastErr error
		for attempt := 0; ; attempt++ {
			lastErr = ensureBucket(ctx, client, b)
			if lastErr == nil || permanent(lastErr) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("bucket %s on %s: %w (gave up: %v)", b.name, endpoint, lastErr, ctx.Err())
			case <-time.After(time.Duration(min(attempt+1, 10)) * 200 * time.Millisecond):
			}
		}
		if lastErr != nil {
			return fmt.Errorf("bucket %s on %s: %w", b.name, endpoint, lastErr)
		}
	}
	return nil
}

// ensureBucket creates b if it is missing and checks that an existing lock
// bucket really has object lock: it cannot be added to an existing bucket,
// so a bucket made without it is an error the user must fix by hand.
func ensureBucket(ctx context.Context, client *minio.Client, b bucket) error {
	exists, err := client.BucketExists(ctx, b.name)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if !exists {
		err := client.MakeBucket(ctx, b.name, minio.MakeBucketOptions{ObjectLocking: b.lock})
		if err != nil && !alreadyOwned(err) {
			return fmt.Errorf("create: %w", err)
		}
		fmt.Printf("miniosetup: created bucket %s on %s (object lock: %v)\n", b.name, client.EndpointURL().Host, b.lock)
	}
	if b.lock {
		if _, _, _, _, err := client.GetObjectLockConfig(ctx, b.name); err != nil {
			return errLockMissing{fmt.Errorf("bucket exists without object lock (delete it and run again): %w", err)}
		}
	}
	return nil
}

// errLockMissing is not worth retrying.
type errLockMissing struct{ error }

func (e errLockMissing) Unwrap() error { return e.error }

// permanent reports errors that retrying cannot fix: a bucket without
// object lock, or keys the server rejects.
func permanent(err error) bool {
	var lm errLockMissing
	if errors.As(err, &lm) {
		return true
	}
	var r minio.ErrorResponse
	if errors.As(err, &r) {
		switch r.Code {
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied":
			return true
		}
	}
	return false
}

// alreadyOwned reports a create that lost a race with another setup run.
func alreadyOwned(err error) bool {
	var r minio.ErrorResponse
	return errors.As(err, &r) && (r.Code == "BucketAlreadyOwnedByYou" || r.Code == "BucketAlreadyExists")
}
