package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// grsRig is a replicated backend over two fault-wrapped real backends,
// recording every fallback it reports.
type grsRig struct {
	grs                *storage.ReplicatedBackend
	primary, secondary *storagetest.Fault

	mu        sync.Mutex
	fallbacks []storage.Fallback
}

func (g *grsRig) reports() []storage.Fallback {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.fallbacks)
}

func newGRS(t *testing.T, primary, secondary storage.Backend, opts ...storage.ReplicatedOption) *grsRig {
	t.Helper()
	g := &grsRig{primary: storagetest.NewFault(primary), secondary: storagetest.NewFault(secondary)}
	opts = append([]storage.ReplicatedOption{storage.WithFallbackReport(func(f storage.Fallback) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.fallbacks = append(g.fallbacks, f)
	})}, opts...)
	g.grs = storage.Replicated(g.primary, g.secondary, opts...)
	t.Cleanup(func() { g.grs.Close() })
	return g
}

func newFile(t *testing.T) *storage.File {
	t.Helper()
	b, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newFileGRS is a replicated backend over two file backends.
func newFileGRS(t *testing.T, opts ...storage.ReplicatedOption) (*grsRig, *storage.File, *storage.File) {
	t.Helper()
	p, s := newFile(t), newFile(t)
	return newGRS(t, p, s, opts...), p, s
}

// newMinIOGRS is a replicated backend over the two MinIO servers.
func newMinIOGRS(t *testing.T, opts ...storage.ReplicatedOption) *grsRig {
	t.Helper()
	return newGRS(t, openMinIO(t, "primary"), openMinIO(t, "secondary"), opts...)
}

// contentName names data the way tapeless names stored objects: by the
// SHA-256 of the bytes.
func contentName(data []byte) string {
	s := sha256.Sum256(data)
	return "packs/" + hex.EncodeToString(s[:1]) + "/" + hex.EncodeToString(s[:])
}

func sha256Of(data []byte) [32]byte { return sha256.Sum256(data) }

// hashFromName is the WithContentHash function for contentName names.
func hashFromName(name string) ([32]byte, bool) {
	var sum [32]byte
	b, err := hex.DecodeString(path.Base(name))
	if err != nil || len(b) != len(sum) {
		return sum, false
	}
	copy(sum[:], b)
	return sum, true
}

// onlyReader hides io.Seeker so Save must copy the secondary from the
// primary.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func load(ctx context.Context, b storage.Backend, name string) ([]byte, error) {
	var got []byte
	err := b.Load(ctx, name, 0, -1, func(r io.Reader) error {
		var err error
		got, err = io.ReadAll(r)
		return err
	})
	return got, err
}

func mustHold(t *testing.T, b storage.Backend, name string, want []byte) {
	t.Helper()
	got, err := load(context.Background(), b, name)
	if err != nil {
		t.Fatalf("Load(%s) at %s = %v", name, b.Location(), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s at %s holds %d bytes that differ from the %d written", name, b.Location(), len(got), len(want))
	}
}

func mustLack(t *testing.T, b storage.Backend, name string) {
	t.Helper()
	if _, err := b.Stat(context.Background(), name); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat(%s) at %s = %v, want ErrNotFound", name, b.Location(), err)
	}
}

// TestReplicatedConformance runs the backend suite on two file copies: a
// replicated backend is a Backend like any other.
func TestReplicatedConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		g, _, _ := newFileGRS(t)
		return g.grs
	})
}

