// Package scheduler runs the daemon: cron specs become jobs, with
// single-flight locks, graceful shutdown and a run history. It composes the
// jobs that archive, retention and storage provide; it does not reimplement
// them.
package scheduler
