package archive

import (
	"fmt"
	"os"
	"syscall"
)

// CrashPointEnv names the environment variable that arms a crash point for
// crash-safety tests: "NAME:N" makes the process SIGKILL itself the N-th
// time it reaches the crash point NAME (N defaults to 1). Nothing else
// changes; unset, a crash point costs one atomic load.
const CrashPointEnv = "TAPELESS_CRASHPOINT"

var crash = testPoint{env: CrashPointEnv, syntax: "NAME:N", nOptional: true}

// crashPoint kills the process with SIGKILL when the armed crash point
// (see CrashPointEnv) is name and this is its N-th hit. SIGKILL, not a
// panic or exit: no deferred function, flush or cleanup runs, which is
// what a power cut or the OOM killer does.
func crashPoint(name string) {
	if crash.hit(name) {
		fmt.Fprintf(os.Stderr, "tapeless: crash point %s:%d reached, killing the process\n", name, crash.at)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

// CrashPoints lists the crash points offload and prune pass, for tests
// that arm each of them.
var CrashPoints = []string{
	crashUploading, crashUploadRead, crashCopyPrimary, crashCopyBoth,
	crashPointPrimary, crashArchived, crashLocalPointRemoved, crashGCPack,
	crashPruneJournal, crashPrunePointRemoved, crashPruneObjectRemoved, crashBackupPack,
}

// Crash point names.
const (
	crashUploading          = "offload-uploading"           // catalogue says uploading, nothing sent yet
	crashUploadRead         = "offload-upload-read"         // every read of an upload's source (mid-transfer)
	crashCopyPrimary        = "offload-copy-primary"        // an object confirmed on the primary, not yet on the secondary
	crashCopyBoth           = "offload-copy-done"           // an object confirmed on every copy
	crashPointPrimary       = "offload-point-primary"       // point object on the primary only
	crashArchived           = "offload-archived"            // catalogue says archived, local copy still there
	crashLocalPointRemoved  = "offload-local-point-removed" // local point object gone, packs not yet collected
	crashGCPack             = "offload-gc-pack"             // after each local pack removed
	crashPruneJournal       = "prune-journal"               // expiry decided and journaled, nothing deleted
	crashPrunePointRemoved  = "prune-point-removed"         // after each vault point object removed
	crashPruneObjectRemoved = "prune-object-removed"        // after each vault pack or index object removed
	crashBackupPack         = "backup-pack-written"         // a backup's pack written and recorded, its point not yet saved
)
