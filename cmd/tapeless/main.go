// Command tapeless keeps young recovery points on local disk and moves older
// ones into a vault on S3-compatible storage. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
)

// defaultMemoryLimit is the Go heap's soft limit unless GOMEMLIMIT says
// otherwise. A backup's live heap is a few pack and chunk buffers (about
// 70 MiB at two workers, docs/PERFORMANCE.md); with the collector's
// default headroom alone the process grew to 2-3 times that. Above the
// limit the collector works harder (at most half the CPU) instead of the
// process growing, so a tree that needs more still completes.
const defaultMemoryLimit = 160 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile(os.Stderr)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stopProfile()
	stop()
	os.Exit(code)
}

// startProfile writes a CPU profile of the whole command to the file named
// by TAPELESS_CPUPROFILE, and a heap profile at exit to TAPELESS_MEMPROFILE:
// how docs/PERFORMANCE.md's profiles are taken, on the real binary. It is an
// environment variable, not a flag, so no command's --help carries it.
func startProfile(stderr *os.File) (stop func()) {
	var stops []func()
	if p := os.Getenv("TAPELESS_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "tapeless: TAPELESS_CPUPROFILE: %v\n", err)
		} else {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if p := os.Getenv("TAPELESS_MEMPROFILE"); p != "" {
		stops = append(stops, func() {
			f, err := os.Create(p)
			if err == nil {
				err = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
			if err != nil {
				fmt.Fprintf(stderr, "tapeless: TAPELESS_MEMPROFILE: %v\n", err)
			}
		})
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}
