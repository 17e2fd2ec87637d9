package storagetest_test

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tapeless/tapeless/storage/storagetest"
)

// TestHelperNeedsMinIO is run by TestMinIOUnavailable in a child process;
// on its own it does nothing.
func TestHelperNeedsMinIO(t *testing.T) {
	if os.Getenv("STORAGETEST_HELPER") != "1" {
		t.Skip("helper for TestMinIOUnavailable")
	}
	storagetest.MinIO(t, "primary")
	t.Log("reached MinIO")
}

// TestMinIOUnavailable: with no MinIO answering, an S3 test skips, except
// under CI=true where it fails — S3 tests never silently skip in CI.
func TestMinIOUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	for _, c := range []struct {
		name, ci string
		fails    bool
		want     string
	}{
		{"outside CI", "", false, "SKIP: TestHelperNeedsMinIO"},
		{"CI=true", "true", true, "CI=true and MinIO primary at " + dead + " does not answer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNeedsMinIO$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "STORAGETEST_HELPER=1", "CI="+c.ci,
				storagetest.EnvPrimary+"="+dead, storagetest.EnvAccessKey+"=k", storagetest.EnvSecretKey+"=s")
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != c.fails {
				t.Errorf("helper failed = %v, want %v\n%s", failed, c.fails, out)
			}
			if !strings.Contains(string(out), c.want) || strings.Contains(string(out), "reached MinIO") {
				t.Errorf("helper output lacks %q or went on past MinIO:\n%s", c.want, out)
			}
		})
	}
}
