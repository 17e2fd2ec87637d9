package archive

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func chunkAll(t testing.TB, r io.Reader) [][]byte {
	t.Helper()
	c := NewChunker(r)
	var out [][]byte
	for {
		b, err := c.Next(nil)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, b)
	}
}

func TestChunkerBoundsAndConcatenation(t *testing.T) {
	data := randomBytes(1, 48<<20)
	chunks := chunkAll(t, bytes.NewReader(data))
	if got := bytes.Join(chunks, nil); !bytes.Equal(got, data) {
		t.Fatal("concatenated chunks differ from the input")
	}
	for i, c := range chunks {
		if len(c) > ChunkMax || (len(c) < ChunkMin && i != len(chunks)-1) {
			t.Errorf("chunk %d has %d bytes, outside %d..%d", i, len(c), ChunkMin, ChunkMax)
		}
	}
	avg := len(data) / len(chunks)
	if avg < ChunkAvg*3/4 || avg > ChunkAvg*2 {
		t.Errorf("average chunk %d bytes over %d chunks, want about %d", avg, len(chunks), ChunkAvg)
	}
	t.Logf("%d chunks, average %d bytes", len(chunks), avg)
}

func TestChunkerReaderShapes(t *testing.T) {
	data := randomBytes(2, 9<<20+123)
	want := chunkAll(t, bytes.NewReader(data))
	for name, r := range map[string]io.Reader{
		"half":    iotest.HalfReader(bytes.NewReader(data)),
		"dataerr": iotest.DataErrReader(bytes.NewReader(data)),
		"onebyte": iotest.OneByteReader(bytes.NewReader(data[:ChunkMax+ChunkMin])),
	} {
		got := chunkAll(t, r)
		w := want
		if name == "onebyte" {
			w = chunkAll(t, bytes.NewReader(data[:ChunkMax+ChunkMin]))
		}
		if len(got) != len(w) {
			t.Fatalf("%s reader: %d chunks, want %d", name, len(got), len(w))
		}
		for i := range got {
			if !bytes.Equal(got[i], w[i]) {
				t.Fatalf("%s reader: chunk %d differs", name, i)
			}
		}
	}
}

func TestChunkerSmallAndEmpty(t *testing.T) {
	if got := chunkAll(t, bytes.NewReader(nil)); len(got) != 0 {
		t.Errorf("empty input gave %d chunks", len(got))
	}
	got := chunkAll(t, bytes.NewReader([]byte("hello")))
	if len(got) != 1 || string(got[0]) != "hello" {
		t.Errorf("small input gave %q", got)
	}
}

func TestChunkerReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	c := NewChunker(io.MultiReader(bytes.NewReader(randomBytes(3, 100)), iotest.ErrReader(boom)))
	b, err := c.Next(nil)
	if err != nil || len(b) != 100 {
		t.Fatalf("first Next = %d bytes, %v; want the 100 bytes read before the error", len(b), err)
	}
	if _, err := c.Next(nil); !errors.Is(err, boom) {
		t.Fatalf("second Next = %v, want the reader's error", err)
	}
}

// TestChunkerInsertShiftsFewChunks is why the chunker exists: one byte
// inserted in the middle of a big file changes only the chunks around it.
func TestChunkerInsertShiftsFewChunks(t *testing.T) {
	data := randomBytes(4, 64<<20)
	mid := len(data) / 2
	edited := make([]byte, 0, len(data)+1)
	edited = append(edited, data[:mid]...)
	edited = append(edited, 0x42)
	edited = append(edited, data[mid:]...)

	seen := map[ID]bool{}
	for _, c := range chunkAll(t, bytes.NewReader(data)) {
		seen[objectHash(c)] = true
	}
	after := chunkAll(t, bytes.NewReader(edited))
	changed := 0
	for _, c := range after {
		if !seen[objectHash(c)] {
			changed++
		}
	}
	if changed < 1 || changed > 2 {
		t.Errorf("inserting one byte changed %d of %d chunks, want 1 or 2", changed, len(after))
	}
}

func BenchmarkChunker(b *testing.B) {
	data := randomBytes(5, 64<<20)
	b.SetBytes(int64(len(data)))
	buf := make([]byte, 0, ChunkMax)
	for b.Loop() {
		c := NewChunker(bytes.NewReader(data))
		for {
			var err error
			buf, err = c.Next(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