func TestReplicatedSaveWritesBothCopies(t *testing.T) {
	backends := map[string]func(t *testing.T) *grsRig{
		"file":  func(t *testing.T) *grsRig { g, _, _ := newFileGRS(t); return g },
		"minio": func(t *testing.T) *grsRig { return newMinIOGRS(t) },
	}
	for kind, mk := range backends {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			g := mk(t)
			// 20 MiB takes the multipart path on S3; the unseekable
			// reader makes the secondary copy come from the primary.
			for _, c := range []struct {
				name   string
				size   int64
				reader func([]byte) io.Reader
			}{
				{"seekable small", 1000, func(b []byte) io.Reader { return bytes.NewReader(b) }},
				{"stream small", 1000, func(b []byte) io.Reader { return onlyReader{bytes.NewReader(b)} }},
				{"stream large", 20 << 20, func(b []byte) io.Reader { return onlyReader{bytes.NewReader(b)} }},
				{"empty", 0, func(b []byte) io.Reader { return bytes.NewReader(b) }},
			} {
				data := storagetest.Bytes(uint64(c.size)+7, c.size)
				name := contentName(data)
				if err := g.grs.Save(ctx, name, c.reader(data), c.size); err != nil {
					t.Fatalf("%s: Save = %v", c.name, err)
				}
				mustHold(t, g.primary, name, data)
				mustHold(t, g.secondary, name, data)
				_, sum, _ := storage.ChecksumOf(bytes.NewReader(data))
				for _, b := range []storage.Backend{g.primary, g.secondary} {
					if err := storage.Confirm(ctx, b, name, c.size, sum); err != nil {
						t.Errorf("%s: Confirm at %s = %v", c.name, b.Location(), err)
					}
				}
			}
			if r := g.reports(); len(r) != 0 {
				t.Errorf("fallbacks reported with both copies up: %v", r)
			}
		})
	}
}

// TestReplicatedSecondaryDown: the primary copy is written and confirmed,
// Save says replication is pending, and CatchUp completes it once the
// secondary is back.
func TestReplicatedSecondaryDown(t *testing.T) {
	backends := map[string]func(t *testing.T) *grsRig{
		"file":  func(t *testing.T) *grsRig { g, _, _ := newFileGRS(t); return g },
		"minio": func(t *testing.T) *grsRig { return newMinIOGRS(t) },
	}
	for kind, mk := range backends {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			g := mk(t)
			var names []string
			var datas [][]byte
			for i := range 3 {
				data := storagetest.Bytes(uint64(100+i), int64(1000*(i+1)))
				datas = append(datas, data)
				names = append(names, contentName(data))
			}
			// The first object replicates while both are up.
			if err := g.grs.Save(ctx, names[0], bytes.NewReader(datas[0]), int64(len(datas[0]))); err != nil {
				t.Fatal(err)
			}
			g.secondary.SetDown(true)
			for i := 1; i < 3; i++ {
				err := g.grs.Save(ctx, names[i], bytes.NewReader(datas[i]), int64(len(datas[i])))
				if !errors.Is(err, storage.ErrReplicationPending) || !errors.Is(err, storage.ErrUnavailable) {
					t.Fatalf("Save with the secondary down = %v, want ErrReplicationPending wrapping ErrUnavailable", err)
				}
				mustHold(t, g.primary, names[i], datas[i])
			}
			if _, _, err := g.grs.Missing(ctx, names); !errors.Is(err, storage.ErrUnavailable) {
				t.Errorf("Missing with the secondary down = %v, want ErrUnavailable (unknown is not missing)", err)
			}
			calls := g.secondary.Calls(storage.OpSave) + g.secondary.Calls(storage.OpStat)
			done, err := g.grs.CatchUp(ctx, names[1:])
			if !errors.Is(err, storage.ErrUnavailable) || len(done) != 0 {
				t.Errorf("CatchUp with the secondary still down = %v, %v; want nothing done and ErrUnavailable", done, err)
			}
			if n := g.secondary.Calls(storage.OpSave) + g.secondary.Calls(storage.OpStat) - calls; n != 1 {
				t.Errorf("CatchUp made %d calls to a down secondary, want 1 (stop at the first)", n)
			}

			g.secondary.SetDown(false)
			onP, onS, err := g.grs.Missing(ctx, names)
			if err != nil || len(onP) != 0 || !slices.Equal(onS, names[1:]) {
				t.Fatalf("Missing = %v, %v, %v; want none on the primary and %v on the secondary", onP, onS, err, names[1:])
			}
			done, err = g.grs.CatchUp(ctx, names)
			if err != nil || !slices.Equal(done, names) {
				t.Fatalf("CatchUp = %v, %v; want all done", done, err)
			}
			for i, name := range names {
				mustHold(t, g.secondary, name, datas[i])
			}
			if onP, onS, err := g.grs.Missing(ctx, names); err != nil || len(onP)+len(onS) != 0 {
				t.Errorf("Missing after CatchUp = %v, %v, %v; want nothing", onP, onS, err)
			}
		})
	}
}

