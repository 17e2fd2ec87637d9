package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/tapeless/tapeless/storage"
)

// A vault's copies are checked one by one, since a byte flipped on one copy
// is what GRS exists to survive — and what a read that quietly falls back
// to the other copy would hide. Repair copies good objects over missing or
// damaged ones: archive objects are named by the SHA-256 of their bytes, so
// "good" is decided without any key.

// VaultCopy is one copy of a vault under a name for reports.
type VaultCopy struct {
	Name string // "primary", "secondary"
	B    storage.Backend
}

// CopyProblem is one object that is missing or damaged on one copy.
type CopyProblem struct {
	Copy   string `json:"copy"`
	Object string `json:"object"`
	Error  string `json:"error"`
	// Points lists the points that need the object (every point, when a
	// point object is unreadable its own ID).
	Points []ID `json:"points"`
}

// CopyStats is what was checked on one copy.
type CopyStats struct {
	Copy     string      `json:"copy"`
	Location string      `json:"location"`
	Stats    VerifyStats `json:"stats"`
}

// VaultCheck is the health of every copy checked.
type VaultCheck struct {
	Copies   []CopyStats   `json:"copies"`
	Problems []CopyProblem `json:"problems"`
}

// ScrubCursor makes successive sampled checks cover the whole vault: each
// run reads the packs after Last in name order (names are hashes, so name
// order is a random order), wrapping around, so N runs of 100/N percent
// read every pack once per cycle.
type ScrubCursor struct {
	Last   string `json:"last"`   // the last pack name read
	Cycles int    `json:"cycles"` // completed passes over the whole copy
}

// CheckOptions says how deep CheckVault goes.
type CheckOptions struct {
	ReadData  bool
	SubsetPct float64 // with ReadData: 0 < pct < 100 reads that share of packs
	// Cursors, one per copy name, continue a rotating scrub; CheckVault
	// advances them. Without, a subset is random.
	Cursors map[string]*ScrubCursor
}

// CheckVault verifies every copy on its own (see Verify for what each
// level checks; k may be nil: no passphrase needed) and names, for each
// problem, the copy and the points it hurts.
func CheckVault(ctx context.Context, copies []VaultCopy, k *Keys, o CheckOptions) (*VaultCheck, error) {
	res := &VaultCheck{Copies: []CopyStats{}, Problems: []CopyProblem{}}
	needs, err := pointNeeds(ctx, copies)
	if err != nil {
		return nil, err
	}
	for _, c := range copies {
		var sel func([]string) []string
		if o.ReadData && o.SubsetPct > 0 && o.SubsetPct < 100 {
			if cur := o.Cursors[c.Name]; cur != nil {
				sel = cur.take(o.SubsetPct)
			}
		}
		var st VerifyStats
		report := func(p VerifyProblem) {
			res.Problems = append(res.Problems, CopyProblem{Copy: c.Name, Object: p.Object, Error: p.Err.Error(), Points: needs.of(p.Object)})
		}
		if sel == nil && o.SubsetPct > 0 && o.SubsetPct < 100 {
			st, err = Verify(ctx, c.B, k, o.ReadData, o.SubsetPct, report)
		} else {
			st, err = VerifySelect(ctx, c.B, k, o.ReadData, sel, report)
		}
		if err != nil {
			return res, fmt.Errorf("check the %s copy: %w", c.Name, err)
		}
		res.Copies = append(res.Copies, CopyStats{Copy: c.Name, Location: c.B.Location(), Stats: st})
	}
	// An object some copy holds and another lacks is a problem of the one
	// that lacks it, even where no point names it there (its listing or
	// its point object is what is missing).
	missing, err := listingGaps(ctx, copies)
	if err != nil {
		return res, err
	}
	seen := map[[2]string]bool{}
	for _, p := range res.Problems {
		seen[[2]string{p.Copy, p.Object}] = true
	}
	for _, m := range missing {
		if !seen[[2]string{m.Copy, m.Object}] {
			m.Points = needs.of(m.Object)
			res.Problems = append(res.Problems, m)
		}
	}
	sort.SliceStable(res.Problems, func(i, j int) bool {
		a, b := res.Problems[i], res.Problems[j]
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		return a.Copy < b.Copy
	})
	return res, nil
}

