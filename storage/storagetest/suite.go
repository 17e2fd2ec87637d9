package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
)

const (
	kiB = 1 << 10
	miB = 1 << 20
)

// Data returns a reader over size deterministic pseudo-random bytes from
// seed; the same seed always gives the same bytes, so large objects can be
// checked by hash without holding them in memory.
func Data(seed uint64, size int64) io.Reader {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return io.LimitReader(rand.NewChaCha8(s), size)
}

// Bytes returns Data(seed, size) in memory.
func Bytes(seed uint64, size int64) []byte {
	b, _ := io.ReadAll(Data(seed, size))
	return b
}

func hashOf(r io.Reader) (int64, [32]byte, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return n, sum, err
}

// MustSave saves data under name or fails the test.
func MustSave(t testing.TB, b storage.Backend, name string, data []byte) {
	t.Helper()
	if err := b.Save(context.Background(), name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Save(%q) = %v", name, err)
	}
}

// MustLoad returns the whole object or fails the test.
func MustLoad(t testing.TB, b storage.Backend, name string) []byte {
	t.Helper()
	return mustLoadRange(t, b, name, 0, -1)
}

func mustLoadRange(t testing.TB, b storage.Backend, name string, off, n int64) []byte {
	t.Helper()
	var got []byte
	err := b.Load(context.Background(), name, off, n, func(r io.Reader) error {
		var err error
		got, err = io.ReadAll(r)
		return err
	})
	if err != nil {
		t.Fatalf("Load(%q, %d, %d) = %v", name, off, n, err)
	}
	return got
}

// MustList returns the names under prefix or fails the test.
func MustList(t testing.TB, b storage.Backend, prefix string) []string {
	t.Helper()
	var names []string
	if err := b.List(context.Background(), prefix, func(i storage.Info) error {
		names = append(names, i.Name)
		return nil
	}); err != nil {
		t.Fatalf("List(%q) = %v", prefix, err)
	}
	return names
}

func assertGone(t testing.TB, b storage.Backend, name string) {
	t.Helper()
	if _, err := b.Stat(context.Background(), name); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(%q) after failed save = %v, want ErrNotFound", name, err)
	}
	if names := MustList(t, b, name); len(names) != 0 {
		t.Errorf("List(%q) after failed save = %q, want nothing", name, names)
	}
}

// errAfterReader yields Data(seed) and then fails with errSource after n bytes.
type errAfterReader struct {
	r    io.Reader
	left int64
}

var errSource = errors.New("source broke")

func (e *errAfterReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, errSource
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	return n, err
}

// Run is the conformance suite: every storage.Backend must pass it.
// newBackend returns an empty backend (a fresh directory or a fresh S3
// prefix); it is called once per subtest.
func Run(t *testing.T, newBackend func(t *testing.T) storage.Backend) {
	t.Run("RoundTrip", func(t *testing.T) {
		for _, size := range []int64{0, 1, 5 * miB, 100 * miB} {
			t.Run(sizeName(size), func(t *testing.T) { testRoundTrip(t, newBackend(t), size) })
		}
	})
	t.Run("Range", func(t *testing.T) { testRange(t, newBackend(t)) })
	t.Run("List", func(t *testing.T) { testList(t, newBackend(t)) })
	t.Run("ListOrder", func(t *testing.T) { testListOrder(t, newBackend(t)) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, newBackend(t)) })
	t.Run("Exists", func(t *testing.T) { testExists(t, newBackend(t)) })
	t.Run("SameNameRace", func(t *testing.T) { testSameNameRace(t, newBackend(t)) })
	t.Run("FailMidway", func(t *testing.T) { testFailMidway(t, newBackend(t)) })
	t.Run("Cancel", func(t *testing.T) { testCancel(t, newBackend(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newBackend(t)) })
	t.Run("Remove", func(t *testing.T) { testRemove(t, newBackend(t)) })
	t.Run("InvalidNames", func(t *testing.T) { testInvalidNames(t, newBackend(t)) })
}

func sizeName(n int64) string {
	switch {
	case n >= miB:
		return fmt.Sprintf("%dMiB", n/miB)
	default:
		return fmt.Sprintf("%dB", n)
	}
}