// TestReplicatedCatchUpGoesOn: an object that cannot be replicated does
// not stop the others; the error names it.
func TestReplicatedCatchUpGoesOn(t *testing.T) {
	ctx := context.Background()
	g, p, s := newFileGRS(t)
	storagetest.MustSave(t, p, "packs/a", []byte("a"))
	storagetest.MustSave(t, p, "packs/c", []byte("c"))
	done, err := g.grs.CatchUp(ctx, []string{"packs/a", "packs/b-lost", "packs/c"})
	if !slices.Equal(done, []string{"packs/a", "packs/c"}) || !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "packs/b-lost") {
		t.Errorf("CatchUp = %v, %v; want a and c done and an error naming b-lost", done, err)
	}
	mustHold(t, s, "packs/c", []byte("c"))
}

// TestReplicatedSecondaryFailsMidway: a secondary upload that breaks off
// leaves nothing on the secondary and reports pending.
func TestReplicatedSecondaryFailsMidway(t *testing.T) {
	ctx := context.Background()
	g, _, s := newFileGRS(t)
	data := storagetest.Bytes(5, 3<<20)
	name := contentName(data)
	g.secondary.FailSaveAfter(1 << 20)
	err := g.grs.Save(ctx, name, bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, storage.ErrReplicationPending) {
		t.Fatalf("Save = %v, want ErrReplicationPending", err)
	}
	mustLack(t, s, name)
	g.secondary.Reset()
	if err := g.grs.Replicate(ctx, name); err != nil {
		t.Fatal(err)
	}
	mustHold(t, s, name, data)
}

// TestReplicatedResumesAfterCrashBetweenCopies: a run killed after the
// primary copy leaves the object on the primary only; the next Save of the
// same content completes the secondary and succeeds.
func TestReplicatedResumesAfterCrashBetweenCopies(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		minio  bool
		size   int64
		reader func([]byte) io.Reader
	}{
		{"file seekable", false, 70000, func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"file stream", false, 70000, func(b []byte) io.Reader { return onlyReader{bytes.NewReader(b)} }},
		{"minio seekable", true, 70000, func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"minio stream multipart", true, 20 << 20, func(b []byte) io.Reader { return onlyReader{bytes.NewReader(b)} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var g *grsRig
			if c.minio {
				g = newMinIOGRS(t)
			} else {
				g, _, _ = newFileGRS(t)
			}
			p, s := g.primary.Unwrap(), g.secondary.Unwrap()
			data := storagetest.Bytes(11, c.size)
			name := contentName(data)
			storagetest.MustSave(t, p, name, data) // the killed run got this far
			if err := g.grs.Save(ctx, name, c.reader(data), int64(len(data))); err != nil {
				t.Fatalf("Save after a crash between copies = %v, want success", err)
			}
			mustHold(t, s, name, data)
			// Both copies present: saving again is still a success and
			// writes nothing.
			saves := g.secondary.Calls(storage.OpSave)
			if err := g.grs.Save(ctx, name, c.reader(data), int64(len(data))); err != nil {
				t.Fatalf("Save of an object on both copies = %v, want success", err)
			}
			if got := g.secondary.Calls(storage.OpSave); got > saves+1 {
				t.Errorf("secondary saves went from %d to %d", saves, got)
			}
			mustHold(t, p, name, data)
			mustHold(t, s, name, data)
		})
	}
}

// TestReplicatedPrimaryDownOnSave: the primary is required; without it
// nothing is written anywhere and the error is not "pending".
func TestReplicatedPrimaryDownOnSave(t *testing.T) {
	ctx := context.Background()
	g, _, s := newFileGRS(t)
	g.primary.SetDown(true)
	data := []byte("needs the primary first")
	err := g.grs.Save(ctx, "packs/p", bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrReplicationPending) {
		t.Fatalf("Save with the primary down = %v, want ErrUnavailable and not pending", err)
	}
	mustLack(t, s, "packs/p")
}