// take returns a selector reading the next pct percent of packs after the
// cursor, and moves the cursor. Reading the last name in order completes
// a cycle.
func (c *ScrubCursor) take(pct float64) func([]string) []string {
	return func(names []string) []string {
		n := min(int(math.Ceil(float64(len(names))*pct/100)), len(names))
		start := sort.SearchStrings(names, c.Last)
		if start < len(names) && names[start] == c.Last {
			start++
		}
		out := make([]string, 0, n)
		for i := range n {
			j := (start + i) % len(names)
			out = append(out, names[j])
			if j == len(names)-1 {
				c.Cycles++
			}
		}
		if n > 0 {
			c.Last = out[n-1]
		}
		sort.Strings(out)
		return out
	}
}

// pointIndex maps object names to the points that need them.
type pointIndex map[string][]ID

func (p pointIndex) of(object string) []ID {
	if ids, ok := p[object]; ok {
		return ids
	}
	if strings.HasPrefix(object, PointsPrefix) {
		if id, err := idFromName(object); err == nil {
			return []ID{id}
		}
	}
	return []ID{}
}

// pointNeeds reads the clear headers of the points on every copy.
func pointNeeds(ctx context.Context, copies []VaultCopy) (pointIndex, error) {
	idx := pointIndex{}
	seen := map[ID]bool{}
	for _, c := range copies {
		pts, err := ListPoints(ctx, c.B)
		if err != nil && !OnlyDamage(err) {
			return nil, fmt.Errorf("list points of the %s copy: %w", c.Name, err)
		}
		for _, h := range pts {
			if seen[h.ID] {
				continue
			}
			seen[h.ID] = true
			for _, r := range h.Packs {
				for _, n := range []string{PackName(r.Pack), IndexName(r.Index)} {
					idx[n] = append(idx[n], h.ID)
				}
			}
		}
	}
	return idx, nil
}

// archivePrefixes are the content-addressed objects of a vault, in the
// order repair writes them: a point object only after what it needs.
var archivePrefixes = []string{PacksPrefix, IndexPrefix, PointsPrefix}

