package s3fault_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest/s3fault"
)

// open returns the proxy and tapeless's S3 backend through it; retries
// is Options.MaxRetries (1: no retry, so the client sees each fault).
func open(t *testing.T, seed uint64, retries int) (*s3fault.Proxy, storage.Backend) {
	t.Helper()
	p, u, o := s3fault.MinIO(t, "primary", seed)
	o.MaxRetries = retries
	b, err := storage.Open(context.Background(), u, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return p, b
}

func save(t *testing.T, b storage.Backend, name string, data []byte) {
	t.Helper()
	if err := b.Save(context.Background(), name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("save %s: %v", name, err)
	}
}

func load(b storage.Backend, name string, off, n int64) ([]byte, error) {
	var got []byte
	err := b.Load(context.Background(), name, off, n, func(r io.Reader) error {
		var err error
		got, err = io.ReadAll(r)
		return err
	})
	return got, err
}

func names(t *testing.T, b storage.Backend, prefix string) []string {
	t.Helper()
	var out []string
	if err := b.List(context.Background(), prefix, func(i storage.Info) error { out = append(out, i.Name); return nil }); err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	sort.Strings(out)
	return out
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func TestClassify(t *testing.T) {
	cases := []struct {
		method, target string
		hdr            string
		want           s3fault.Op
		name           string
	}{
		{"GET", "/b/?list-type=2&prefix=v%2Fpoints%2F", "", s3fault.OpList, "v/points/"},
		{"GET", "/b/?uploads&prefix=x", "", s3fault.OpListUploads, "x"},
		{"GET", "/b/?location=", "", s3fault.OpBucket, ""},
		{"HEAD", "/b/", "", s3fault.OpBucket, ""},
		{"POST", "/b/?delete=", "", s3fault.OpDeleteMulti, ""},
		{"GET", "/b/k/packs/ab", "bytes=0-9", s3fault.OpGet, "k/packs/ab"},
		{"HEAD", "/b/k", "", s3fault.OpStat, "k"},
		{"PUT", "/b/k", "", s3fault.OpPut, "k"},
		{"PUT", "/b/k?partNumber=2&uploadId=u", "", s3fault.OpUploadPart, "k"},
		{"POST", "/b/k?uploads=", "", s3fault.OpCreateUpload, "k"},
		{"POST", "/b/k?uploadId=u", "", s3fault.OpCompleteUpload, "k"},
		{"DELETE", "/b/k?uploadId=u", "", s3fault.OpAbortUpload, "k"},
		{"GET", "/b/k?uploadId=u", "", s3fault.OpListParts, "k"},
		{"DELETE", "/b/k", "", s3fault.OpDelete, "k"},
		{"PUT", "/b/k?retention=", "", s3fault.OpOther, "k"},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, c.target, nil)
		if c.hdr != "" {
			r.Header.Set("Range", c.hdr)
		}
		got := s3fault.Classify(r)
		if got.Op != c.want || got.Name() != c.name || got.Bucket != "b" || got.Range != c.hdr {
			t.Errorf("%s %s: got %+v, want op %s name %q", c.method, c.target, got, c.want, c.name)
		}
	}
}

func TestStatusRetriedOrSeen(t *testing.T) {
	// With retries the client rides over one 503; without, it sees it.
	p, b := open(t, 1, 0)
	p.SetRules(s3fault.Rule{Ops: []s3fault.Op{s3fault.OpPut}, Fault: s3fault.Fault{Kind: s3fault.Status, Status: 503}, Count: 1})
	save(t, b, "a", payload(100, 1))
	if got := p.Tally()[s3fault.Status]; got != 1 {
		t.Fatalf("injected %d statuses, want 1", got)
	}
	if _, err := b.Stat(context.Background(), "a"); err != nil {
		t.Fatalf("after a retried 503 the object is missing: %v", err)
	}

	p, b = open(t, 1, 1)
	p.SetRules(s3fault.Rule{Ops: []s3fault.Op{s3fault.OpStat}, Fault: s3fault.Fault{Kind: s3fault.Status, Status: 503}, Count: 1})
	save(t, b, "a", payload(100, 1))
	_, err := b.Stat(context.Background(), "a")
	if err == nil || !strings.Contains(err.Error(), "503") && !strings.Contains(err.Error(), "ServiceUnavailable") && !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("stat through an injected 503: %v, want the 503", err)
	}
	if _, err := b.Stat(context.Background(), "a"); err != nil {
		t.Fatalf("second stat (rule spent): %v", err)
	}
}

