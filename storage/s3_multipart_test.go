package storage_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// envKilledUpload makes the test binary act as the run that gets killed:
// it starts a 64 MiB save to the URL in this variable whose source
// stalls after 40 MiB, so the multipart upload is under way when the
// parent kills it.
const envKilledUpload = "TAPELESS_TEST_KILLED_UPLOAD_URL"

// stallReader yields n bytes of data and then blocks forever.
type stallReader struct {
	r io.Reader
	n int64
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.n <= 0 {
		select {}
	}
	if int64(len(p)) > s.n {
		p = p[:s.n]
	}
	n, err := s.r.Read(p)
	s.n -= int64(n)
	return n, err
}

// TestHelperKilledUpload is the child process of
// TestAbortIncompleteUploadsAfterKill; it does nothing in a normal run.
func TestHelperKilledUpload(t *testing.T) {
	u := os.Getenv(envKilledUpload)
	if u == "" {
		t.Skip("helper process only")
	}
	o := storage.Options{AccessKey: os.Getenv(storagetest.EnvAccessKey), SecretKey: os.Getenv(storagetest.EnvSecretKey)}
	b, err := storage.Open(context.Background(), u, o)
	if err != nil {
		t.Fatal(err)
	}
	const size = 64 << 20
	err = b.Save(context.Background(), "packs/killed", &stallReader{r: storagetest.Data(1, size), n: 40 << 20}, size)
	t.Fatalf("Save returned %v; it should have been killed", err)
}

func incompleteUploads(t *testing.T, c *miniogo.Client, u string) []string {
	t.Helper()
	pu, err := storage.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	// MinIO lists uploads only for an exact key or for no prefix at all.
	for up := range c.ListIncompleteUploads(context.Background(), pu.Bucket, "", true) {
		if up.Err != nil {
			t.Fatalf("ListIncompleteUploads = %v", up.Err)
		}
		if k, ok := strings.CutPrefix(up.Key, pu.Prefix+"/"); ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// TestAbortIncompleteUploadsAfterKill: a run SIGKILLed mid multipart
// upload leaves the upload behind (its own clean-up never ran); the next
// run's AbortIncompleteUploads, through a replicated backend, removes it
// and one on the other server, but leaves young uploads alone.
func TestAbortIncompleteUploadsAfterKill(t *testing.T) {
	ctx := context.Background()
	pURL, o := storagetest.MinIO(t, "primary")
	sURL, _ := storagetest.MinIO(t, "secondary")
	pHost, _ := storagetest.Env(t, "primary")
	sHost, _ := storagetest.Env(t, "secondary")
	pc, sc := storagetest.Client(t, pHost, o), storagetest.Client(t, sHost, o)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperKilledUpload$", "-test.count=1")
	cmd.Env = append(os.Environ(), envKilledUpload+"="+pURL,
		storagetest.EnvAccessKey+"="+o.AccessKey, storagetest.EnvSecretKey+"="+o.SecretKey)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	// Wait until the upload exists on the server (its first parts are
	// going up), then kill the run without warning.
	deadline := time.Now().Add(30 * time.Second)
	for len(incompleteUploads(t, pc, pURL)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the helper never started its multipart upload")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let parts land
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	if got := incompleteUploads(t, pc, pURL); len(got) != 1 || got[0] != "packs/killed" {
		t.Fatalf("incomplete uploads after the kill = %v, want packs/killed", got)
	}

	// Another dangling upload on the secondary server.
	spu, _ := storage.ParseURL(sURL)
	if _, err := (miniogo.Core{Client: sc}).NewMultipartUpload(ctx, spu.Bucket, spu.Prefix+"/packs/other", miniogo.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	p, err := storage.Open(ctx, pURL, o)
	if err != nil {
		t.Fatal(err)
	}
	s, err := storage.Open(ctx, sURL, o)
	if err != nil {
		t.Fatal(err)
	}
	grs := storage.Replicated(storagetest.NewFault(p), s)
	defer grs.Close()

	if n, err := storage.AbortIncompleteUploads(ctx, grs, storage.AbandonedUploadAge); err != nil || n != 0 {
		t.Errorf("AbortIncompleteUploads(%v) = %d, %v; want 0: they are young", storage.AbandonedUploadAge, n, err)
	}
	if n, err := storage.AbortIncompleteUploads(ctx, grs, 0); err != nil || n != 2 {
		t.Fatalf("AbortIncompleteUploads(0) = %d, %v; want 2", n, err)
	}
	if got := incompleteUploads(t, pc, pURL); len(got) != 0 {
		t.Errorf("incomplete uploads on the primary after abort = %v", got)
	}
	if got := incompleteUploads(t, sc, sURL); len(got) != 0 {
		t.Errorf("incomplete uploads on the secondary after abort = %v", got)
	}
	// Nothing became visible as an object either.
	if _, err := p.Stat(ctx, "packs/killed"); err == nil {
		t.Error("the killed upload left an object")
	}
	// File backends have nothing to abort.
	if n, err := storage.AbortIncompleteUploads(ctx, newFile(t), 0); err != nil || n != 0 {
		t.Errorf("AbortIncompleteUploads(file) = %d, %v", n, err)
	}
}
