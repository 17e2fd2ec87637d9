package archive

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// PausePointEnv names the environment variable that arms a pause point for
// concurrency tests: "NAME:N:DIR" makes the process, the N-th time it
// reaches the pause point NAME, create DIR/reached and wait until
// DIR/continue exists, so a test can run another command at exactly that
// instant. Unset, a pause point costs one atomic load.
const PausePointEnv = "TAPELESS_PAUSEPOINT"

// Pause point names.
const (
	// pauseRestoreWrite is passed before each entry of the write pass of
	// a restore, after every check: the point is read and being written.
	pauseRestoreWrite = "restore-write"
)

var pause = testPoint{env: PausePointEnv, syntax: "NAME:N:DIR", withArg: true}

// pausePoint waits as PausePointEnv says when it names name and this is
// its N-th hit.
func pausePoint(name string) {
	if !pause.hit(name) {
		return
	}
	dir := pause.arg
	if err := os.WriteFile(filepath.Join(dir, "reached"), nil, 0o600); err != nil {
		fmt.Fprintf(os.Stderr, "tapeless: pause point %s: %v\n", name, err)
		return
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "continue")); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