// listingGaps returns the archive objects some copy lists and another
// does not.
func listingGaps(ctx context.Context, copies []VaultCopy) ([]CopyProblem, error) {
	if len(copies) < 2 {
		return nil, nil
	}
	have := make([]map[string]bool, len(copies))
	union := map[string]bool{}
	for i, c := range copies {
		have[i] = map[string]bool{}
		for _, prefix := range archivePrefixes {
			err := c.B.List(ctx, prefix, func(inf storage.Info) error {
				have[i][inf.Name], union[inf.Name] = true, true
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("list %s of the %s copy: %w", prefix, c.Name, err)
			}
		}
	}
	var out []CopyProblem
	for name := range union {
		for i, c := range copies {
			if !have[i][name] {
				out = append(out, CopyProblem{Copy: c.Name, Object: name, Error: "missing: the other copy has it"})
			}
		}
	}
	return out, nil
}

// RepairResult says what RepairVault did.
type RepairResult struct {
	Repaired []RepairedObject `json:"repaired"`
	// Lost are objects no copy holds intact: the points they hurt cannot
	// be restored in full from this vault.
	Lost []CopyProblem `json:"lost"`
	// Failed are objects that could not be written (for example a damaged
	// object under object lock, which cannot be replaced before its lock
	// ends).
	Failed []CopyProblem `json:"failed"`
}

// RepairedObject is one object copied from a good copy to a bad one.
type RepairedObject struct {
	Object string `json:"object"`
	To     string `json:"to"`
	From   string `json:"from"`
	Bytes  int64  `json:"size_bytes"`
	// Replaced is true when a damaged object was removed first.
	Replaced bool `json:"replaced"`
}

// RepairVault mends the problems a CheckVault found: for each object that
// is missing or damaged on some copy, it finds a copy whose bytes hash to
// the object's name and writes them to the others. It needs no key, never
// replaces an object whose own bytes hash to its name, and writes packs
// and index objects before point objects, so a copy never holds a point
// before all it needs. Objects no copy holds intact are returned as Lost.
func RepairVault(ctx context.Context, copies []VaultCopy, check *VaultCheck) (*RepairResult, error) {
	res := &RepairResult{Repaired: []RepairedObject{}, Lost: []CopyProblem{}, Failed: []CopyProblem{}}
	byObject := map[string][]CopyProblem{}
	var names []string
	for _, p := range check.Problems {
		if !isArchiveObject(p.Object) {
			continue
		}
		if _, ok := byObject[p.Object]; !ok {
			names = append(names, p.Object)
		}
		byObject[p.Object] = append(byObject[p.Object], p)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := objectRank(names[i]), objectRank(names[j])
		if a != b {
			return a < b
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		id, err := idFromName(name)
		if err != nil {
			continue
		}
		var good []byte
		var from string
		var bad []VaultCopy
		for _, c := range copies {
			data, err := loadWhole(ctx, c.B, name)
			switch {
			case err == nil && objectHash(data) == id:
				if good == nil {
					good, from = data, c.Name
				}
			case err != nil && !errors.Is(err, storage.ErrNotFound):
				return res, fmt.Errorf("read %s from the %s copy: %w", name, c.Name, err)
			default:
				bad = append(bad, c)
			}
		}
		if len(bad) == 0 {
			continue // healthy now (a problem seen earlier, or a listing that lagged)
		}
		if good == nil {
			res.Lost = append(res.Lost, byObject[name]...)
			continue
		}
		for _, c := range bad {
			replaced := false
			if _, err := c.B.Stat(ctx, name); err == nil {
				// Present and not matching its name: damaged, not good.
				if err := c.B.Remove(ctx, name); err != nil {
					res.Failed = append(res.Failed, CopyProblem{Copy: c.Name, Object: name, Error: "cannot remove the damaged object: " + err.Error(), Points: check.pointsOf(name)})
					continue
				}
				replaced = true
			}
			if err := c.B.Save(ctx, name, bytes.NewReader(good), int64(len(good))); err != nil {
				res.Failed = append(res.Failed, CopyProblem{Copy: c.Name, Object: name, Error: err.Error(), Points: check.pointsOf(name)})
				continue
			}
			res.Repaired = append(res.Repaired, RepairedObject{Object: name, To: c.Name, From: from, Bytes: int64(len(good)), Replaced: replaced})
		}
	}
	return res, nil
}

func (c *VaultCheck) pointsOf(name string) []ID {
	for _, p := range c.Problems {
		if p.Object == name {
			return p.Points
		}
	}
	return []ID{}
}

func isArchiveObject(name string) bool {
	return objectRank(name) < len(archivePrefixes)
}

func objectRank(name string) int {
	for i, p := range archivePrefixes {
		if strings.HasPrefix(name, p) {
			return i
		}
	}
	return len(archivePrefixes)
}

func loadWhole(ctx context.Context, b storage.Backend, name string) ([]byte, error) {
	var data []byte
	err := b.Load(ctx, name, 0, -1, func(r io.Reader) error {
		var err error
		data, err = io.ReadAll(r)
		return err
	})
	return data, err
}

// LoadScrubCursors reads the scrub positions kept for a vault in the
// store's folder (scrub-VAULT.json); none yet is an empty set.
func LoadScrubCursors(storeDir, vault string) (map[string]*ScrubCursor, error) {
	m := map[string]*ScrubCursor{}
	b, err := os.ReadFile(scrubPath(storeDir, vault))
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read scrub state: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("scrub state %s is damaged (%v): remove it to start the rotation again", scrubPath(storeDir, vault), err)
	}
	return m, nil
}

// SaveScrubCursors writes the positions back (atomically).
func SaveScrubCursors(storeDir, vault string, m map[string]*ScrubCursor) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := storage.WriteFileAtomic(scrubPath(storeDir, vault), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save scrub state: %w", err)
	}
	return nil
}

func scrubPath(storeDir, vault string) string {
	return filepath.Join(storeDir, "scrub-"+strings.ToLower(vault)+".json")
}

// LostPacks returns the packs a check found missing or damaged on every
// one of the copies it checked (copies: how many that was), by name
// order. Such a pack cannot be read from the vault or mended from it: the
// data it held must be stored again.
func (c *VaultCheck) LostPacks(copies int) []ID {
	bad := map[string]map[string]bool{}
	for _, p := range c.Problems {
		if !strings.HasPrefix(p.Object, PacksPrefix) {
			continue
		}
		if bad[p.Object] == nil {
			bad[p.Object] = map[string]bool{}
		}
		bad[p.Object][p.Copy] = true
	}
	var out []ID
	for name, on := range bad {
		if len(on) < copies {
			continue
		}
		if id, err := idFromName(name); err == nil {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
	return out
}
