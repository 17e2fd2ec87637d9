package archive

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// What differs between the Unix systems tapeless builds for lives in the
// sys_*.go files; Linux is the one tested in CI.

// oNoatime keeps reads from updating atime where the system allows it.
const oNoatime = unix.O_NOATIME

// utimeOmit leaves one of the two times of utimensat(2) unchanged.
const utimeOmit = unix.UTIME_OMIT

// errNoXattr is what getxattr returns for an attribute that is not there.
const errNoXattr = unix.ENODATA

// statMtime and statCtime return a stat result's times in ns.
func statMtime(st *unix.Stat_t) int64 { return st.Mtim.Nano() }
func statCtime(st *unix.Stat_t) int64 { return st.Ctim.Nano() }

// futimens sets the mtime of an open file (utimensat with a NULL path,
// which Linux applies to the descriptor itself), leaving atime alone.
func futimens(f *os.File, mtime int64) error {
	ts := [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(mtime)}
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
