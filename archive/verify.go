package archive

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/tapeless/tapeless/storage"
)

// VerifyProblem is one thing wrong with one stored object.
type VerifyProblem struct {
	Object string // object name, e.g. "packs/ab/ab12…"
	Err    error
}

// Error makes a problem usable as an error; it names the object first.
func (p VerifyProblem) Error() string { return p.Object + ": " + p.Err.Error() }

// Unwrap returns the underlying error.
func (p VerifyProblem) Unwrap() error { return p.Err }

// VerifyStats counts what Verify looked at and found.
type VerifyStats struct {
	Points       int   `json:"points"`           // point objects examined
	Indexes      int   `json:"indexes"`          // index objects examined
	Packs        int   `json:"packs"`            // pack objects listed
	VaultHeld    int   `json:"vault_held_packs"` // a store's packs retired to the vault (markers), checked by verify --vault
	PacksRead    int   `json:"packs_read"`       // packs whose bytes were read and re-hashed
	Blobs        int   `json:"blobs"`            // blobs decrypted, decompressed and re-hashed (with a key)
	BytesRead    int64 `json:"read_bytes"`       // bytes downloaded
	Unreferenced int   `json:"unreferenced"`     // packs that no point references (garbage, not a problem)
	Foreign      int   `json:"foreign"`          // objects sealed to another key set, checked without decrypting
	Problems     int   `json:"problems"`         // problems reported
}

// Verify checks the objects in b (a store's objects or a vault) and calls
// report for every problem found (report may be nil); it returns an error
// only when it cannot proceed (listing fails, ctx is cancelled). What it
// checks grows with what it is given:
//
//   - always, no key: every point object matches its name (SHA-256) and
//     parses; every pack and index object a point lists exists with the
//     size the point recorded; every index object matches its name and its
//     pack exists with the size it records.
//   - k != nil: point and index objects are also authenticated and
//     decrypted. Objects sealed to another key set (another server
//     registered to the same vault) get the keyless checks only and are
//     counted in Foreign, not reported.
//   - readData: each pack (or a random subsetPct percent of them, at least
//     one, when 0 < subsetPct < 100) is downloaded and re-hashed against its
//     name; with k, every blob in it is also decrypted, decompressed and its
//     chunk ID recomputed, and its trailer compared with its index object.
func Verify(ctx context.Context, b storage.Backend, k *Keys, readData bool, subsetPct float64, report func(VerifyProblem)) (VerifyStats, error) {
	var sel func([]string) []string
	if subsetPct > 0 && subsetPct < 100 {
		sel = func(names []string) []string {
			n := int(math.Ceil(float64(len(names)) * subsetPct / 100))
			rand.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
			names = names[:n]
			sort.Strings(names)
			return names
		}
	}
	return VerifySelect(ctx, b, k, readData, sel, report)
}

// VerifySelect is Verify with the packs to read chosen by sel (given every
// pack name, sorted; nil reads them all), as a scrub that rotates through
// a vault needs.
func VerifySelect(ctx context.Context, b storage.Backend, k *Keys, readData bool, sel func([]string) []string, report func(VerifyProblem)) (VerifyStats, error) {
	v := &verifier{b: b, k: k, report: report}
	packs, err := v.list(ctx, PacksPrefix)
	if err != nil {
		return v.st, err
	}
	indexes, err := v.list(ctx, IndexPrefix)
	if err != nil {
		return v.st, err
	}
	points, err := v.list(ctx, PointsPrefix)
	if err != nil {
		return v.st, err
	}
	v.st.Packs = len(packs)
	// A store's packs retired to the vault (vaulted.go) are checked there
	// (verify --vault); here their markers stand for them.
	vaulted, err := VaultedPacks(ctx, b)
	if err != nil {
		return v.st, err
	}
	v.st.VaultHeld = len(vaulted)

	needed := map[string]bool{}
	for _, name := range sortedKeys(points) {
		if err := ctx.Err(); err != nil {
			return v.st, err
		}
		v.st.Points++
		h, ok := v.point(ctx, name)
		if !ok {
			continue
		}
		for _, r := range h.Packs {
			pn, in := PackName(r.Pack), IndexName(r.Index)
			needed[pn] = true
			if held, ok := vaulted[r.Pack]; ok && held == r {
				continue
			}
			if size, ok := packs[pn]; !ok {
				v.problem(pn, fmt.Errorf("missing: point %s needs it and cannot be restored in full", h.ID))
			} else if size != r.Size {
				v.problem(pn, fmt.Errorf("size %d, point %s recorded %d", size, h.ID, r.Size))
			}
			if size, ok := indexes[in]; !ok {
				v.problem(in, fmt.Errorf("missing: point %s needs it for pack %s", h.ID, r.Pack))
			} else if size != r.IndexSize {
				v.problem(in, fmt.Errorf("size %d, point %s recorded %d", size, h.ID, r.IndexSize))
			}
		}
	}

	// entrySums remembers, per pack, the SHA-256 of its index entries, so
	// a pack read later can be compared without keeping the entries.
	entrySums := map[ID][32]byte{}
	for _, name := range sortedKeys(indexes) {
		if err := ctx.Err(); err != nil {
			return v.st, err
		}
		v.st.Indexes++
		id, err := idFromName(name)
		if err != nil {
			v.problem(name, fmt.Errorf("bad name: %w", err))
			continue
		}
		data, err := v.load(ctx, name, id)
		if err != nil {
			v.problem(name, err)
			continue
		}
		h, err := parseIndexHeader(data)
		if err != nil {
			v.problem(name, err)
			continue
		}
		pn := PackName(h.Pack)
		if size, ok := packs[pn]; !ok {
			v.problem(name, fmt.Errorf("its pack %s is missing", pn))
		} else if size != h.PackSize {
			v.problem(pn, fmt.Errorf("size %d, index object %s recorded %d", size, name, h.PackSize))
		}
		if k != nil && sealedToOther(k, data[indexOffBlock:indexOffSealed]) {
			v.st.Foreign++
		} else if k != nil {
			_, es, err := openIndex(k, data)
			if err != nil {
				v.problem(name, err)
				continue
			}
			entrySums[h.Pack] = sha256.Sum256(encodeEntries(es))
		}
	}

	for name := range packs {
		if !needed[name] {
			v.st.Unreferenced++
		}
	}
	if !readData {
		return v.st, nil
	}
	names := sortedKeys(packs)
	if sel != nil && len(names) > 0 {
		names = sel(names)
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return v.st, err
		}
		v.pack(ctx, name, entrySums)
	}
	return v.st, nil
}

