//go:build darwin || freebsd

package archive

import (
	"os"

	"golang.org/x/sys/unix"
)

// oNoatime: these systems have no per-open way to keep atime.
const oNoatime = 0

// futimens sets the mtime of an open file, keeping its atime. Without
// Linux's utimensat on a descriptor, this goes through futimes(2): the
// mtime is set to the microsecond.
func futimens(f *os.File, mtime int64) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	atime := unix.NsecToTimeval(statAtime(&st))
	return unix.Futimes(int(f.Fd()), []unix.Timeval{atime, unix.NsecToTimeval(mtime)})
}
