package archive

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// copyObjects copies every object of src to dst under the same name, as
// offload does.
func copyObjects(t *testing.T, src, dst storage.Backend) {
	t.Helper()
	ctx := context.Background()
	for _, prefix := range []string{PacksPrefix, IndexPrefix, PointsPrefix} {
		for _, name := range objectNames(t, src, prefix) {
			err := src.Load(ctx, name, 0, -1, func(r io.Reader) error {
				info, err := src.Stat(ctx, name)
				if err != nil {
					return err
				}
				return dst.Save(ctx, name, r, info.Size)
			})
			if err != nil {
				t.Fatalf("copy %s: %v", name, err)
			}
		}
	}
}

// TestReaderOverS3 reads a point back from a MinIO "vault" holding the
// store's objects: ranged reads of blobs, index objects over S3, and
// Verify with and without the key.
func TestReaderOverS3(t *testing.T) {
	url, opts := storagetest.MinIO(t, "primary")
	ctx := context.Background()
	vault, err := storage.Open(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer vault.Close()

	s, k := newTestStore(t)
	s.SetPackSize(1 << 20)
	data := [][]byte{textLike(70, 700<<10), randomBytes(71, 900<<10), []byte("small")}
	point, blobs := savePoint(t, s, "s3", time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), data...)
	copyObjects(t, s.Objects(), vault)

	ps, err := ListPoints(ctx, vault)
	if err != nil || len(ps) != 1 || ps[0].ID != point {
		t.Fatalf("ListPoints over S3 = %+v, %v", ps, err)
	}
	r := NewReader(vault, k)
	defer r.Close()
	if _, err := r.LoadPoint(ctx, point); err != nil {
		t.Fatal(err)
	}
	for i, id := range blobs {
		got, err := r.LoadBlob(ctx, BlobData, id)
		if err != nil || string(got) != string(data[i]) {
			t.Fatalf("LoadBlob %d over S3: %d bytes, %v", i, len(got), err)
		}
	}
	for _, key := range []*Keys{nil, k} {
		st, err := Verify(ctx, vault, key, true, 100, func(p VerifyProblem) { t.Errorf("problem: %v", p) })
		if err != nil || st.Points != 1 || st.PacksRead != st.Packs {
			t.Errorf("Verify over S3 (key %v) = %+v, %v", key != nil, st, err)
		}
	}
	gone := PackName(ps[0].Packs[0].Pack)
	if err := vault.Remove(ctx, gone); err != nil {
		t.Fatal(err)
	}
	var problems []string
	if _, err := Verify(ctx, vault, nil, false, 0, func(p VerifyProblem) { problems = append(problems, p.Error()) }); err != nil {
		t.Fatal(err)
	}
	if !mentions(problems, gone) {
		t.Errorf("keyless Verify over S3 with a pack removed: %v, want %s", problems, gone)
	}
}