func testRoundTrip(t *testing.T, b storage.Backend, size int64) {
	ctx := context.Background()
	name := "rt/obj-" + sizeName(size)
	seed := uint64(size) + 1
	h := sha256.New()
	crc := storage.NewChecksum()
	if err := b.Save(ctx, name, io.TeeReader(Data(seed, size), io.MultiWriter(h, crc)), size); err != nil {
		t.Fatalf("Save(%s) = %v", name, err)
	}
	info, err := b.Stat(ctx, name)
	if err != nil {
		t.Fatalf("Stat = %v", err)
	}
	if info.Size != size || info.Name != name {
		t.Errorf("Stat = %+v, want name %s size %d", info, name, size)
	}
	sum := storage.FormatChecksum(crc.Sum(nil))
	if info.Checksum != "" && info.Checksum != sum {
		t.Errorf("Stat checksum = %s, want %s", info.Checksum, sum)
	}
	if time.Since(info.ModTime) > time.Hour || time.Until(info.ModTime) > time.Hour {
		t.Errorf("Stat ModTime = %v, want about now", info.ModTime)
	}
	var n int64
	var got [32]byte
	err = b.Load(ctx, name, 0, -1, func(r io.Reader) error {
		var err error
		n, got, err = hashOf(r)
		return err
	})
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	if n != size || !bytes.Equal(got[:], h.Sum(nil)) {
		t.Errorf("Load returned %d bytes with sha256 %x, want %d bytes with %x", n, got, size, h.Sum(nil))
	}
	if err := storage.Confirm(ctx, b, name, size, sum); err != nil {
		t.Errorf("Confirm = %v", err)
	}
	if err := storage.Confirm(ctx, b, name, size, storage.FormatChecksum([]byte("12345678"))); err == nil {
		t.Errorf("Confirm with a wrong checksum = nil, want an error")
	}
}

func testRange(t *testing.T, b storage.Backend) {
	const size = 300 * kiB
	data := Bytes(7, size)
	MustSave(t, b, "range/obj", data)
	for _, c := range []struct {
		name      string
		off, n    int64
		from, end int64
	}{
		{"start", 0, 10, 0, 10},
		{"middle", 100 * kiB, 50 * kiB, 100 * kiB, 150 * kiB},
		{"end", size - 10, 10, size - 10, size},
		{"to end", size - 1000, -1, size - 1000, size},
		{"whole", 0, -1, 0, size},
		{"length past end", size - 5, 100, size - 5, size},
		{"at end", size, -1, size, size},
		{"at end with length", size, 10, size, size},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := mustLoadRange(t, b, "range/obj", c.off, c.n)
			if want := data[c.from:c.end]; !bytes.Equal(got, want) {
				t.Errorf("Load(%d, %d) gave %d bytes, want %d (bytes %d..%d)", c.off, c.n, len(got), len(want), c.from, c.end)
			}
		})
	}
	t.Run("past end", func(t *testing.T) {
		err := b.Load(context.Background(), "range/obj", size+1, 10, func(r io.Reader) error { _, err := io.ReadAll(r); return err })
		if !errors.Is(err, storage.ErrInvalidRange) {
			t.Errorf("Load(offset past end) = %v, want ErrInvalidRange", err)
		}
	})
	t.Run("empty object", func(t *testing.T) {
		MustSave(t, b, "range/empty", nil)
		if got := mustLoadRange(t, b, "range/empty", 0, 10); len(got) != 0 {
			t.Errorf("Load(empty, 0, 10) = %d bytes, want 0", len(got))
		}
	})
}

