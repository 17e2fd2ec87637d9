package archive

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// treeWriter is the io.Writer a manifest is written to: it cuts the stream
// with the content-defined chunker into tree blobs, so an unchanged stretch
// of a tree yields the same blobs as last time and is stored once.
type treeWriter struct {
	pw   *io.PipeWriter
	done chan struct{}
	ids  []ID
	err  error
}

func newTreeWriter(ctx context.Context, s *Store) *treeWriter {
	pr, pw := io.Pipe()
	t := &treeWriter{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		err := forEachChunk(pr, func(chunk []byte) error {
			id, _, err := s.AddBlob(ctx, BlobTree, chunk)
			if err != nil {
				return fmt.Errorf("store tree blob: %w", err)
			}
			t.ids = append(t.ids, id)
			return nil
		})
		t.err = err
		pr.CloseWithError(err) // unblocks a writer when storing failed
	}()
	return t
}

func (t *treeWriter) Write(p []byte) (int, error) { return t.pw.Write(p) }

// abort stops the writer after a failure elsewhere.
func (t *treeWriter) abort(err error) {
	t.pw.CloseWithError(err)
	<-t.done
}

// close ends the stream and returns the tree blob IDs in order.
func (t *treeWriter) close() ([]ID, error) {
	t.pw.Close()
	<-t.done
	if t.err != nil {
		return nil, t.err
	}
	return t.ids, nil
}

// blobStream reads the concatenated plaintext of a list of blobs of one
// type (a file's data chunks, a point's tree blobs), loading one blob at a
// time, so memory stays bounded by one blob whatever the list's length.
type blobStream struct {
	ctx context.Context
	r   *Reader
	t   BlobType
	ids []ID
	cur []byte
}

func newBlobStream(ctx context.Context, r *Reader, t BlobType, ids []ID) *blobStream {
	return &blobStream{ctx: ctx, r: r, t: t, ids: ids}
}

func (s *blobStream) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		if len(s.ids) == 0 {
			return 0, io.EOF
		}
		b, err := s.r.LoadBlob(s.ctx, s.t, s.ids[0])
		if err != nil {
			return 0, fmt.Errorf("load %s blob %s: %w", s.t, s.ids[0], err)
		}
		s.cur, s.ids = b, s.ids[1:]
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

// OpenManifest returns a reader over the manifest of the point with the
// given tree blob IDs.
func OpenManifest(ctx context.Context, r *Reader, tree []ID) (*ManifestReader, error) {
	return NewManifestReader(newBlobStream(ctx, r, BlobTree, tree))
}

// chunkerBufs recycles chunker buffers: a backup of many files would
// otherwise allocate one 8 MiB buffer per file.
var chunkerBufs = sync.Pool{New: func() any { b := make([]byte, chunkerBufSize); return &b }}

// chunkBufs recycles the buffers chunks are copied into.
var chunkBufs = sync.Pool{New: func() any { b := make([]byte, 0, ChunkMax); return &b }}

// forEachChunk cuts r into content-defined chunks and calls fn with each;
// the slice is valid only during the call.
func forEachChunk(r io.Reader, fn func([]byte) error) error {
	buf := chunkerBufs.Get().(*[]byte)
	defer chunkerBufs.Put(buf)
	c := &Chunker{r: r, buf: *buf}
	out := chunkBufs.Get().(*[]byte)
	defer chunkBufs.Put(out)
	for {
		chunk, err := c.Next(*out)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		*out = chunk[:0]
		if err := fn(chunk); err != nil {
			return err
		}
	}
}

// TreeStats counts what VerifyTrees looked at.
type TreeStats struct {
	Points int   `json:"points"`
	Nodes  int64 `json:"nodes"`
	Chunks int64 `json:"chunks"` // chunk references resolved
}

// VerifyTrees opens the manifest of every point in points with r (which
// needs the private key) and checks it the way a restore would: the
// manifest decodes, is in order with every parent a directory, and every
// chunk a file needs is found in a pack that the point lists. Problems are
// reported per point object (report may be nil); the error is only for
// being unable to go on (ctx cancelled).
func VerifyTrees(ctx context.Context, r *Reader, points []PointHeader, report func(VerifyProblem)) (TreeStats, error) {
	var st TreeStats
	problem := func(id ID, err error) {
		if report != nil {
			report(VerifyProblem{Object: PointName(id), Err: err})
		}
	}
	for _, p := range points {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		st.Points++
		h, err := r.LoadPoint(ctx, p.ID)
		if err != nil {
			problem(p.ID, err)
			continue
		}
		listed := map[ID]bool{}
		for _, pr := range h.Packs {
			listed[pr.Pack] = true
		}
		if err := verifyTree(ctx, r, h, listed, &st); err != nil {
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			problem(p.ID, err)
		}
	}
	return st, nil
}

func verifyTree(ctx context.Context, r *Reader, h PointHeader, listed map[ID]bool, st *TreeStats) error {
	mr, err := OpenManifest(ctx, r, h.Tree)
	if err != nil {
		return err
	}
	var tc treeCheck
	files := int64(0)
	err = mr.Each(ctx, func(n *Node) error {
		st.Nodes++
		if _, err := tc.step(n); err != nil {
			return err
		}
		if n.Type == TypeFile && n.LinkTo == "" {
			files++
		}
		for _, c := range n.Chunks {
			pack, err := r.PackOf(ctx, BlobData, c)
			if err != nil {
				return fmt.Errorf("%q: %w", n.Path, err)
			}
			if !listed[pack] {
				return fmt.Errorf("%q: chunk %s is in pack %s, which the point does not list", n.Path, c, pack)
			}
			st.Chunks++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if files != h.Files {
		return fmt.Errorf("manifest holds %d files, the point's header says %d", files, h.Files)
	}
	return nil
}
