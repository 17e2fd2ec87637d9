package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/tapeless/tapeless/archive"
	"github.com/tapeless/tapeless/scheduler"
	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/humanize"
)

// pointTree gives ls, find and diff the manifests of points in either
// tier. Vault points are read in place with ranged reads of their tree
// blobs — no staging, no pack downloads — and the bytes fetched are counted
// so the command can say what it cost.
type pointTree struct {
	g     *globalOptions
	cfg   *config
	view  *archive.StoreView
	keys  *archive.Keys
	local []archive.PointHeader

	vault    *scheduler.Vault // opened on first need
	vaultPts []archive.PointHeader
	counted  *archive.CountingBackend
	listErr  error // points that could not be listed (damaged), reported at the end
	readers  []*archive.Reader
	lock     *archive.ReadLock // keeps an offload from removing local objects meanwhile
}

// openPointTree opens the store view and unlocks its keys: reading a
// manifest needs the passphrase.
func openPointTree(ctx context.Context, g *globalOptions, passFile string) (*pointTree, error) {
	v, cfg, err := openStoreView(ctx, g)
	if err != nil {
		return nil, err
	}
	t := &pointTree{g: g, cfg: cfg, view: v}
	if t.lock, err = lockStoreForRead(ctx, g, v.Dir); err != nil {
		v.Close()
		return nil, err
	}
	t.local, t.listErr = archive.ListPoints(ctx, v.Objects)
	if t.listErr != nil && !archive.OnlyDamage(t.listErr) {
		t.lock.Release()
		v.Close()
		return nil, t.listErr
	}
	if t.keys, err = unlockStore(g, v.Envelope, passFile); err != nil {
		t.lock.Release()
		v.Close()
		return nil, err
	}
	return t, nil
}

func (t *pointTree) Close() error {
	var err error
	for _, r := range t.readers {
		if rerr := r.Close(); err == nil {
			err = rerr
		}
	}
	t.lock.Release()
	if verr := t.view.Close(); err == nil {
		err = verr
	}
	if t.vault != nil {
		if verr := t.vault.Close(); err == nil {
			err = verr
		}
	}
	return err
}

// openVault lists the vault's points once; without a vault, none.
func (t *pointTree) openVault(ctx context.Context) error {
	if t.vault != nil || t.cfg.Vault == nil || t.cfg.Vault.Name == "" {
		return nil
	}
	ov, err := openVaultForRead(ctx, t.g, t.cfg)
	if err != nil {
		return err
	}
	t.vault = ov
	t.counted = archive.NewCountingBackend(ov.Read)
	pts, err := archive.ListPointsKnown(ctx, ov.Read, catalogArchived(ctx, t.cfg.Store, t.cfg.Vault.Name))
	if err != nil && !archive.OnlyDamage(err) && !errors.Is(err, archive.ErrShortListing) {
		return err
	}
	t.vaultPts = pts
	return nil
}

// all returns every point of both tiers once, oldest first, with its tier.
func (t *pointTree) all(ctx context.Context) ([]archive.PointHeader, map[archive.ID]string, error) {
	if err := t.openVault(ctx); err != nil {
		return nil, nil, err
	}
	tier := map[archive.ID]string{}
	var out []archive.PointHeader
	for _, p := range t.local {
		tier[p.ID] = "local"
		out = append(out, p)
	}
	for _, p := range t.vaultPts {
		if _, ok := tier[p.ID]; ok {
			tier[p.ID] = "both"
			continue
		}
		tier[p.ID] = "vault"
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool { return archive.PointBefore(out[i], out[j]) })
	return out, tier, nil
}