func testList(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	// 2,500 objects: more than two pages of an S3 listing (1,000 keys).
	var names []string
	for i := range 2000 {
		names = append(names, fmt.Sprintf("list/a/%04d", i))
	}
	for i := range 500 {
		names = append(names, fmt.Sprintf("list/b/%04d", i))
	}
	work := make(chan string)
	var wg sync.WaitGroup
	errs := make(chan error, len(names))
	for range 16 {
		wg.Go(func() {
			for n := range work {
				if err := b.Save(ctx, n, strings.NewReader(n), int64(len(n))); err != nil {
					errs <- fmt.Errorf("Save(%s) = %w", n, err)
				}
			}
		})
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sort.Strings(names)
	got := MustList(t, b, "list/")
	if len(got) != len(names) {
		t.Fatalf("List(list/) = %d names, want %d", len(got), len(names))
	}
	for i := range got {
		if got[i] != names[i] {
			t.Fatalf("List(list/)[%d] = %q, want %q (lexical order)", i, got[i], names[i])
		}
	}
	for _, c := range []struct {
		prefix string
		want   int
	}{{"list/a/", 2000}, {"list/b/", 500}, {"list/b/00", 100}, {"list/a/19", 100}, {"list/a/1999", 1}, {"list/c", 0}, {"nothing/", 0}, {"lis", 2500}} {
		if got := MustList(t, b, c.prefix); len(got) != c.want {
			t.Errorf("List(%q) = %d names, want %d", c.prefix, len(got), c.want)
		}
	}
	// Sizes come with the listing.
	err := b.List(ctx, "list/b/0499", func(i storage.Info) error {
		if i.Size != int64(len("list/b/0499")) {
			t.Errorf("List Info = %+v, want size %d", i, len("list/b/0499"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Stopping early returns fn's error.
	stop := errors.New("enough")
	seen := 0
	err = b.List(ctx, "list/", func(storage.Info) error {
		seen++
		if seen == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || seen != 10 {
		t.Errorf("List stopped early = %v after %d, want %v after 10", err, seen, stop)
	}
}

func testListOrder(t *testing.T, b storage.Backend) {
	// '-' and '.' sort before '/', so a file backend must not simply walk
	// directories depth-first in name order.
	names := []string{"o/a/x", "o/a-b", "o/a.c", "o/a0", "o/b", "o/a/y/z"}
	for _, n := range names {
		MustSave(t, b, n, []byte(n))
	}
	sort.Strings(names)
	got := MustList(t, b, "o/")
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("List(o/) = %q, want %q", got, names)
	}
	if got := MustList(t, b, "o/a"); len(got) != 5 {
		t.Errorf("List(o/a) = %q, want 5 names", got)
	}
}

func testNotFound(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	MustSave(t, b, "nf/present", []byte("x"))
	for _, name := range []string{"nf/missing", "nf/present/below", "nf"} {
		err := b.Load(ctx, name, 0, -1, func(io.Reader) error { return nil })
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Load(%q) = %v, want ErrNotFound", name, err)
		}
		if _, err := b.Stat(ctx, name); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(%q) = %v, want ErrNotFound", name, err)
		}
		if err := b.Remove(ctx, name); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Remove(%q) = %v, want ErrNotFound", name, err)
		}
	}
	if err := b.Load(ctx, "nf/missing", 5, 10, func(io.Reader) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Load(missing, range) = %v, want ErrNotFound", err)
	}
}

func testExists(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	MustSave(t, b, "ex/obj", []byte("first"))
	err := b.Save(ctx, "ex/obj", strings.NewReader("second!"), 7)
	if !errors.Is(err, storage.ErrExists) {
		t.Errorf("second Save = %v, want ErrExists", err)
	}
	if got := MustLoad(t, b, "ex/obj"); string(got) != "first" {
		t.Errorf("content after refused overwrite = %q, want %q", got, "first")
	}
	// Large objects take another path on S3 (multipart).
	const big = 20 * miB
	if err := b.Save(ctx, "ex/big", Data(1, big), big); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(ctx, "ex/big", Data(2, big), big); !errors.Is(err, storage.ErrExists) {
		t.Errorf("second big Save = %v, want ErrExists", err)
	}
	_, want, _ := hashOf(Data(1, big))
	err = b.Load(ctx, "ex/big", 0, -1, func(r io.Reader) error {
		_, got, err := hashOf(r)
		if got != want {
			t.Errorf("big object changed after refused overwrite")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testSameNameRace(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			data := fmt.Sprintf("writer %d", i)
			errs[i] = b.Save(ctx, "race/obj", strings.NewReader(data), int64(len(data)))
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrExists):
			t.Errorf("writer %d: %v, want nil or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer succeeded: %v", errs)
	}
	if got, want := string(MustLoad(t, b, "race/obj")), fmt.Sprintf("writer %d", winner); got != want {
		t.Errorf("content = %q, want the winner's %q", got, want)
	}
}

func testFailMidway(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	for _, c := range []struct {
		name       string
		size, fail int64
	}{
		{"small", 5 * miB, 3 * miB},
		{"large", 40 * miB, 25 * miB},
		{"at once", 1 * miB, 0},
	} {
		t.Run(c.name+" reader error", func(t *testing.T) {
			name := "fail/" + strings.ReplaceAll(c.name, " ", "-")
			err := b.Save(ctx, name, &errAfterReader{r: Data(3, c.size), left: c.fail}, c.size)
			if err == nil {
				t.Fatalf("Save with a reader failing after %d of %d bytes = nil, want an error", c.fail, c.size)
			}
			if !errors.Is(err, errSource) {
				t.Errorf("Save error %q does not wrap the reader's error", err)
			}
			assertGone(t, b, name)
		})
		t.Run(c.name+" short reader", func(t *testing.T) {
			name := "short/" + strings.ReplaceAll(c.name, " ", "-")
			err := b.Save(ctx, name, Data(3, c.fail), c.size)
			if err == nil {
				t.Fatalf("Save with %d of %d bytes = nil, want an error", c.fail, c.size)
			}
			assertGone(t, b, name)
		})
	}
	// Save still works for those names afterwards.
	MustSave(t, b, "fail/small", []byte("ok"))
}

// cancelReader cancels its context after n bytes and then keeps producing,
// counting what is read after the cancellation.
type cancelReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
	after  int64 // bytes read after cancel
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.after += int64(len(p))
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// maxReadAfterCancel bounds how much a Save may still read from its source
// once its context is cancelled: a part or buffer already being filled, not
// the rest of the object.
const maxReadAfterCancel = 32 * miB

func testCancel(t *testing.T, b storage.Backend) {
	for _, size := range []int64{8 * miB, 1 << 30} {
		t.Run(sizeName(size), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			name := "cancel/" + sizeName(size)
			cr := &cancelReader{r: Data(4, size), n: min(size/4, 40*miB), cancel: cancel}
			err := b.Save(ctx, name, cr, size)
			if err == nil {
				t.Fatalf("cancelled Save = nil, want an error")
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled Save = %v, want it to wrap context.Canceled", err)
			}
			// Promptly, measured in bytes rather than seconds: the upload
			// stops reading its source instead of running on to the end.
			if cr.after > maxReadAfterCancel {
				t.Errorf("cancelled Save read %d MiB more after the cancel, want at most %d MiB", cr.after/miB, maxReadAfterCancel/miB)
			}
			assertGone(t, b, name)
		})
	}
}

func testConcurrent(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			size := int64(512*kiB + i*kiB)
			errs[i] = b.Save(ctx, fmt.Sprintf("conc/%02d", i), Data(uint64(100+i), size), size)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Save %d = %v", i, err)
		}
	}
	for i := range n {
		size := int64(512*kiB + i*kiB)
		if got := MustLoad(t, b, fmt.Sprintf("conc/%02d", i)); !bytes.Equal(got, Bytes(uint64(100+i), size)) {
			t.Errorf("object %d differs after concurrent saves", i)
		}
	}
	if got := MustList(t, b, "conc/"); len(got) != n {
		t.Errorf("List(conc/) = %d names, want %d", len(got), n)
	}
}

func testRemove(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	MustSave(t, b, "rm/a", []byte("a"))
	MustSave(t, b, "rm/b", []byte("b"))
	if err := b.Remove(ctx, "rm/a"); err != nil {
		t.Fatalf("Remove = %v", err)
	}
	if _, err := b.Stat(ctx, "rm/a"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after Remove = %v, want ErrNotFound", err)
	}
	if got := MustList(t, b, "rm/"); len(got) != 1 || got[0] != "rm/b" {
		t.Errorf("List after Remove = %q, want [rm/b]", got)
	}
	if err := b.Remove(ctx, "rm/a"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second Remove = %v, want ErrNotFound", err)
	}
	MustSave(t, b, "rm/a", []byte("again"))
	if got := MustLoad(t, b, "rm/a"); string(got) != "again" {
		t.Errorf("Load after re-save = %q", got)
	}
}

func testInvalidNames(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	for _, name := range []string{"", "/abs", "a//b", "a/", "../x", "a/../b", "a/./b", "."} {
		err := b.Save(ctx, name, strings.NewReader("x"), 1)
		if !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("Save(%q) = %v, want ErrInvalidName", name, err)
		}
		if _, err := b.Stat(ctx, name); !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("Stat(%q) = %v, want ErrInvalidName", name, err)
		}
	}
}
