package archive

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/tapeless/tapeless/storage"
)

// Object name prefixes inside an objects backend (the store's objects/
// folder or a vault). Offload copies objects under the same names.
const (
	PacksPrefix  = "packs/"
	IndexPrefix  = "index/"
	PointsPrefix = "points/"
)

// PackName is the object name of the pack with the given ID:
// packs/<first 2 hex digits>/<64 hex digits>.
func PackName(id ID) string {
	h := id.String()
	return PacksPrefix + h[:2] + "/" + h
}

// IndexName is the object name of an index object: index/<64 hex digits>.
func IndexName(id ID) string { return IndexPrefix + id.String() }

// PointName is the object name of a point object: points/<64 hex digits>.
func PointName(id ID) string { return PointsPrefix + id.String() }

// idFromName parses the ID at the end of an object name.
func idFromName(name string) (ID, error) {
	return ParseID(name[strings.LastIndexByte(name, '/')+1:])
}

// PackRef names a pack a point needs together with the index object that
// describes it, with both sizes: what offload copies and a keyless verify
// checks.
type PackRef struct {
	Pack      ID    `json:"pack"`
	Size      int64 `json:"size"`
	Index     ID    `json:"index"`
	IndexSize int64 `json:"index_size"`
}

// PointHeader describes a recovery point.
//
// Everything except Tree is stored in the clear (see docs/FORMAT.md "Point
// object"), so that the daemon can list, offload, prune and scrub points
// without the passphrase. Tree is sealed: only the private key reads it,
// and opening the sealed part also authenticates the clear part.
type PointHeader struct {
	// ID is the SHA-256 of the stored point object (its name); set by
	// SavePoint, ListPoints and LoadPoint, ignored by SavePoint.
	ID     ID
	Source string // data source name
	Time   time.Time
	Host   string
	Files  int64
	Bytes  int64 // logical bytes of the source
	// Tree lists the point's tree (manifest) blobs in order. Sealed: empty
	// in ListPoints results, filled by Reader.LoadPoint.
	Tree   []ID
	Parent *ID
	// KeyFingerprint names the key pair the point is sealed to; set by
	// SavePoint.
	KeyFingerprint string
	// Format is the point object's format version; set by SavePoint.
	Format int
	// Labels are free-form short strings stored in the clear (for
	// example the backup's --name); keep secrets out of them.
	Labels map[string]string
	// Packs lists every pack holding a blob of the point, with its index
	// object; computed by SavePoint from Refs, stored in the clear.
	Packs []PackRef
	// Refs must hold every blob the point references (all tree blobs and
	// all data chunks, whether new or deduplicated) when calling SavePoint,
	// which refuses the point if one is not stored. Not stored itself.
	Refs *Refs
}

// pointClear is the JSON shape of a point's clear header.
type pointClear struct {
	Source         string            `json:"source"`
	Time           string            `json:"time"` // RFC 3339, UTC, nanoseconds
	Host           string            `json:"host"`
	Files          int64             `json:"files"`
	Bytes          int64             `json:"bytes"`
	Parent         *ID               `json:"parent,omitempty"`
	KeyFingerprint string            `json:"key_fingerprint"`
	Labels         map[string]string `json:"labels,omitempty"`
	Packs          []PackRef         `json:"packs"`
}

// pointSealed is the JSON shape of a point's sealed body.
type pointSealed struct {
	Tree []ID `json:"tree"`
}

// Point object layout: prefix | u32 length L | clear JSON (L bytes) |
// key block | sealed body (nonce, ciphertext, tag) with everything before
// it as associated data.
const pointOffClear = prefixLen + 4

