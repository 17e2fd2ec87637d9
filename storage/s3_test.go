package storage_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// openMinIO opens a fresh prefix of the plain test bucket on which.
func openMinIO(t *testing.T, which string) storage.Backend {
	t.Helper()
	u, o := storagetest.MinIO(t, which)
	b, err := storage.Open(context.Background(), u, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// s3Of opens rawURL and returns the *S3 behind it.
func s3Of(t *testing.T, rawURL string, o storage.Options) *storage.S3 {
	t.Helper()
	b, err := storage.Open(context.Background(), rawURL, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	s, ok := b.(*storage.S3)
	if !ok {
		t.Fatalf("Open(%s) = %T, want *storage.S3", rawURL, b)
	}
	return s
}

// assertOneLine checks a user-facing error: one line, naming the URL,
// containing want, and never the secret.
func assertOneLine(t *testing.T, err error, url, secret string, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one naming %s", url)
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	if strings.Contains(msg, "\n") {
		t.Errorf("error has several lines: %q", msg)
	}
	if secret != "" && strings.Contains(msg, secret) {
		t.Errorf("error shows the secret key: %q", msg)
	}
	if !strings.Contains(msg, url) {
		t.Errorf("error %q does not name %s", msg, url)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not say %q", msg, w)
		}
	}
}

func TestS3MissingBucket(t *testing.T) {
	host, o := storagetest.Env(t, "primary")
	u := "s3://" + host + "/tapeless-no-such-bucket?insecure=1"
	s := s3Of(t, u, o)
	ctx := context.Background()
	assertOneLine(t, s.Check(ctx), u, o.SecretKey, `bucket "tapeless-no-such-bucket" does not exist`, "create it")
	err := s.List(ctx, "", func(storage.Info) error { return nil })
	assertOneLine(t, err, u, o.SecretKey, "does not exist", "create it")
	err = s.Save(ctx, "x", strings.NewReader("x"), 1)
	assertOneLine(t, err, u, o.SecretKey, "does not exist", "create it")
	if errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a missing bucket must not look like a missing object: %v", err)
	}
}

func TestS3WrongKeys(t *testing.T) {
	host, o := storagetest.Env(t, "primary")
	u := "s3://" + host + "/" + storagetest.Bucket + "?insecure=1"
	ctx := context.Background()
	for _, c := range []struct {
		name string
		o    storage.Options
	}{
		{"wrong secret", storage.Options{AccessKey: o.AccessKey, SecretKey: "not-the-secret-0123456789"}},
		{"unknown key", storage.Options{AccessKey: "nobody-at-all", SecretKey: "not-the-secret-0123456789"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := s3Of(t, u, c.o)
			assertOneLine(t, s.Check(ctx), u, c.o.SecretKey, "S3 rejected the access keys", "check the access key and secret key")
			_, err := s.Stat(ctx, "x")
			assertOneLine(t, err, u, c.o.SecretKey, "S3 rejected the access keys")
			err = s.Save(ctx, "x", strings.NewReader("x"), 1)
			assertOneLine(t, err, u, c.o.SecretKey, "S3 rejected the access keys")
		})
	}
	t.Run("no keys", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		s := s3Of(t, u, storage.Options{})
		assertOneLine(t, s.Check(ctx), u, "", "without access keys", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
		err := s.Save(ctx, "x", strings.NewReader("x"), 1)
		assertOneLine(t, err, u, "", "without access keys")
	})
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestS3Unreachable(t *testing.T) {
	const secret = "unreachable-secret-key-42"
	u := "s3://" + closedPort(t) + "/bkt?insecure=1&region=us-east-1"
	// One attempt keeps the test fast; the retries are tested below.
	s := s3Of(t, u, storage.Options{AccessKey: "k", SecretKey: secret, MaxRetries: 1})
	ctx := context.Background()
	err := s.Check(ctx)
	assertOneLine(t, err, u, secret, "cannot reach", "connection refused", "check the host and port")
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Check = %v, want ErrUnavailable", err)
	}
	err = s.Save(ctx, "x", strings.NewReader("x"), 1)
	assertOneLine(t, err, u, secret, "cannot reach")
	_, err = s.Stat(ctx, "x")
	assertOneLine(t, err, u, secret, "cannot reach")
	if errors.Is(err, storage.ErrNotFound) {
		t.Errorf("an unreachable server must not look like a missing object")
	}
}

// fakeS3 answers HEAD object requests: the first fail503 with 503, then 200.
type fakeS3 struct {
	fail503 int
	hits    atomic.Int32
	get     func(w http.ResponseWriter, r *http.Request)
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(f.hits.Add(1))
	if n <= f.fail503 {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		if r.Method != http.MethodHead {
			io.WriteString(w, `<Error><Code>SlowDown</Code><Message>busy</Message></Error>`)
		}
		return
	}
	if r.Method == http.MethodGet && f.get != nil {
		f.get(w, r)
		return
	}
	w.Header().Set("Content-Length", "5")
	w.Header().Set("ETag", `"0123456789abcdef"`)
	w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusOK)
}

