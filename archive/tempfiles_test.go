package archive

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stallingReader gives chunk-sized reads of zeros, says "saving" once the
// first one has been consumed (written to the temporary file), then
// blocks until the process is killed.
type stallingReader struct{ reads int }

func (r *stallingReader) Read(p []byte) (int, error) {
	r.reads++
	if r.reads == 2 {
		os.Stdout.WriteString("saving\n")
		select {}
	}
	clear(p)
	return len(p), nil
}

// TestHelperKilledSave is not a test: TestOpenStoreRemovesTempLeftovers
// runs the test binary with it to hold a store and die in the middle of
// saving a pack, as a killed backup does.
func TestHelperKilledSave(t *testing.T) {
	dir := os.Getenv("TAPELESS_TEST_KILLED_SAVE")
	if dir == "" {
		t.Skip("helper process only")
	}
	s, err := OpenStore(context.Background(), dir)
	if err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	name := PackName(ID{0xab, 1})
	s.Objects().Save(context.Background(), name, &stallingReader{}, 6<<20)
	os.Stdout.WriteString("save returned\n")
	os.Exit(1)
}

// tempLeftovers lists the files named like in-progress saves under root.
func tempLeftovers(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tapeless-tmp-") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestOpenStoreRemovesTempLeftovers: a backup killed while saving leaves
// its temporary file in objects/ (up to a pack in size). Opening the store
// for writing, which takes the lock, removes such files and nothing else;
// a read-only view, which takes no lock and may run beside a live backup,
// leaves them.
func TestOpenStoreRemovesTempLeftovers(t *testing.T) {
	s, _ := newTestStore(t)
	id, _ := savePoint(t, s, "src", time.Now(), textLike(1, 5000))
	dir := s.Dir()
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperKilledSave$")
	cmd.Env = append(os.Environ(), "TAPELESS_TEST_KILLED_SAVE="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "saving\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, out)
	cmd.Wait()

	objects := filepath.Join(dir, storeObjectsDir)
	// More leftovers where saves put them (beside the final name), and
	// look-alikes that are not ours to remove.
	for _, p := range []string{"index/.tapeless-tmp-111", "points/.tapeless-tmp-222"} {
		if err := os.WriteFile(filepath.Join(objects, p), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	outside := filepath.Join(dir, ".tapeless-tmp-333")
	if err := os.WriteFile(outside, []byte("not in objects"), 0o600); err != nil {
		t.Fatal(err)
	}
	similar := filepath.Join(objects, "tapeless-tmp-444")
	if err := os.WriteFile(similar, []byte("no leading dot"), 0o600); err != nil {
		t.Fatal(err)
	}
	left := tempLeftovers(t, objects)
	if len(left) != 3 {
		t.Fatalf("leftovers before opening: %v, want the killed save's and two more", left)
	}

	v, err := OpenStoreView(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	if got := tempLeftovers(t, objects); len(got) != 3 {
		t.Errorf("a read-only view removed temporary files: %v left of %v", got, left)
	}

	s, err = OpenStore(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := tempLeftovers(t, objects); len(got) != 0 {
		t.Errorf("temporary files left after OpenStore: %v", got)
	}
	for _, p := range []string{outside, similar} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("OpenStore removed %s, which is not a leftover in objects/: %v", p, err)
		}
	}
	st, err := Verify(context.Background(), s.Objects(), nil, true, 0, func(p VerifyProblem) { t.Errorf("verify: %v", p) })
	if err != nil || st.Points != 1 {
		t.Errorf("Verify after the cleanup: %d points, %v; want point %s intact", st.Points, err, id)
	}
}
