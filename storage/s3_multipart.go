package storage

import (
	"context"
	"fmt"
	"time"
)

// AbandonedUploadAge is the age after which the next run treats an
// incomplete multipart upload as left behind by a killed run. A live
// upload of one pack takes minutes even on a throttled line; several
// servers may share an account, so another server's upload must be far
// older than that before it is taken for dead.
const AbandonedUploadAge = 6 * time.Hour

// UploadAborter is implemented by backends that can have incomplete
// multipart uploads: *S3.
type UploadAborter interface {
	AbortIncompleteUploads(ctx context.Context, olderThan time.Duration) (int, error)
}

// AbortIncompleteUploads aborts the incomplete multipart uploads that were
// started more than olderThan ago on every server behind b (both copies
// of a replicated backend, through wrappers) and returns how many it
// aborted. A killed run leaves such uploads behind: their parts are
// invisible to listings yet stored and billed until aborted. Backends
// without multipart uploads (file: a killed save leaves only a temporary
// file that Save ignores) are skipped.
//
// The scope is the S3 backend's own URL prefix, which may hold more than
// one vault (Prefixed views share it): olderThan must be long enough that
// no live upload from another process is that old — AbandonedUploadAge.
func AbortIncompleteUploads(ctx context.Context, b Backend, olderThan time.Duration) (int, error) {
	total := 0
	var err error
	visitServers(b, func(b Backend) bool {
		a, ok := b.(UploadAborter)
		if !ok {
			return true
		}
		var n int
		n, err = a.AbortIncompleteUploads(ctx, olderThan)
		total += n
		if err != nil {
			err = fmt.Errorf("abort incomplete uploads at %s: %w", b.Location(), err)
			return false
		}
		return true
	})
	return total, err
}