func TestS3RetriesOn503(t *testing.T) {
	f := &fakeS3{fail503: 2}
	srv := httptest.NewServer(f)
	defer srv.Close()
	u := "s3://" + srv.Listener.Addr().String() + "/bkt?insecure=1&region=us-east-1"
	s := s3Of(t, u, storage.Options{AccessKey: "k", SecretKey: "s", MaxRetries: 3})
	info, err := s.Stat(context.Background(), "obj")
	if err != nil {
		t.Fatalf("Stat after two 503s = %v, want success on the third attempt", err)
	}
	if info.Size != 5 {
		t.Errorf("Stat size = %d, want 5", info.Size)
	}
	if got := f.hits.Load(); got != 3 {
		t.Errorf("server saw %d requests, want 3 (two 503s, then 200)", got)
	}
}

func TestS3GivesUpAfterRetries(t *testing.T) {
	f := &fakeS3{fail503: 1000}
	srv := httptest.NewServer(f)
	defer srv.Close()
	u := "s3://" + srv.Listener.Addr().String() + "/bkt?insecure=1&region=us-east-1"
	s := s3Of(t, u, storage.Options{AccessKey: "k", SecretKey: "s", MaxRetries: 2})
	err := s.List(context.Background(), "", func(storage.Info) error { return nil })
	assertOneLine(t, err, u, "", "503", "try again later")
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("List = %v, want ErrUnavailable", err)
	}
	if got := f.hits.Load(); got != 2 {
		t.Errorf("server saw %d requests, want 2 (MaxRetries)", got)
	}
}

func TestS3ErrorMappingOffline(t *testing.T) {
	for _, c := range []struct {
		status int
		code   string
		is     error
		says   string
	}{
		{404, "NoSuchKey", storage.ErrNotFound, "not found"},
		{404, "NoSuchBucket", nil, "does not exist"},
		{403, "InvalidAccessKeyId", nil, "S3 rejected the access keys"},
		{403, "SignatureDoesNotMatch", nil, "S3 rejected the access keys"},
		{403, "AccessDenied", nil, "S3 rejected the access keys"},
	} {
		t.Run(c.code, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(c.status)
				fmt.Fprintf(w, `<Error><Code>%s</Code><Message>m</Message><BucketName>bkt</BucketName><Key>obj</Key></Error>`, c.code)
			}))
			defer srv.Close()
			u := "s3://" + srv.Listener.Addr().String() + "/bkt?insecure=1&region=us-east-1"
			s := s3Of(t, u, storage.Options{AccessKey: "k", SecretKey: "the-secret", MaxRetries: 1})
			err := s.Load(context.Background(), "obj", 0, -1, func(io.Reader) error { return nil })
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("Load = %v, want %v", err, c.is)
			}
			if c.is == nil {
				assertOneLine(t, err, u, "the-secret", c.says)
			} else if !strings.Contains(err.Error(), c.says) {
				t.Errorf("Load = %v, want it to say %q", err, c.says)
			}
		})
	}
}

