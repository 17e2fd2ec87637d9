package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// lockedVault opens a fresh prefix of the object-lock bucket on which the
// way a vault made with --immutable-days 1 opens it, and returns the raw
// client and key prefix for looking behind the backend.
func lockedVault(t *testing.T, which string) (storage.Backend, *miniogo.Client, string, string) {
	t.Helper()
	u, o := storagetest.MinIOLock(t, which)
	o.ObjectLockDays = 1
	b, err := storage.Open(context.Background(), u, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	host, _ := storagetest.Env(t, which)
	pu, err := storage.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return b, storagetest.Client(t, host, o), pu.Bucket, pu.Prefix + "/"
}

type version struct {
	id           string
	deleteMarker bool
	latest       bool
}

func versionsOf(t *testing.T, c *miniogo.Client, bucket, key string) []version {
	t.Helper()
	var out []version
	for oi := range c.ListObjects(context.Background(), bucket, miniogo.ListObjectsOptions{Prefix: key, WithVersions: true, Recursive: true}) {
		if oi.Err != nil {
			t.Fatalf("list versions of %s: %v", key, oi.Err)
		}
		if oi.Key == key {
			out = append(out, version{id: oi.VersionID, deleteMarker: oi.IsDeleteMarker, latest: oi.IsLatest})
		}
	}
	return out
}

func getVersion(t *testing.T, c *miniogo.Client, bucket, key, vid string) []byte {
	t.Helper()
	o, err := c.GetObject(context.Background(), bucket, key, miniogo.GetObjectOptions{VersionID: vid})
	if err != nil {
		t.Fatalf("get %s version %s: %v", key, vid, err)
	}
	defer o.Close()
	data, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("get %s version %s: %v", key, vid, err)
	}
	return data
}

