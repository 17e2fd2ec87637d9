package archive

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// testPoint is the arming of crash points and pause points: an environment
// variable holding "NAME:N" (crash points, where ":N" may be left out for
// 1) or "NAME:N:ARG" (pause points, ARG their folder) selects the N-th time
// the process reaches the point NAME. The variable is read once, at the
// first point reached; unarmed, a point then costs one atomic load. A
// malformed value is ignored with a warning on stderr.
type testPoint struct {
	env       string
	syntax    string // "NAME:N" or "NAME:N:DIR", for the warning
	withArg   bool   // the value ends in ":ARG"
	nOptional bool   // "NAME" and "NAME:" mean N = 1

	once  sync.Once
	armed atomic.Bool
	name  string
	at    int64
	arg   string
	hits  atomic.Int64
}

func (p *testPoint) arm() {
	v := os.Getenv(p.env)
	if v == "" {
		return
	}
	fields := 2
	if p.withArg {
		fields = 3
	}
	parts := strings.SplitN(v, ":", fields)
	at := int64(1)
	switch {
	case p.nOptional && (len(parts) == 1 || parts[1] == ""):
	case len(parts) == fields:
		n, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "tapeless: ignoring %s=%q: want %s with N >= 1\n", p.env, v, p.syntax)
			return
		}
		at = n
	default:
		fmt.Fprintf(os.Stderr, "tapeless: ignoring %s=%q: want %s\n", p.env, v, p.syntax)
		return
	}
	p.name, p.at = parts[0], at
	if p.withArg {
		p.arg = parts[2]
	}
	p.armed.Store(true)
}

// hit reports whether reaching the point name now is the armed N-th time.
func (p *testPoint) hit(name string) bool {
	p.once.Do(p.arm)
	return p.armed.Load() && p.name == name && p.hits.Add(1) == p.at
}