// TestReplicatedNeverOverwrites: a different object under the name on
// either copy is a conflict, and both copies keep what they had.
func TestReplicatedNeverOverwrites(t *testing.T) {
	ctx := context.Background()
	data := []byte("the object we mean to store")
	other := []byte("something else, same length")
	t.Run("primary", func(t *testing.T) {
		g, p, s := newFileGRS(t)
		storagetest.MustSave(t, p, "packs/x", other)
		err := g.grs.Save(ctx, "packs/x", bytes.NewReader(data), int64(len(data)))
		if !errors.Is(err, storage.ErrConflict) || !errors.Is(err, storage.ErrExists) || errors.Is(err, storage.ErrReplicationPending) {
			t.Fatalf("Save over a different primary object = %v, want ErrConflict and ErrExists, not pending", err)
		}
		mustHold(t, p, "packs/x", other)
		mustLack(t, s, "packs/x")
	})
	t.Run("secondary", func(t *testing.T) {
		g, p, s := newFileGRS(t)
		storagetest.MustSave(t, s, "packs/x", other)
		err := g.grs.Save(ctx, "packs/x", bytes.NewReader(data), int64(len(data)))
		if !errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrReplicationPending) {
			t.Fatalf("Save over a different secondary object = %v, want ErrConflict, not pending", err)
		}
		mustHold(t, p, "packs/x", data)
		mustHold(t, s, "packs/x", other)
		if err := g.grs.Replicate(ctx, "packs/x"); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("Replicate over a different secondary object = %v, want ErrConflict", err)
		}
		mustHold(t, s, "packs/x", other)
	})
	t.Run("shorter source", func(t *testing.T) {
		g, p, _ := newFileGRS(t)
		storagetest.MustSave(t, p, "packs/x", data)
		err := g.grs.Save(ctx, "packs/x", bytes.NewReader(data[:5]), int64(len(data)))
		if err == nil || errors.Is(err, storage.ErrConflict) {
			t.Fatalf("Save with a short source over an existing object = %v, want a read error", err)
		}
	})
}

// TestReplicatedPrimaryDownFallsBack: with the primary down, reads come
// from the secondary and every fallback is reported.
func TestReplicatedPrimaryDownFallsBack(t *testing.T) {
	backends := map[string]func(t *testing.T) *grsRig{
		"file":  func(t *testing.T) *grsRig { g, _, _ := newFileGRS(t); return g },
		"minio": func(t *testing.T) *grsRig { return newMinIOGRS(t) },
	}
	for kind, mk := range backends {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			g := mk(t)
			data := storagetest.Bytes(21, 5000)
			name := contentName(data)
			if err := g.grs.Save(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
			g.primary.SetDown(true)
			mustHold(t, g.grs, name, data)
			info, err := g.grs.Stat(ctx, name)
			if err != nil || info.Size != int64(len(data)) {
				t.Errorf("Stat with the primary down = %+v, %v", info, err)
			}
			var listed []string
			if err := g.grs.List(ctx, "packs/", func(i storage.Info) error {
				listed = append(listed, i.Name)
				return nil
			}); err != nil || !slices.Equal(listed, []string{name}) {
				t.Errorf("List with the primary down = %v, %v", listed, err)
			}
			r := g.reports()
			if len(r) != 3 || r[0].Op != storage.OpLoad || r[1].Op != storage.OpStat || r[2].Op != storage.OpList {
				t.Fatalf("fallbacks reported = %v, want load, stat, list", r)
			}
			for _, f := range r {
				if !f.Served || !errors.Is(f.Err, storage.ErrUnavailable) || f.Secondary != g.secondary.Location() ||
					!strings.Contains(f.String(), "served from the secondary copy at "+g.secondary.Location()) {
					t.Errorf("fallback %+v (%s) does not say the secondary served it because the primary was down", f, f)
				}
			}
			// A ranged read falls back as well.
			var part []byte
			err = g.grs.Load(ctx, name, 100, 10, func(r io.Reader) error {
				var err error
				part, err = io.ReadAll(r)
				return err
			})
			if err != nil || !bytes.Equal(part, data[100:110]) {
				t.Errorf("ranged Load with the primary down = %v", err)
			}
			// Both down: an error that does not claim the object is lost.
			g.secondary.SetDown(true)
			_, err = load(ctx, g.grs, name)
			if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Load with both down = %v, want ErrUnavailable and not ErrNotFound", err)
			}
		})
	}
}

