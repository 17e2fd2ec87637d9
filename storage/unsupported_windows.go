//go:build windows

package storage

// tapeless needs a Unix system (Linux, macOS or FreeBSD): owners, sparse
// files, hard links, flock(2) and statfs(2) are part of what it stores and
// checks. This line stops a Windows build with that message rather than
// with a list of missing system calls.
const _ = tapeless_needs_a_Unix_system_Linux_macOS_or_FreeBSD
