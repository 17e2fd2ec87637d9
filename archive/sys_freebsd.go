package archive

import "golang.org/x/sys/unix"

const utimeOmit = unix.UTIME_OMIT

const errNoXattr = unix.ENOATTR

func statMtime(st *unix.Stat_t) int64 { return st.Mtim.Nano() }
func statCtime(st *unix.Stat_t) int64 { return st.Ctim.Nano() }
func statAtime(st *unix.Stat_t) int64 { return st.Atim.Nano() }