// TestS3LoadVerifiesChecksum serves an object whose stored checksum does
// not match its bytes, as a corrupted disk or a broken proxy would.
func TestS3LoadVerifiesChecksum(t *testing.T) {
	good := []byte("hello world")
	_, sum, _ := storage.ChecksumOf(strings.NewReader("hello World"))
	f := &fakeS3{get: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(good)))
		w.Header().Set("ETag", `"0123456789abcdef"`)
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		w.Header().Set("x-amz-checksum-crc64nvme", sum)
		w.Header().Set("x-amz-checksum-type", "FULL_OBJECT")
		w.Write(good)
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	u := "s3://" + srv.Listener.Addr().String() + "/bkt?insecure=1&region=us-east-1"
	s := s3Of(t, u, storage.Options{AccessKey: "k", SecretKey: "s"})
	var readErr error
	err := s.Load(context.Background(), "obj", 0, -1, func(r io.Reader) error {
		_, readErr = io.ReadAll(r)
		return nil
	})
	if err == nil || readErr == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("Load of a corrupt object = %v (reader: %v), want a checksum mismatch", err, readErr)
	}
}

func TestS3ObjectLock(t *testing.T) {
	ctx := context.Background()
	plainURL, o := storagetest.MinIO(t, "primary")
	if on, err := s3Of(t, plainURL, o).ObjectLockEnabled(ctx); err != nil || on {
		t.Errorf("ObjectLockEnabled(plain bucket) = %v, %v, want false", on, err)
	}
	lockURL, o := storagetest.MinIOLock(t, "primary")
	o.ObjectLockDays = 2
	s := s3Of(t, lockURL, o)
	if on, err := s.ObjectLockEnabled(ctx); err != nil || !on {
		t.Fatalf("ObjectLockEnabled(lock bucket) = %v, %v, want true", on, err)
	}
	for _, size := range []int64{1000, 20 << 20} {
		name := fmt.Sprintf("locked-%d", size)
		if err := s.Save(ctx, name, storagetest.Data(9, size), size); err != nil {
			t.Fatalf("Save on the lock bucket = %v", err)
		}
		host, _ := storagetest.Env(t, "primary")
		u, _ := storage.ParseURL(lockURL)
		mode, until, err := storagetest.Client(t, host, o).GetObjectRetention(ctx, u.Bucket, u.Prefix+"/"+name, "")
		if err != nil {
			t.Fatalf("GetObjectRetention = %v", err)
		}
		if mode == nil || *mode != miniogo.Compliance || until == nil || until.Before(time.Now().Add(47*time.Hour)) || until.After(time.Now().Add(49*time.Hour)) {
			t.Errorf("retention = %v until %v, want COMPLIANCE about 48 h ahead", mode, until)
		}
		err = s.Remove(ctx, name)
		if !errors.Is(err, storage.ErrLocked) {
			t.Errorf("Remove of a locked object = %v, want ErrLocked", err)
		}
		if err := s.Save(ctx, name, storagetest.Data(10, size), size); !errors.Is(err, storage.ErrExists) {
			t.Errorf("overwrite of a locked object = %v, want ErrExists", err)
		}
		n, _, err := func() (int64, string, error) {
			var n int64
			var sum string
			err := s.Load(ctx, name, 0, -1, func(r io.Reader) error {
				var err error
				n, sum, err = storage.ChecksumOf(r)
				return err
			})
			return n, sum, err
		}()
		if err != nil || n != size {
			t.Errorf("Load after refused remove = %d bytes, %v; want %d", n, err, size)
		}
	}
}

func TestS3ServerTime(t *testing.T) {
	u, o := storagetest.MinIO(t, "primary")
	st, err := s3Of(t, u, o).ServerTime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Both clocks are this machine's: they agree to within Date's second.
	if d := time.Since(st); d > 3*time.Second || d < -3*time.Second {
		t.Errorf("ServerTime = %v, %v away from the local clock", st, d)
	}
}

