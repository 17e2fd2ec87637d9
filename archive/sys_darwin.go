package archive

import "golang.org/x/sys/unix"

// utimeOmit is UTIME_OMIT of <sys/stat.h> (macOS 10.13 and later), which
// golang.org/x/sys does not define for darwin.
const utimeOmit = -2

const errNoXattr = unix.ENOATTR

func statMtime(st *unix.Stat_t) int64 { return st.Mtim.Nano() }
func statCtime(st *unix.Stat_t) int64 { return st.Ctim.Nano() }
func statAtime(st *unix.Stat_t) int64 { return st.Atim.Nano() }
