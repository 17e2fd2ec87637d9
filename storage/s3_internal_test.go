package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// TestS3ConditionalPut proves that MinIO honours If-None-Match: * on both
// write paths, so write-once does not rest on the Stat that Save makes
// before a multipart upload (two writers can both pass that Stat).
func TestS3ConditionalPut(t *testing.T) {
	host := os.Getenv("TAPELESS_TEST_S3_PRIMARY")
	if host == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and TAPELESS_TEST_S3_PRIMARY is not set")
		}
		t.Skip("TAPELESS_TEST_S3_PRIMARY is not set")
	}
	ctx := context.Background()
	// A fresh prefix: AbortIncompleteUploads below must see only ours.
	u, err := ParseURL(fmt.Sprintf("s3://%s/tapeless-test/conditional-put-%d?insecure=1", host, time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewS3(ctx, u, Options{AccessKey: os.Getenv("TAPELESS_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("TAPELESS_TEST_S3_SECRET_KEY")})
	if err != nil {
		t.Fatal(err)
	}
	name := "obj-" + strings.ReplaceAll(t.Name(), "/", "-")
	key, _ := s.key(name)
	_ = s.Remove(ctx, name)
	t.Cleanup(func() { _ = s.Remove(context.Background(), name) })

	const size = 2*s3PartSize + 100
	if err := s.putMultipart(ctx, name, key, io.LimitReader(zeros{}, size), size); err != nil {
		t.Fatalf("first multipart upload = %v", err)
	}
	err = s.putMultipart(ctx, name, key, strings.NewReader(strings.Repeat("x", size)), size)
	if !errors.Is(err, ErrExists) {
		t.Errorf("second multipart upload of the same name = %v, want ErrExists from the conditional completion", err)
	}
	err = s.putSingle(ctx, name, key, strings.NewReader("small"), 5)
	if !errors.Is(err, ErrExists) {
		t.Errorf("single PUT over an existing name = %v, want ErrExists", err)
	}
	info, err := s.Stat(ctx, name)
	if err != nil || info.Size != size {
		t.Fatalf("Stat = %+v, %v; want the first object (%d bytes)", info, err, size)
	}
	_, want, _ := ChecksumOf(io.LimitReader(zeros{}, size))
	if info.Checksum != want {
		t.Errorf("stored checksum %s, want the first upload's %s", info.Checksum, want)
	}
	// A whole-object GET asks for the stored checksum, so Load can verify.
	var opts minio.GetObjectOptions
	opts.Set(hdrChecksumMode, "ENABLED")
	rc, oi, _, err := s.core.GetObject(ctx, u.Bucket, key, opts)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if oi.ChecksumCRC64NVME != want {
		t.Errorf("GET reports checksum %q, want %q", oi.ChecksumCRC64NVME, want)
	}
	if n, err := s.AbortIncompleteUploads(ctx, 0); err != nil || n != 0 {
		t.Errorf("AbortIncompleteUploads after a refused completion = %d, %v; want nothing left behind", n, err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
