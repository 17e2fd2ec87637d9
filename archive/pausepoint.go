package archive

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

var pause struct {
	once  sync.Once
	armed atomic.Bool
	name  string
	at    int64
	dir   string
	hits  atomic.Int64
}

func armPausePoint() {
	v := os.Getenv(PausePointEnv)
	if v == "" {
		return
	}
	parts := strings.SplitN(v, ":", 3)
	if len(parts) != 3 {
		fmt.Fprintf(os.Stderr, "tapeless: ignoring %s=%q: want NAME:N:DIR\n", PausePointEnv, v)
		return
	}
	at, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || at < 1 {
		fmt.Fprintf(os.Stderr, "tapeless: ignoring %s=%q: want NAME:N:DIR with N >= 1\n", PausePointEnv, v)
		return
	}
	pause.name, pause.at, pause.dir = parts[0], at, parts[2]
	pause.armed.Store(true)
}

// pausePoint waits as PausePointEnv says when it names name and this is
// its N-th hit.
func pausePoint(name string) {
	pause.once.Do(armPausePoint)
	if !pause.armed.Load() || pause.name != name || pause.hits.Add(1) != pause.at {
		return
	}
	if err := os.WriteFile(filepath.Join(pause.dir, "reached"), nil, 0o600); err != nil {
		fmt.Fprintf(os.Stderr, "tapeless: pause point %s: %v\n", name, err)
		return
	}
	for {
		if _, err := os.Stat(filepath.Join(pause.dir, "continue")); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