func TestS3AbortIncompleteUploads(t *testing.T) {
	ctx := context.Background()
	u, o := storagetest.MinIO(t, "primary")
	s := s3Of(t, u, o)
	pu, _ := storage.ParseURL(u)
	core := miniogo.Core{Client: s.Client()}
	if _, err := core.NewMultipartUpload(ctx, pu.Bucket, pu.Prefix+"/left-behind", miniogo.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.AbortIncompleteUploads(ctx, time.Hour); err != nil || n != 0 {
		t.Errorf("AbortIncompleteUploads(1h) = %d, %v; want 0 for a young upload", n, err)
	}
	if n, err := s.AbortIncompleteUploads(ctx, 0); err != nil || n != 1 {
		t.Errorf("AbortIncompleteUploads(0) = %d, %v; want 1", n, err)
	}
}

// TestS3Proxy sends all traffic through an HTTP proxy and checks it got there.
func TestS3Proxy(t *testing.T) {
	u, o := storagetest.MinIO(t, "primary")
	var hits atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		r.RequestURI = ""
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	o.Proxy = proxy.URL
	s := s3Of(t, u, o)
	storagetest.MustSave(t, s, "via-proxy", []byte("through the proxy"))
	if got := storagetest.MustLoad(t, s, "via-proxy"); string(got) != "through the proxy" {
		t.Errorf("Load via proxy = %q", got)
	}
	if hits.Load() < 2 {
		t.Errorf("proxy saw %d requests, want all of them", hits.Load())
	}
	o.Proxy = "socks5://127.0.0.1:1080"
	if _, err := storage.Open(context.Background(), u, o); err == nil {
		t.Errorf("Open with a socks5 proxy = nil error, want a refusal")
	}
}

// TestS3StatChecksum: S3 keeps the same full-object checksum whether the
// object went up in one PUT or in parts, so Confirm needs no read-back.
func TestS3StatChecksum(t *testing.T) {
	ctx := context.Background()
	b := openMinIO(t, "primary")
	for _, size := range []int64{0, 1000, 16 << 20, 16<<20 + 1, 50 << 20} {
		name := fmt.Sprintf("sum-%d", size)
		_, want, _ := storage.ChecksumOf(storagetest.Data(5, size))
		if err := b.Save(ctx, name, storagetest.Data(5, size), size); err != nil {
			t.Fatal(err)
		}
		info, err := b.Stat(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Checksum != want {
			t.Errorf("Stat(%d-byte object).Checksum = %q, want %q", size, info.Checksum, want)
		}
	}
}

// An s3:// URL without ?insecure=1 pointing at a plain-HTTP server (MinIO
// on loopback, typically) says to add ?insecure=1.
func TestS3PlainHTTPSaysInsecure(t *testing.T) {
	host, o := storagetest.Env(t, "primary")
	u := "s3://" + host + "/" + storagetest.Bucket
	o.MaxRetries = 1
	s := s3Of(t, u, o)
	ctx := context.Background()
	assertOneLine(t, s.Check(ctx), u, o.SecretKey, "answers plain HTTP", "add ?insecure=1")
	_, err := s.Stat(ctx, "x")
	assertOneLine(t, err, u, o.SecretKey, "add ?insecure=1")
	if errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a plain-HTTP server must not look like a missing object")
	}
}

// The other way round: ?insecure=1 against an HTTPS server.
func TestS3InsecureAgainstHTTPS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	u := "s3://" + strings.TrimPrefix(srv.URL, "https://") + "/bkt?insecure=1&region=us-east-1"
	s := s3Of(t, u, storage.Options{AccessKey: "k", SecretKey: "secret-of-the-test-0123", MaxRetries: 1})
	assertOneLine(t, s.Check(context.Background()), u, "secret-of-the-test-0123", "if it speaks HTTPS, remove ?insecure=1")
}

// A TLS port that does not answer HTTP at all (only a handshake).
func TestS3InsecureAgainstRawTLS(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// A TLS alert record, as a TLS server sends to a client that
			// did not start a handshake: after the request's first bytes,
			// so that closing cannot reset the connection before the
			// client has written (which reads as another error).
			go func() {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				c.Read(make([]byte, 512))
				c.Write([]byte("\x15\x03\x01\x00\x02\x02\x46"))
				c.Close()
			}()
		}
	}()
	u := "s3://" + l.Addr().String() + "/bkt?insecure=1&region=us-east-1"
	s := s3Of(t, u, storage.Options{AccessKey: "k", SecretKey: "secret-of-the-test-0123", MaxRetries: 1})
	assertOneLine(t, s.Check(context.Background()), u, "secret-of-the-test-0123", "speaks HTTPS", "remove ?insecure=1")
}