func TestReset(t *testing.T) {
	p, b := open(t, 2, 1)
	save(t, b, "a", payload(100, 2))
	// Every GET reset: net/http itself retries an idempotent request once
	// when a reused connection breaks, so one reset alone may not show.
	p.SetRules(s3fault.Rule{Ops: []s3fault.Op{s3fault.OpGet}, Fault: s3fault.Fault{Kind: s3fault.Reset}})
	if _, err := load(b, "a", 0, -1); err == nil || !(strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "EOF")) {
		t.Fatalf("load through a reset connection: %v, want a reset", err)
	}
	p.SetRules()
	if got, err := load(b, "a", 0, -1); err != nil || !bytes.Equal(got, payload(100, 2)) {
		t.Fatalf("load after the reset: %v", err)
	}
	if p.Tally()[s3fault.Reset] == 0 {
		t.Fatalf("tally %v, want resets", p.Tally())
	}
}

func TestHangPastDeadline(t *testing.T) {
	p, b := open(t, 3, 1)
	save(t, b, "a", payload(100, 3))
	p.SetRules(s3fault.Rule{Ops: []s3fault.Op{s3fault.OpStat}, Fault: s3fault.Fault{Kind: s3fault.Hang}, Count: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := b.Stat(ctx, "a")
	if err == nil || !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("stat of a hung request: %v, want the deadline", err)
	}
	if p.Tally()[s3fault.Hang] != 1 {
		t.Fatalf("tally %v, want one hang", p.Tally())
	}
}

func TestDropPut(t *testing.T) {
	p, b := open(t, 4, 1)
	p.SetRules(s3fault.Rule{Ops: []s3fault.Op{s3fault.OpPut}, Key: s3fault.Contains("lost"), Fault: s3fault.Fault{Kind: s3fault.DropPut}})
	save(t, b, "lost", payload(1000, 4)) // the client sees success
	save(t, b, "kept", payload(1000, 5))
	if _, err := b.Stat(context.Background(), "lost"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat of the dropped PUT: %v, want not found", err)
	}
	if _, err := b.Stat(context.Background(), "kept"); err != nil {
		t.Fatal(err)
	}
	if p.Tally()[s3fault.DropPut] != 1 {
		t.Fatalf("tally %v, want one dropped PUT", p.Tally())
	}
}

func TestDamagedBodies(t *testing.T) {
	p, b := open(t, 5, 1)
	want := payload(64<<10, 6)
	save(t, b, "a", want)
	for _, k := range []s3fault.Kind{s3fault.Truncate, s3fault.FlipBit} {
		p.SetRules(s3fault.Rule{Ops: []s3fault.Op{s3fault.OpGet}, Fault: s3fault.Fault{Kind: k}, Count: 1})
		// A whole-object read is checked against the stored checksum.
		if got, err := load(b, "a", 0, -1); err == nil {
			t.Errorf("%s: whole load succeeded (equal %v), want an error", k, bytes.Equal(got, want))
		}
		// A ranged read is not: the bytes differ (the archive's AEAD is
		// what catches these).
		p.SetRules(s3fault.Rule{Ops: []s3fault.Op{s3fault.OpGet}, If: func(r s3fault.Request) bool { return r.Range != "" }, Fault: s3fault.Fault{Kind: k}, Count: 1})
		got, err := load(b, "a", 100, 30000)
		if err == nil && bytes.Equal(got, want[100:30100]) {
			t.Errorf("%s: ranged load came back intact", k)
		}
		if p.Tally()[k] != 2 {
			t.Errorf("tally %v, want two of %s", p.Tally(), k)
		}
	}
	p.SetRules()
	if got, err := load(b, "a", 0, -1); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("clean load: %v", err)
	}
}