// TestImmutableObjectsResistDeleteAndOverwrite proves, on MinIO with
// object lock, that an archived object cannot be deleted or overwritten
// before its retention date: not through tapeless, and not through the S3
// API with the vault's own keys (root keys here). It also pins down what
// S3 does allow, so nobody relies on more than that: a plain delete hides
// the object behind a delete marker and a plain PUT stacks a new version
// on top; the locked version survives both, byte for byte.
func TestImmutableObjectsResistDeleteAndOverwrite(t *testing.T) {
	ctx := context.Background()
	b, c, bucket, prefix := lockedVault(t, "primary")
	data := storagetest.Bytes(61, 4096)
	name := contentName(data)
	key := prefix + name
	if err := b.Save(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Save on the object-lock bucket = %v", err)
	}
	vs := versionsOf(t, c, bucket, key)
	if len(vs) != 1 || vs[0].deleteMarker {
		t.Fatalf("versions after Save = %+v, want one", vs)
	}
	v1 := vs[0].id

	mode, until, err := c.GetObjectRetention(ctx, bucket, key, v1)
	if err != nil {
		t.Fatal(err)
	}
	if mode == nil || *mode != miniogo.Compliance || until == nil || until.Before(time.Now().Add(23*time.Hour)) {
		t.Fatalf("retention = %v until %v, want COMPLIANCE for a day", mode, until)
	}

	// tapeless Remove deletes the version itself (not a delete marker), so
	// S3 refuses it, and nothing changes.
	err = b.Remove(ctx, name)
	if !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("Remove of a locked object = %v, want ErrLocked", err)
	}
	t.Logf("Remove on a locked object: %v", err)
	if vs := versionsOf(t, c, bucket, key); len(vs) != 1 || vs[0].id != v1 || vs[0].deleteMarker {
		t.Errorf("versions after a refused Remove = %+v, want only %s (no delete marker)", vs, v1)
	}
	mustHold(t, b, name, data)

	// tapeless Save never overwrites: the conditional PUT is refused.
	other := storagetest.Bytes(62, 4096)
	if err := b.Save(ctx, name, bytes.NewReader(other), int64(len(other))); !errors.Is(err, storage.ErrExists) {
		t.Errorf("Save over a locked object = %v, want ErrExists", err)
	}
	mustHold(t, b, name, data)

	// Straight to S3: deleting the version is refused, also with the
	// governance bypass, and so is shortening the retention.
	if err := c.RemoveObject(ctx, bucket, key, miniogo.RemoveObjectOptions{VersionID: v1}); err == nil {
		t.Error("S3 deleted a version under COMPLIANCE retention")
	}
	if err := c.RemoveObject(ctx, bucket, key, miniogo.RemoveObjectOptions{VersionID: v1, GovernanceBypass: true}); err == nil {
		t.Error("S3 deleted a COMPLIANCE version with the governance bypass")
	}
	short := time.Now().Add(time.Hour)
	cm := miniogo.Compliance
	if err := c.PutObjectRetention(ctx, bucket, key, miniogo.PutObjectRetentionOptions{Mode: &cm, RetainUntilDate: &short, VersionID: v1}); err == nil {
		t.Error("S3 shortened a COMPLIANCE retention")
	}
	gm := miniogo.Governance
	if err := c.PutObjectRetention(ctx, bucket, key, miniogo.PutObjectRetentionOptions{Mode: &gm, RetainUntilDate: &short, VersionID: v1, GovernanceBypass: true}); err == nil {
		t.Error("S3 downgraded COMPLIANCE retention to GOVERNANCE")
	}

	// A plain PUT is allowed by S3 but only stacks a new version: the
	// locked one keeps its bytes and its retention.
	if _, err := c.PutObject(ctx, bucket, key, bytes.NewReader(other), int64(len(other)), miniogo.PutObjectOptions{}); err != nil {
		t.Fatalf("plain PUT over a locked key: %v", err)
	}
	if got := getVersion(t, c, bucket, key, v1); !bytes.Equal(got, data) {
		t.Error("the locked version changed after a plain PUT")
	}
	if _, until2, err := c.GetObjectRetention(ctx, bucket, key, v1); err != nil || until2 == nil || !until2.Equal(*until) {
		t.Errorf("retention of the locked version after a plain PUT = %v, %v; want %v", until2, err, until)
	}
	// The name now serves the new bytes, which do not match it; a
	// content-hash check sees it (the replicated backend then falls back,
	// see TestImmutableReplicated). Removing the unlocked newer version
	// brings the locked one back.
	got, err := load(ctx, b, name)
	if err != nil {
		t.Fatal(err)
	}
	if sum, _ := hashFromName(name); bytes.Equal(got, data) || sha256Of(got) == sum {
		t.Error("a plain PUT did not stack a new version; the test assumptions are wrong")
	}
	for _, v := range versionsOf(t, c, bucket, key) {
		if v.id != v1 {
			if err := c.RemoveObject(ctx, bucket, key, miniogo.RemoveObjectOptions{VersionID: v.id}); err != nil {
				t.Fatalf("remove the unlocked version: %v", err)
			}
		}
	}
	mustHold(t, b, name, data)

	// A plain DELETE is allowed too, and only adds a delete marker: the
	// object looks gone, but the locked version is still there and
	// removing the marker restores it.
	if err := c.RemoveObject(ctx, bucket, key, miniogo.RemoveObjectOptions{}); err != nil {
		t.Fatalf("plain DELETE: %v", err)
	}
	if _, err := b.Stat(ctx, name); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat behind a delete marker = %v, want ErrNotFound", err)
	}
	if got := getVersion(t, c, bucket, key, v1); !bytes.Equal(got, data) {
		t.Error("the locked version changed behind a delete marker")
	}
	var marker string
	for _, v := range versionsOf(t, c, bucket, key) {
		if v.deleteMarker {
			marker = v.id
		}
	}
	if marker == "" {
		t.Fatal("no delete marker after a plain DELETE")
	}
	if err := c.RemoveObject(ctx, bucket, key, miniogo.RemoveObjectOptions{VersionID: marker}); err != nil {
		t.Fatalf("remove the delete marker: %v", err)
	}
	mustHold(t, b, name, data)
}

// TestImmutableReplicated: on a GRS vault with object lock on both copies,
// prune's Remove is refused by the primary and leaves the secondary alone,
// and a primary object replaced behind tapeless's back (a plain PUT
// stacking a new version) is read from the secondary instead.
func TestImmutableReplicated(t *testing.T) {
	ctx := context.Background()
	p, pc, pbucket, pprefix := lockedVault(t, "primary")
	s, _, _, _ := lockedVault(t, "secondary")
	g := newGRS(t, p, s, storage.WithContentHash(hashFromName))
	data := storagetest.Bytes(71, 20<<20) // multipart on S3
	name := contentName(data)
	if err := g.grs.Save(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if err := g.grs.Remove(ctx, name); !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("Remove on a locked GRS vault = %v, want ErrLocked", err)
	}
	if g.secondary.Calls(storage.OpRemove) != 0 {
		t.Error("Remove went on to the secondary after the primary refused")
	}
	mustHold(t, p, name, data)
	mustHold(t, s, name, data)

	other := storagetest.Bytes(72, 1000)
	if _, err := pc.PutObject(ctx, pbucket, pprefix+name, bytes.NewReader(other), int64(len(other)), miniogo.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	mustHold(t, g.grs, name, data)
	if r := g.reports(); len(r) != 1 || !r[0].Served {
		t.Errorf("fallbacks = %v, want one served by the secondary", r)
	}
}
