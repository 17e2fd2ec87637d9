package storagetest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

func newFaultFile(t *testing.T) *storagetest.Fault {
	t.Helper()
	b, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return storagetest.NewFault(b)
}

func TestFaultFailNth(t *testing.T) {
	ctx := context.Background()
	f := newFaultFile(t)
	f.FailNth(storage.OpSave, 2, nil)
	for i, name := range []string{"a", "b", "c"} {
		err := f.Save(ctx, name, strings.NewReader(name), 1)
		if wantFail := i == 1; wantFail != errors.Is(err, storagetest.ErrInjected) || (!wantFail && err != nil) {
			t.Errorf("Save #%d = %v, want injected failure only on #2", i+1, err)
		}
	}
	if _, err := f.Stat(ctx, "b"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(b) = %v: the failed call must not reach the backend", err)
	}
	if got := f.Calls(storage.OpSave); got != 3 {
		t.Errorf("Calls(save) = %d, want 3", got)
	}
}

func TestFaultFailSaveAfter(t *testing.T) {
	ctx := context.Background()
	f := newFaultFile(t)
	f.FailSaveAfter(1000)
	err := f.Save(ctx, "obj", storagetest.Data(1, 5000), 5000)
	if !errors.Is(err, storagetest.ErrInjected) {
		t.Fatalf("Save = %v, want the injected reader error", err)
	}
	if _, err := f.Unwrap().Stat(ctx, "obj"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("wrapped backend Stat = %v, want ErrNotFound after a failed save", err)
	}
	f.FailSaveAfter(-1)
	if err := f.Save(ctx, "obj", storagetest.Data(1, 5000), 5000); err != nil {
		t.Errorf("Save after switching off = %v", err)
	}
}

func TestFaultCorruptLoads(t *testing.T) {
	ctx := context.Background()
	f := newFaultFile(t)
	data := storagetest.Bytes(2, 100)
	storagetest.MustSave(t, f, "obj", data)
	f.CorruptLoads(5)
	got := storagetest.MustLoad(t, f, "obj")
	if len(got) != len(data) || got[5] != data[5]^0xff || !bytes.Equal(got[:5], data[:5]) || !bytes.Equal(got[6:], data[6:]) {
		t.Errorf("corrupted load differs elsewhere than byte 5")
	}
	// The stored object is untouched.
	if err := f.Unwrap().Load(ctx, "obj", 0, -1, func(r io.Reader) error {
		b, _ := io.ReadAll(r)
		if !bytes.Equal(b, data) {
			t.Errorf("stored object changed")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestFaultDown(t *testing.T) {
	ctx := context.Background()
	f := newFaultFile(t)
	storagetest.MustSave(t, f, "obj", []byte("x"))
	f.SetDown(true)
	errs := map[string]error{
		"save":   f.Save(ctx, "new", strings.NewReader("y"), 1),
		"load":   f.Load(ctx, "obj", 0, -1, func(io.Reader) error { return nil }),
		"list":   f.List(ctx, "", func(storage.Info) error { return nil }),
		"remove": f.Remove(ctx, "obj"),
	}
	_, errs["stat"] = f.Stat(ctx, "obj")
	for op, err := range errs {
		if !errors.Is(err, storage.ErrUnavailable) || !strings.Contains(err.Error(), f.Location()) {
			t.Errorf("%s while down = %v, want ErrUnavailable naming %s", op, err, f.Location())
		}
	}
	f.SetDown(false)
	if got := storagetest.MustLoad(t, f, "obj"); string(got) != "x" {
		t.Errorf("Load after coming back = %q", got)
	}
}

func TestFaultDelay(t *testing.T) {
	f := newFaultFile(t)
	f.SetDelay(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := f.Stat(ctx, "obj"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("delayed Stat = %v, want the context's deadline", err)
	}
}