func TestListFaults(t *testing.T) {
	p, b := open(t, 6, 1)
	for _, n := range []string{"packs/1", "packs/2", "packs/3", "points/1", "points/2"} {
		save(t, b, n, payload(10, 7))
	}
	all := names(t, b, "")
	if len(all) != 5 {
		t.Fatalf("clean listing %v", all)
	}

	p.SetRules(s3fault.Rule{Ops: []s3fault.Op{s3fault.OpList}, Key: s3fault.Contains("/points/"), Fault: s3fault.Fault{Kind: s3fault.ListEmpty}})
	if got := names(t, b, "points/"); len(got) != 0 {
		t.Errorf("points/ listing under list-empty: %v", got)
	}
	if got := names(t, b, "packs/"); len(got) != 3 {
		t.Errorf("packs/ listing under list-empty for points/: %v", got)
	}

	p.SetRules(s3fault.Rule{Ops: []s3fault.Op{s3fault.OpList}, Fault: s3fault.Fault{Kind: s3fault.ListDrop, Drop: s3fault.Contains("/points/")}})
	if got := names(t, b, ""); fmt.Sprint(got) != "[packs/1 packs/2 packs/3]" {
		t.Errorf("listing dropping points/: %v", got)
	}

	save(t, b, "packs/4", payload(10, 8))
	// Written behind the proxy's back: not a recent write it knows of.
	direct, err := storage.Open(context.Background(), strings.Replace(b.Location(), p.Host, p.Target(), 1), storage.Options{AccessKey: p.AccessKey(), SecretKey: p.SecretKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	save(t, direct, "packs/direct", payload(10, 9))
	p.SetRules(s3fault.Rule{Ops: []s3fault.Op{s3fault.OpList}, Fault: s3fault.Fault{Kind: s3fault.ListDrop, Recent: time.Hour}})
	if got := names(t, b, "packs/"); fmt.Sprint(got) != "[packs/direct]" {
		t.Errorf("listing dropping recent writes through the proxy: %v, want only packs/direct", got)
	}

	// One key a page: minio-go follows 7 pages (the rewrite is re-signed,
	// or MinIO would refuse it).
	p.SetRules(s3fault.Rule{Ops: []s3fault.Op{s3fault.OpList}, Fault: s3fault.Fault{Kind: s3fault.PageSize, Keys: 1}})
	before := p.Tally()[s3fault.PageSize]
	if got := names(t, b, ""); len(got) != 7 {
		t.Errorf("one-key pages list %v", got)
	}
	if n := p.Tally()[s3fault.PageSize] - before; n < 7 {
		t.Errorf("%d page requests rewritten, want at least 7", n)
	}

	// A looping token repeats the second page forever.
	p.SetRules(
		s3fault.Rule{Ops: []s3fault.Op{s3fault.OpList}, Fault: s3fault.Fault{Kind: s3fault.PageSize, Keys: 2}},
		s3fault.Rule{Ops: []s3fault.Op{s3fault.OpList}, Fault: s3fault.Fault{Kind: s3fault.LoopToken}},
	)
	seen := map[string]int{}
	stop := errors.New("stop")
	err = b.List(context.Background(), "", func(i storage.Info) error {
		seen[i.Name]++
		if seen[i.Name] > 2 {
			return stop
		}
		return nil
	})
	// tapeless's listing refuses a key that does not sort after the last
	// one instead of paging forever.
	if err == nil || errors.Is(err, stop) || !strings.Contains(err.Error(), "loops") {
		t.Errorf("listing with a looping token: %v after %v, want the loop named", err, seen)
	}
	if p.Tally()[s3fault.LoopToken] == 0 {
		t.Errorf("tally %v, want loop-token", p.Tally())
	}
}

func TestClockSkew(t *testing.T) {
	p, b := open(t, 7, 1)
	ctx := context.Background()
	if err := storage.CheckClockSkew(ctx, b, time.Now(), storage.MaxClockSkew); err != nil {
		t.Fatalf("clean clock check: %v", err)
	}
	p.SetRules(s3fault.Rule{Fault: s3fault.Fault{Kind: s3fault.ClockSkew, Skew: time.Hour}})
	err := storage.CheckClockSkew(ctx, b, time.Now(), storage.MaxClockSkew)
	if !errors.Is(err, storage.ErrClockSkew) {
		t.Fatalf("clock check through a skewed Date: %v, want clock skew", err)
	}
}

func TestProbabilityIsSeeded(t *testing.T) {
	// Same seed, same requests: same injections.
	run := func() string {
		p, b := open(t, 42, 1)
		save(t, b, "a", payload(10, 9))
		p.SetRules(s3fault.Rule{Ops: []s3fault.Op{s3fault.OpStat}, Fault: s3fault.Fault{Kind: s3fault.Status, Status: http.StatusInternalServerError}, Prob: 0.5})
		var out []byte
		for range 40 {
			if _, err := b.Stat(context.Background(), "a"); err != nil {
				out = append(out, 'x')
			} else {
				out = append(out, '.')
			}
		}
		return string(out)
	}
	a, b := run(), run()
	if a != b {
		t.Fatalf("same seed, different faults:\n%s\n%s", a, b)
	}
	if !strings.Contains(a, "x") || !strings.Contains(a, ".") {
		t.Fatalf("probability 0.5 over 40 requests gave %s", a)
	}
}