// TestReplicatedMissingOnPrimaryFallsBack: an object the primary lost is
// read from the secondary; ErrNotFound only when both lack it, and only
// the secondary's absence does not make a down primary look like loss.
func TestReplicatedMissingOnPrimaryFallsBack(t *testing.T) {
	ctx := context.Background()
	g, p, s := newFileGRS(t)
	data := []byte("kept on the secondary only")
	storagetest.MustSave(t, s, "packs/lost", data)
	mustHold(t, g.grs, "packs/lost", data)
	if r := g.reports(); len(r) != 1 || !errors.Is(r[0].Err, storage.ErrNotFound) {
		t.Errorf("fallbacks = %v, want one for the missing primary object", r)
	}
	if _, err := load(ctx, g.grs, "packs/nowhere"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Load of an object on neither copy = %v, want ErrNotFound", err)
	}
	storagetest.MustSave(t, p, "packs/primary-only", data)
	g.primary.SetDown(true)
	if _, err := load(ctx, g.grs, "packs/primary-only"); errors.Is(err, storage.ErrNotFound) || !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Load with the primary down and the secondary lacking it = %v, want ErrUnavailable, not ErrNotFound", err)
	}
}

// tamper replaces the bytes of a file backend's object behind its back,
// as bit rot or an attacker with access to the disk would.
func tamper(t *testing.T, f *storage.File, name string, data []byte) {
	t.Helper()
	p := filepath.Join(f.Root(), filepath.FromSlash(name))
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReplicatedTamperedPrimary: bytes that do not match their name make
// the read fall back to the secondary, and are never replicated.
func TestReplicatedTamperedPrimary(t *testing.T) {
	ctx := context.Background()
	data := storagetest.Bytes(31, 64<<10)
	name := contentName(data)
	bad := slices.Clone(data)
	bad[1000] ^= 1

	t.Run("content hash", func(t *testing.T) {
		g, p, _ := newFileGRS(t, storage.WithContentHash(hashFromName))
		if err := g.grs.Save(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		tamper(t, p, name, bad)
		mustHold(t, g.grs, name, data)
		r := g.reports()
		if len(r) != 1 || !errors.Is(r[0].Err, storage.ErrCorrupt) || !r[0].Served {
			t.Fatalf("fallbacks = %v, want one for the corrupt primary copy", r)
		}
		// A callback that reads only part still gets the whole object
		// checked.
		err := g.grs.Load(ctx, name, 0, -1, func(r io.Reader) error {
			_, err := io.ReadFull(r, make([]byte, 10))
			return err
		})
		if err != nil || len(g.reports()) != 2 {
			t.Errorf("partial read of a corrupt primary = %v with %d fallbacks, want success after a second fallback", err, len(g.reports()))
		}
	})
	t.Run("fault corrupts reads", func(t *testing.T) {
		g, _, _ := newFileGRS(t, storage.WithContentHash(hashFromName))
		if err := g.grs.Save(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		g.primary.CorruptLoads(12345)
		mustHold(t, g.grs, name, data)
		if r := g.reports(); len(r) != 1 || !errors.Is(r[0].Err, storage.ErrCorrupt) {
			t.Errorf("fallbacks = %v, want one for the corrupt read", r)
		}
	})
	t.Run("callback authenticates", func(t *testing.T) {
		// No content hash: the caller's own check (the archive decrypting)
		// reports the damage with ErrCorrupt.
		g, p, _ := newFileGRS(t)
		if err := g.grs.Save(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		tamper(t, p, name, bad)
		calls := 0
		err := g.grs.Load(ctx, name, 0, -1, func(r io.Reader) error {
			calls++
			got, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, data) {
				return errors.Join(errors.New("pack does not authenticate"), storage.ErrCorrupt)
			}
			return nil
		})
		if err != nil || calls != 2 || len(g.reports()) != 1 {
			t.Errorf("Load = %v after %d calls and %d fallbacks, want success on the second call", err, calls, len(g.reports()))
		}
	})
	t.Run("callback's own error", func(t *testing.T) {
		g, _, _ := newFileGRS(t)
		if err := g.grs.Save(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		own := errors.New("disk full while restoring")
		calls := 0
		err := g.grs.Load(ctx, name, 0, -1, func(io.Reader) error { calls++; return own })
		if err != own || calls != 1 || len(g.reports()) != 0 {
			t.Errorf("Load = %v after %d calls and %d fallbacks, want the callback's error, one call, no fallback", err, calls, len(g.reports()))
		}
	})
	t.Run("save refuses bytes that do not match the name", func(t *testing.T) {
		g, p, s := newFileGRS(t, storage.WithContentHash(hashFromName))
		err := g.grs.Save(ctx, name, bytes.NewReader(bad), int64(len(bad)))
		if !errors.Is(err, storage.ErrCorrupt) || errors.Is(err, storage.ErrReplicationPending) {
			t.Fatalf("Save of bytes that do not match the name = %v, want ErrCorrupt", err)
		}
		mustLack(t, p, name)
		mustLack(t, s, name)
	})
	t.Run("replicate refuses", func(t *testing.T) {
		g, p, s := newFileGRS(t, storage.WithContentHash(hashFromName))
		storagetest.MustSave(t, p, name, bad) // primary only, already damaged
		err := g.grs.Replicate(ctx, name)
		if !errors.Is(err, storage.ErrCorrupt) {
			t.Fatalf("Replicate of a corrupt primary = %v, want ErrCorrupt", err)
		}
		mustLack(t, s, name)
	})
}

func TestReplicatedRemove(t *testing.T) {
	ctx := context.Background()
	g, p, s := newFileGRS(t)
	for _, n := range []string{"a", "b", "c"} {
		storagetest.MustSave(t, g.grs, n, []byte(n))
	}
	if err := g.grs.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	mustLack(t, p, "a")
	mustLack(t, s, "a")
	// A prune killed between the copies: the next Remove finishes it.
	if err := p.Remove(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := g.grs.Remove(ctx, "b"); err != nil {
		t.Errorf("Remove of an object left on the secondary = %v", err)
	}
	mustLack(t, s, "b")
	if err := g.grs.Remove(ctx, "b"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Remove of an object on neither copy = %v, want ErrNotFound", err)
	}
	// A primary that refuses keeps the secondary untouched.
	g.primary.FailNth(storage.OpRemove, g.primary.Calls(storage.OpRemove)+1, storage.ErrLocked)
	if err := g.grs.Remove(ctx, "c"); !errors.Is(err, storage.ErrLocked) {
		t.Errorf("Remove refused by the primary = %v, want ErrLocked", err)
	}
	mustHold(t, p, "c", []byte("c"))
	mustHold(t, s, "c", []byte("c"))
}

func TestReplicatedListBoth(t *testing.T) {
	ctx := context.Background()
	g, p, s := newFileGRS(t)
	storagetest.MustSave(t, g.grs, "x/both", []byte("1"))
	storagetest.MustSave(t, p, "x/primary", []byte("22"))
	storagetest.MustSave(t, s, "x/secondary", []byte("333"))
	storagetest.MustSave(t, s, "y/elsewhere", []byte("4"))
	type row struct {
		name   string
		p, s   bool
		pn, sn int64
	}
	var got []row
	err := g.grs.ListBoth(ctx, "x/", func(pr storage.Presence) error {
		r := row{name: pr.Name, p: pr.Primary != nil, s: pr.Secondary != nil}
		if r.p {
			r.pn = pr.Primary.Size
		}
		if r.s {
			r.sn = pr.Secondary.Size
		}
		got = append(got, r)
		return nil
	})
	want := []row{{"x/both", true, true, 1, 1}, {"x/primary", true, false, 2, 0}, {"x/secondary", false, true, 0, 3}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ListBoth = %v, %v; want %v", got, err, want)
	}
	// A copy that cannot be listed fails the whole call before fn runs.
	g.secondary.SetDown(true)
	calls := 0
	err = g.grs.ListBoth(ctx, "x/", func(storage.Presence) error { calls++; return nil })
	if !errors.Is(err, storage.ErrUnavailable) || calls != 0 {
		t.Errorf("ListBoth with the secondary down = %v after %d calls, want ErrUnavailable before any", err, calls)
	}
	// Plain List never falls back once the primary produced names.
	g.secondary.SetDown(false)
	if names := storagetest.MustList(t, g.grs, "x/"); !slices.Equal(names, []string{"x/both", "x/primary"}) {
		t.Errorf("List = %v, want the primary's names", names)
	}
}

// TestReplicatedSaveReportsAndSkipsPresent: Save reports each copy it
// confirms, primary first; a repeated Save sends nothing and reports the
// copies as already there.
func TestReplicatedSaveReportsAndSkipsPresent(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var got []storage.SaveReport
	g, _, _ := newFileGRS(t, storage.WithSaveReport(func(r storage.SaveReport) { mu.Lock(); got = append(got, r); mu.Unlock() }))
	data := []byte("reported object")
	name := contentName(data)
	if err := g.grs.Save(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	saves := g.primary.Calls(storage.OpSave) + g.secondary.Calls(storage.OpSave)
	if err := g.grs.Save(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if n := g.primary.Calls(storage.OpSave) + g.secondary.Calls(storage.OpSave); n != saves {
		t.Errorf("a repeated Save wrote %d more times, want none", n-saves)
	}
	want := []storage.SaveReport{
		{Name: name, Size: int64(len(data)), Written: true},
		{Name: name, Size: int64(len(data)), Secondary: true, Written: true},
		{Name: name, Size: int64(len(data))},
		{Name: name, Size: int64(len(data)), Secondary: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("reports %+v, want %+v", got, want)
	}
	// A different object under the name is still refused.
	other := bytes.Repeat([]byte("x"), len(data))
	if err := g.grs.Save(ctx, name, bytes.NewReader(other), int64(len(other))); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("Save of a different object over a present one = %v, want ErrConflict", err)
	}
}

// TestReplicatedSavePrimary: SavePrimary leaves the secondary alone, and
// Replicate completes the object later.
func TestReplicatedSavePrimary(t *testing.T) {
	ctx := context.Background()
	g, p, s := newFileGRS(t)
	data := []byte("primary only")
	name := contentName(data)
	if err := g.grs.SavePrimary(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	mustHold(t, p, name, data)
	mustLack(t, s, name)
	if err := g.grs.Replicate(ctx, name); err != nil {
		t.Fatal(err)
	}
	mustHold(t, s, name, data)
	if err := g.grs.ConfirmSHA256(ctx, name, int64(len(data)), sha256Of(data)); err != nil {
		t.Errorf("ConfirmSHA256 on both copies: %v", err)
	}
}

// TestReplicatedUpkeep: fn sees the primary, then the secondary; a
// primary failure stops it.
func TestReplicatedUpkeep(t *testing.T) {
	g, _, _ := newFileGRS(t)
	var seen []bool
	if err := g.grs.Upkeep(func(_ storage.Backend, secondary bool) error { seen = append(seen, secondary); return nil }); err != nil || !slices.Equal(seen, []bool{false, true}) {
		t.Errorf("Upkeep visited %v (%v), want primary then secondary", seen, err)
	}
	seen = nil
	boom := errors.New("boom")
	if err := g.grs.Upkeep(func(_ storage.Backend, secondary bool) error { seen = append(seen, secondary); return boom }); !errors.Is(err, boom) || len(seen) != 1 {
		t.Errorf("Upkeep with a failing primary visited %v, returned %v; want only the primary and its error", seen, err)
	}
}

// countingClock is a throttle clock whose time moves only when the
// throttle sleeps.
type countingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *countingClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *countingClock) SleepUntil(_ context.Context, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

// TestReplicatedThrottleCoversBothCopies: WithThrottle paces the writes of
// both copies with one limit.
func TestReplicatedThrottleCoversBothCopies(t *testing.T) {
	ctx := context.Background()
	sched, err := storage.ParseThrottle("off=1MiB/s")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	clock := &countingClock{now: start}
	g, _, _ := newFileGRS(t, storage.WithThrottle(sched, clock))
	data := bytes.Repeat([]byte("throttled "), 200<<10) // 2 MB
	if err := g.grs.Save(ctx, contentName(data), bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	// Two copies of 2 MB at 1 MiB/s: about 3.8 s, less a burst.
	want := time.Duration(float64(2*len(data)-(1<<20)/10) / (1 << 20) * float64(time.Second))
	if took := clock.Now().Sub(start); took < want || took > want+2*time.Second {
		t.Errorf("both copies took %s of throttle time, want about %s", took, want)
	}
	if _, ok := storage.Innermost(g.grs.Primary()).(*storagetest.Fault); ok {
		t.Error("Innermost of a throttled copy stops at a wrapper")
	}
}