type verifier struct {
	b      storage.Backend
	k      *Keys
	report func(VerifyProblem)
	st     VerifyStats
}

func (v *verifier) problem(name string, err error) {
	v.st.Problems++
	if v.report != nil {
		v.report(VerifyProblem{Object: name, Err: err})
	}
}

func (v *verifier) list(ctx context.Context, prefix string) (map[string]int64, error) {
	m := map[string]int64{}
	err := v.b.List(ctx, prefix, func(i storage.Info) error {
		m[i.Name] = i.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify %s: list %s: %w", v.b.Location(), prefix, err)
	}
	return m, nil
}

func (v *verifier) load(ctx context.Context, name string, id ID) ([]byte, error) {
	var data []byte
	err := v.b.Load(ctx, name, 0, -1, func(r io.Reader) error {
		var err error
		data, err = io.ReadAll(r)
		return err
	})
	v.st.BytesRead += int64(len(data))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if got := objectHash(data); got != id {
		return nil, fmt.Errorf("%w: %d bytes hash to %s, not to the name", ErrAuthentication, len(data), got)
	}
	return data, nil
}

func (v *verifier) point(ctx context.Context, name string) (PointHeader, bool) {
	id, err := idFromName(name)
	if err != nil {
		v.problem(name, fmt.Errorf("bad name: %w", err))
		return PointHeader{}, false
	}
	data, err := v.load(ctx, name, id)
	if err != nil {
		v.problem(name, err)
		return PointHeader{}, false
	}
	h, off, err := parsePoint(data)
	if err == nil && v.k != nil {
		if sealedToOther(v.k, data[off:off+keyBlockLen]) {
			v.st.Foreign++
		} else {
			h, err = openPoint(v.k, data)
		}
	}
	if err != nil {
		v.problem(name, err)
		return PointHeader{}, false
	}
	h.ID = id
	return h, true
}

func (v *verifier) pack(ctx context.Context, name string, entrySums map[ID][32]byte) {
	id, err := idFromName(name)
	if err != nil {
		v.problem(name, fmt.Errorf("bad name: %w", err))
		return
	}
	v.st.PacksRead++
	data, err := v.load(ctx, name, id)
	if err != nil {
		v.problem(name, err)
		return
	}
	if v.k == nil {
		return
	}
	if len(data) >= packHeaderLen && sealedToOther(v.k, data[prefixLen:packHeaderLen]) {
		v.st.Foreign++
		return
	}
	version, dk, err := packDataKey(v.k, data)
	if err != nil {
		v.problem(name, err)
		return
	}
	es, err := openTrailer(data, &dk)
	if err != nil {
		v.problem(name, err)
		return
	}
	if sum, ok := entrySums[id]; ok && sum != sha256.Sum256(encodeEntries(es)) {
		v.problem(name, fmt.Errorf("trailer and index object disagree about its blobs"))
	}
	for _, e := range es {
		if err := ctx.Err(); err != nil {
			return
		}
		if _, err := openBlob(&dk, &v.k.ChunkKey, version, e, data[e.Offset:e.Offset+e.Length]); err != nil {
			v.problem(name, err)
			continue
		}
		v.st.Blobs++
	}
}

func sortedKeys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