func sealPoint(pub [32]byte, h PointHeader) ([]byte, error) {
	c := pointClear{
		Source: h.Source, Time: h.Time.UTC().Format(time.RFC3339Nano), Host: h.Host,
		Files: h.Files, Bytes: h.Bytes, Parent: h.Parent, KeyFingerprint: h.KeyFingerprint,
		Labels: h.Labels, Packs: h.Packs,
	}
	if c.Packs == nil {
		c.Packs = []PackRef{}
	}
	clear, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode point header: %w", err)
	}
	body, err := json.Marshal(pointSealed{Tree: h.Tree})
	if err != nil {
		return nil, fmt.Errorf("encode point body: %w", err)
	}
	dk, err := newDataKey()
	if err != nil {
		return nil, err
	}
	prefix := objectPrefix(kindPoint, CurrentFormat)
	block, err := wrapDataKey(pub, dk, prefix)
	if err != nil {
		return nil, fmt.Errorf("seal point: %w", err)
	}
	b := make([]byte, 0, pointOffClear+len(clear)+keyBlockLen+sealOverhead+len(body))
	b = append(b, prefix...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(clear)))
	b = append(b, clear...)
	b = append(b, block...)
	return sealAEADTo(b, dk[:], b, body)
}

// parsePoint reads the clear header of a point object; no key needed. It
// returns the header and the offset of the key block.
func parsePoint(b []byte) (PointHeader, int, error) {
	var h PointHeader
	v, err := checkPrefix(b, kindPoint)
	if err != nil {
		return h, 0, err
	}
	if len(b) < pointOffClear {
		return h, 0, fmt.Errorf("point object is truncated: %d bytes", len(b))
	}
	n := int(binary.BigEndian.Uint32(b[prefixLen:]))
	end := pointOffClear + n
	if n > len(b) || end+keyBlockLen+sealOverhead > len(b) {
		return h, 0, fmt.Errorf("point object is truncated: %d bytes, header says %d", len(b), n)
	}
	var c pointClear
	dec := json.NewDecoder(bytes.NewReader(b[pointOffClear:end]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return h, 0, fmt.Errorf("point header: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, c.Time)
	if err != nil {
		return h, 0, fmt.Errorf("point header: time: %w", err)
	}
	h = PointHeader{
		Source: c.Source, Time: t, Host: c.Host, Files: c.Files, Bytes: c.Bytes,
		Parent: c.Parent, KeyFingerprint: c.KeyFingerprint, Format: v, Labels: c.Labels,
		Packs: c.Packs,
	}
	return h, end, nil
}

// openPoint parses a point object and opens its sealed body with k.
func openPoint(k *Keys, b []byte) (PointHeader, error) {
	h, off, err := parsePoint(b)
	if err != nil {
		return h, err
	}
	dk, err := unwrapDataKey(k, b[off:off+keyBlockLen], b[:prefixLen])
	if err != nil {
		return h, err
	}
	plain, err := openAEAD(dk[:], b[:off+keyBlockLen], b[off+keyBlockLen:])
	if err != nil {
		return h, err
	}
	var s pointSealed
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields() // additions are a new format version
	if err := dec.Decode(&s); err != nil {
		return h, fmt.Errorf("point body: %w", err)
	}
	h.Tree = s.Tree
	return h, nil
}

// loadObject reads a whole object and checks it against its name (the
// SHA-256 of its bytes), so every caller reads only bytes that match.
func loadObject(ctx context.Context, b storage.Backend, name string, id ID) ([]byte, error) {
	var data []byte
	err := b.Load(ctx, name, 0, -1, func(r io.Reader) error {
		var err error
		data, err = io.ReadAll(r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	if got := objectHash(data); got != id {
		return nil, fmt.Errorf("%s: %w: %d bytes hash to %s", name, ErrAuthentication, len(data), got)
	}
	return data, nil
}

// DamagedPoint is a point object that is listed but cannot be read: its
// bytes do not match its name (truncated, altered) or its header does not
// parse. Nothing it needs is known, so nothing may be deleted for it.
type DamagedPoint struct {
	Name     string `json:"name"`     // object name, points/<64 hex digits>
	Location string `json:"location"` // the store's or vault copy's location
	Err      error  `json:"-"`
}

// Error returns the object name, what is wrong with it and where it is.
func (d DamagedPoint) Error() string { return fmt.Sprintf("%v (at %s)", d.Err, d.Location) }

// MarshalJSON adds the error text, as "error".
func (d DamagedPoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name     string `json:"name"`
		Location string `json:"location"`
		Error    string `json:"error"`
	}{d.Name, d.Location, d.Err.Error()})
}

// DamagedPointsError is what ListPoints returns, with every point it could
// read, when some listed point objects cannot be read. Find it with
// errors.As; any other error from ListPoints means the listing itself
// failed.
type DamagedPointsError struct {
	Points []DamagedPoint
}

func (e *DamagedPointsError) Error() string {
	msgs := make([]string, len(e.Points))
	for i, d := range e.Points {
		msgs[i] = d.Error()
	}
	return fmt.Sprintf("skipped %s: %s", plural(len(e.Points), "damaged point object"), strings.Join(msgs, "; "))
}

// Unwrap returns each point's error (ErrAuthentication for bytes that do
// not match their name).
func (e *DamagedPointsError) Unwrap() []error {
	out := make([]error, len(e.Points))
	for i, d := range e.Points {
		out[i] = d.Err
	}
	return out
}

// DamagedPoints returns the damaged points err reports, if it is or wraps
// a *DamagedPointsError; nil otherwise.
func DamagedPoints(err error) []DamagedPoint {
	var de *DamagedPointsError
	if errors.As(err, &de) {
		return de.Points
	}
	return nil
}

// OnlyDamage reports whether err, from ListPoints, says only that some
// points are damaged: every other point was listed and read.
func OnlyDamage(err error) bool {
	de, ok := err.(*DamagedPointsError)
	return ok && de != nil
}

// ListPoints reads the clear headers of all point objects in b, sorted by
// time (then ID). It needs no key: each object is checked only against its
// name. Damaged point objects (see DamagedPoint) are left out and named in
// a returned *DamagedPointsError, so a caller can skip them and go on with
// the rest (OnlyDamage tells). Points that could not be read for another
// reason (an outage) are left out too and their errors joined to it; when
// the listing itself fails, no points are returned.
func ListPoints(ctx context.Context, b storage.Backend) ([]PointHeader, error) {
	var names []string
	err := b.List(ctx, PointsPrefix, func(i storage.Info) error {
		names = append(names, i.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list points in %s: %w", b.Location(), err)
	}
	var out []PointHeader
	var damaged []DamagedPoint
	var errs []error
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := readPointHeader(ctx, b, name)
		switch {
		case err == nil:
			out = append(out, h)
		case isDamage(err):
			damaged = append(damaged, DamagedPoint{Name: name, Location: b.Location(), Err: err})
		default:
			errs = append(errs, err)
		}
	}
	sortPoints(out)
	if len(damaged) > 0 {
		errs = append(errs, &DamagedPointsError{Points: damaged})
	}
	return out, joinErrs(errs)
}

// ShortListingError reports a points listing that lacks points the caller
// knows are there (the local catalogue's archived points). It matches
// ErrShortListing with errors.Is.
type ShortListingError struct {
	Location string
	Known    int  // points the caller knows of
	Unlisted []ID // known points the listing lacks (each was looked up by name)
	Missing  []ID // of Unlisted, those not found by name either
}

func (e *ShortListingError) Error() string {
	msg := fmt.Sprintf("the points listing of %s is shorter than the local catalogue: %d of the %d archived points it records are missing from it (%s)",
		e.Location, len(e.Unlisted), e.Known, strings.Join(firstN(shortIDs(e.Unlisted), 5), ", "))
	if len(e.Missing) == 0 {
		return msg + "; they were read directly by name, but the storage's listing is unreliable: check it before pruning"
	}
	return msg + fmt.Sprintf("; %d of them are not in it by name either (%s): check the vault's storage",
		len(e.Missing), strings.Join(firstN(shortIDs(e.Missing), 5), ", "))
}

// Is makes errors.Is(err, ErrShortListing) hold.
func (e *ShortListingError) Is(target error) bool { return target == ErrShortListing }

// plural is "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func shortIDs(ids []ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()[:12]
	}
	return out
}

// ListPointsKnown is ListPoints for a listing that should hold every point
// in known (IDs the caller has recorded as stored in b): a known point the
// listing lacks is read directly by its name, and the shortfall is
// reported in a *ShortListingError joined to the returned error. An empty
// or short listing is thus never taken for points that are gone.
func ListPointsKnown(ctx context.Context, b storage.Backend, known []ID) ([]PointHeader, error) {
	pts, err := ListPoints(ctx, b)
	if err != nil && !OnlyDamage(err) {
		return pts, err
	}
	damaged := DamagedPoints(err)
	listed := map[ID]bool{}
	for _, h := range pts {
		listed[h.ID] = true
	}
	for _, d := range damaged {
		if id, err := idFromName(d.Name); err == nil {
			listed[id] = true
		}
	}
	short := &ShortListingError{Location: b.Location(), Known: len(known)}
	var errs []error
	for _, id := range known {
		if listed[id] {
			continue
		}
		listed[id] = true
		short.Unlisted = append(short.Unlisted, id)
		h, err := LoadPointHeader(ctx, b, id)
		switch {
		case err == nil:
			pts = append(pts, h)
		case errors.Is(err, storage.ErrNotFound):
			short.Missing = append(short.Missing, id)
		case isDamage(err):
			damaged = append(damaged, DamagedPoint{Name: PointName(id), Location: b.Location(), Err: err})
		default:
			errs = append(errs, err)
		}
	}
	sortPoints(pts)
	if len(short.Unlisted) > 0 {
		errs = append(errs, short)
	}
	if len(damaged) > 0 {
		errs = append(errs, &DamagedPointsError{Points: damaged})
	}
	return pts, joinErrs(errs)
}

// joinErrs is errors.Join that leaves a lone error as it is, so that
// OnlyDamage can tell it.
func joinErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// errBadPoint marks a point object whose name or header is malformed.
var errBadPoint = errors.New("malformed point object")

// isDamage tells a damaged object (bytes that do not match the name, or do
// not parse) from a failure to read it.
func isDamage(err error) bool {
	return errors.Is(err, ErrAuthentication) || errors.Is(err, errBadPoint) || errors.Is(err, storage.ErrCorrupt)
}

// LoadPointHeader reads the clear header of point id in b by its name,
// without a listing and without a key; the object is checked against its
// name. A point b lacks is an error wrapping storage.ErrNotFound.
func LoadPointHeader(ctx context.Context, b storage.Backend, id ID) (PointHeader, error) {
	return readPointHeader(ctx, b, PointName(id))
}

func readPointHeader(ctx context.Context, b storage.Backend, name string) (PointHeader, error) {
	id, err := idFromName(name)
	if err != nil {
		return PointHeader{}, fmt.Errorf("%s: %w: bad name: %w", name, errBadPoint, err)
	}
	data, err := loadObject(ctx, b, name, id)
	if err != nil {
		return PointHeader{}, err
	}
	h, _, err := parsePoint(data)
	if err != nil {
		return PointHeader{}, fmt.Errorf("%s: %w: %w", name, errBadPoint, err)
	}
	h.ID = id
	return h, nil
}

// PointBefore reports whether a comes before b in the order of every point
// listing: older first, points of the same time by ID.
func PointBefore(a, b PointHeader) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.Before(b.Time)
	}
	return bytes.Compare(a.ID[:], b.ID[:]) < 0
}

// sortPoints puts ps in PointBefore's order.
func sortPoints(ps []PointHeader) {
	sort.Slice(ps, func(i, j int) bool { return PointBefore(ps[i], ps[j]) })
}
