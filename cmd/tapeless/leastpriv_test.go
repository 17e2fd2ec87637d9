package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

// noDeletePolicy is the policy docs/OPERATIONS.md gives for the keys of
// backup and offload: everything on the bucket but deleting objects.
const noDeletePolicy = `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:ListBucket","s3:GetBucketLocation",
   "s3:GetBucketObjectLockConfiguration","s3:GetObjectRetention","s3:PutObjectRetention",
   "s3:ListBucketMultipartUploads","s3:AbortMultipartUpload","s3:ListMultipartUploadParts"],
  "Resource":["arn:aws:s3:::*"]},
 {"Effect":"Deny","Action":["s3:DeleteObject","s3:DeleteObjectVersion"],"Resource":["arn:aws:s3:::*"]}]}`

// TestOffloadWithKeysThatCannotDelete: backup, offload, restore and verify
// run with S3 keys whose policy denies deletes (temporary keys from
// MinIO's STS with the policy inline, as an IAM role's would be); prune,
// the one job that deletes, fails with a clear error, removes nothing,
// and succeeds with keys that may delete.
func TestOffloadWithKeysThatCannotDelete(t *testing.T) {
	purl, po := storagetest.MinIO(t, "primary")
	surl, _ := storagetest.MinIO(t, "primary") // both copies on one server: its STS keys are valid there only
	host, _ := storagetest.Env(t, "primary")
	sts, err := credentials.NewSTSAssumeRole("http://"+host, credentials.STSAssumeRoleOptions{
		AccessKey: po.AccessKey, SecretKey: po.SecretKey, Policy: noDeletePolicy, DurationSeconds: 3600,
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := sts.GetWithContext(&credentials.CredContext{Client: http.DefaultClient})
	if err != nil {
		t.Skipf("MinIO's STS gave no temporary keys: %v", err)
	}
	bin := buildTapeless(t)
	c := newOlCLI(t, bin, purl, surl, po)
	admin := c.env
	// Keys in the config win over the environment; this server keeps none,
	// so each run uses the keys of its environment.
	cfgPath := filepath.Join(c.dir, "config.yaml")
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Vault.AccessKey, cfg.Vault.SecretKey, cfg.Vault.SecondaryAccessKey, cfg.Vault.SecondarySecretKey = "", "", "", ""
	if err := saveConfig(cfgPath, cfg); err != nil {
		t.Fatal(err)
	}
	c.env = []string{"AWS_ACCESS_KEY_ID=" + v.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + v.SecretAccessKey, "AWS_SESSION_TOKEN=" + v.SessionToken}

	// The keys really cannot delete.
	nd, err := storage.Open(t.Context(), purl, storage.Options{AccessKey: v.AccessKeyID, SecretKey: v.SecretAccessKey, SessionToken: v.SessionToken})
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	if err := nd.Save(t.Context(), "probe", strings.NewReader("x"), 1); err != nil {
		t.Fatalf("the no-delete keys cannot write: %v", err)
	}
	if err := nd.Remove(t.Context(), "probe"); err == nil {
		t.Fatal("the no-delete keys deleted an object: the policy is not in force")
	}

	old, oldSrc := c.backup(900)
	kept, _ := c.backup(901)
	c.mustRun("offload", "--keep-within", "0s", "--keep-last", "0")
	c.mustRun("offload", "--keep-within", "0s", "--keep-last", "0") // a rerun finds nothing to do
	for _, b := range c.copies {
		if pts := completePoints(t, b); !pts[old] || !pts[kept] {
			t.Fatalf("%s after offloads with no-delete keys: %v", b.Location(), pts)
		}
	}
	c.mustRun("verify", "--vault", "--read-data")
	target := filepath.Join(c.dir, "restored")
	c.mustRun("restore", old.String()[:12], "--target", target, "--passphrase-file", filepath.Join(c.dir, "passphrase"))
	for _, f := range []string{"dir0/file-0", "dir1/file-1", "dir2/file-2"} {
		want, _ := os.ReadFile(filepath.Join(oldSrc, f))
		if got, err := os.ReadFile(filepath.Join(target, f)); err != nil || string(got) != string(want) {
			t.Errorf("restored %s: %v", f, err)
		}
	}

	c.setVaultPolicy(1) // one daily point: the older expires
	r := c.run(nil, "prune")
	if r.code == 0 {
		t.Fatalf("prune with keys that cannot delete succeeded:\n%s\n%s", r.stdout, r.stderr)
	}
	t.Logf("prune with no-delete keys: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	if !strings.Contains(r.stderr, "may not delete") || !strings.Contains(r.stderr, "s3:DeleteObject") {
		t.Errorf("prune with no-delete keys: exit %d, stderr %q; want it to say access was denied", r.code, r.stderr)
	}
	for _, b := range c.copies {
		if pts := completePoints(t, b); !pts[old] || !pts[kept] {
			t.Errorf("%s after a refused prune: %v; want both points whole", b.Location(), pts)
		}
	}
	c.env = admin
	var res struct {
		Expired []string `json:"expired"`
	}
	if err := json.Unmarshal([]byte(c.mustRun("prune", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Expired) != 1 || res.Expired[0] != old.String() {
		t.Errorf("prune with keys that may delete expired %v, want %s", res.Expired, old)
	}
}