// resolve finds the point arg names. "latest" looks at both tiers; an ID
// is looked up locally first, then in the vault.
func (t *pointTree) resolve(ctx context.Context, arg string) (archive.PointHeader, error) {
	if _, ok := latestSource(strings.TrimSpace(arg)); ok {
		pts, _, err := t.all(ctx)
		if err != nil {
			return archive.PointHeader{}, err
		}
		return resolvePoint(pts, arg)
	}
	p, err := resolvePoint(t.local, arg)
	if !errors.Is(err, errNoPoint) {
		return p, err
	}
	if verr := t.openVault(ctx); verr != nil {
		return p, errors.Join(err, verr)
	}
	if t.vault == nil {
		return p, err
	}
	return resolvePoint(t.vaultPts, arg)
}

// manifest opens p's manifest from the store when it is there, else from
// the vault.
func (t *pointTree) manifest(ctx context.Context, p archive.PointHeader) (*archive.ManifestReader, error) {
	var b storage.Backend = t.view.Objects
	if !t.isLocal(p.ID) {
		if err := t.openVault(ctx); err != nil {
			return nil, err
		}
		if t.vault == nil {
			return nil, fmt.Errorf("point %s is not in the store and no vault is configured", shortID(p.ID))
		}
		b = t.counted
	}
	r := archive.NewReader(b, t.keys)
	h, err := r.LoadPoint(ctx, p.ID)
	if err != nil {
		r.Close()
		return nil, err
	}
	mr, err := archive.OpenManifest(ctx, r, h.Tree)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("point %s: %w", shortID(p.ID), err)
	}
	t.readers = append(t.readers, r) // closed with t: mr reads through it
	return mr, nil
}

func (t *pointTree) isLocal(id archive.ID) bool {
	for _, p := range t.local {
		if p.ID == id {
			return true
		}
	}
	return false
}

// fetched says what reading vault points cost, for the end of a command.
func (t *pointTree) fetched() int64 {
	if t.counted == nil {
		return 0
	}
	return t.counted.Fetched()
}

func (t *pointTree) noteFetched() {
	if n := t.fetched(); n > 0 && !t.g.quiet && !t.g.json {
		fmt.Fprintf(t.g.stderr, "Read %s of tree data from vault %s (no pack data).\n", humanize.Bytes(n), t.cfg.Vault.Name)
	}
}

// entryJSON is one manifest entry in ls and find output.
type entryJSON struct {
	Path   string    `json:"path"`
	Type   string    `json:"type"`
	Mode   string    `json:"mode"` // octal permission bits, e.g. "0644"
	UID    uint32    `json:"uid"`
	GID    uint32    `json:"gid"`
	User   string    `json:"user,omitempty"`
	Group  string    `json:"group,omitempty"`
	Size   int64     `json:"size_bytes"` // the file's logical size
	Mtime  time.Time `json:"mtime"`
	Target string    `json:"target,omitempty"`
	Link   string    `json:"hard_link_to,omitempty"`
}

func nodeEntry(n *archive.Node) entryJSON {
	return entryJSON{
		Path: n.Path, Type: n.Type.String(), Mode: fmt.Sprintf("%04o", n.Perm), UID: n.UID, GID: n.GID,
		User: n.User, Group: n.Group, Size: n.Size, Mtime: time.Unix(0, n.Mtime).UTC(), Target: n.Target, Link: n.LinkTo,
	}
}

// modeString is the ls -l form of a node's type and permission bits.
func modeString(n *archive.Node) string {
	m := fs.FileMode(n.Perm & 0o777)
	if n.Perm&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if n.Perm&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if n.Perm&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch n.Type {
	case archive.TypeDir:
		m |= fs.ModeDir
	case archive.TypeSymlink:
		m |= fs.ModeSymlink
	}
	return m.String()
}

func ownerName(name string, id uint32) string {
	if name != "" {
		return name
	}
	return fmt.Sprint(id)
}

// under reports whether p is sub or inside it ("" is everything).
func under(p, sub string) bool {
	return sub == "" || p == sub || strings.HasPrefix(p, sub+"/")
}

// cleanPointPath turns a user's PATH argument into a point path.
func cleanPointPath(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" || p == "." {
		return "", nil
	}
	if err := archive.CheckPath(p); err != nil {
		return "", usageError{err}
	}
	return p, nil
}
