package vault

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/tapeless/tapeless/storage/humanize"
)

// ScratchPercent is the reference product's scratch-space rule: the scratch
// or staging location needs free space of at least this percentage of the
// data involved (100 GB of data → 5 GB free).
const ScratchPercent = 5

// MaxSourceBytes is the largest data source allowed: 54,400 GB, counting a
// GB as 10^9 bytes as the reference product does (about 49.5 TiB).
const MaxSourceBytes int64 = 54_400 * 1_000_000_000

// ErrScratchSpace is wrapped by every *ScratchSpaceError.
var ErrScratchSpace = errors.New("not enough scratch space")

// ErrSourceTooLarge is wrapped by every *SourceSizeError.
var ErrSourceTooLarge = errors.New("data source too large")

// DefaultScratchHint is the advice CheckScratch puts in its error.
const DefaultScratchHint = "free space or choose another folder with --staging"

// ScratchSpaceError reports a scratch location with too little free space.
type ScratchSpaceError struct {
	Dir  string // the location checked
	Free int64  // bytes free there
	Need int64  // bytes required: ScratchPercent of Data, rounded up
	Data int64  // bytes of data involved
	// Hint tells the user what to do; a caller that knows better (a
	// backup, whose scratch is the store) may replace it via errors.As.
	Hint string
}

func (e *ScratchSpaceError) Error() string {
	free, need := humanize.Bytes(e.Free), humanize.Bytes(e.Need)
	if free == need {
		// Rounding hides a shortfall of a few bytes; show them exactly.
		free += " (" + groupDigits(e.Free) + " bytes)"
		need += " (" + groupDigits(e.Need) + " bytes)"
	}
	msg := fmt.Sprintf("not enough scratch space in %s: %s free, need at least %s (%d%% of %s of data)",
		e.Dir, free, need, ScratchPercent, humanize.Bytes(e.Data))
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrScratchSpace) hold.
func (e *ScratchSpaceError) Unwrap() error { return ErrScratchSpace }

// ScratchNeeded returns the free space the scratch rule demands for
// dataBytes of data: ScratchPercent of it, rounded up to a whole byte.
func ScratchNeeded(dataBytes int64) int64 {
	if dataBytes <= 0 {
		return 0
	}
	// dataBytes/20 rounded up, without the overflow of dataBytes*5.
	const div = 100 / ScratchPercent
	need := dataBytes / div
	if dataBytes%div != 0 {
		need++
	}
	return need
}

// freeSpace returns the bytes available to an unprivileged user on the
// filesystem holding dir. Tests replace it to hit exact boundaries.
var freeSpace = statfsFree

// statfsFree asks statfs(2), which Linux, macOS and the BSDs have; the
// storage package (this and the lock's process check) builds on Unix only.
// A Windows port would put GetDiskFreeSpaceEx here behind a build tag.
func statfsFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, &fs.PathError{Op: "statfs", Path: dir, Err: err}
	}
	// Bavail, not Bfree: blocks reserved for root are no use to us.
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// CheckScratch enforces the scratch-space rule before a backup, offload or
// restore touches anything: the filesystem holding dir must have at least
// ScratchPercent of dataBytes free. A dir that does not exist yet is
// checked on its nearest existing parent, the filesystem it will be created
// on. Too little space yields a *ScratchSpaceError (wrapping
// ErrScratchSpace) carrying both numbers.
func CheckScratch(dir string, dataBytes int64) error {
	if dataBytes < 0 {
		return fmt.Errorf("check scratch space in %s: negative data size %d", dir, dataBytes)
	}
	probe, err := existingAncestor(dir)
	if err != nil {
		return fmt.Errorf("check scratch space in %s: %w", dir, err)
	}
	free, err := freeSpace(probe)
	if err != nil {
		return fmt.Errorf("check scratch space in %s: %w", dir, err)
	}
	need := ScratchNeeded(dataBytes)
	if free < need {
		return &ScratchSpaceError{Dir: dir, Free: free, Need: need, Data: dataBytes, Hint: DefaultScratchHint}
	}
	return nil
}

// existingAncestor returns dir or its nearest parent that exists.
func existingAncestor(dir string) (string, error) {
	p, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		p = parent
	}
}

// SourceSizeError reports a data source larger than MaxSourceBytes.
type SourceSizeError struct {
	Name string // the data source
	Size int64  // its size in bytes
}

func (e *SourceSizeError) Error() string {
	return fmt.Sprintf("data source %q is too large: %s bytes (%s GB, %s), over the limit of 54,400 GB (%s bytes, 1 GB = 10^9 bytes) per data source; split it into smaller data sources or exclude paths",
		e.Name, groupDigits(e.Size), formatGB(e.Size), humanize.Bytes(e.Size), groupDigits(MaxSourceBytes))
}

// Unwrap makes errors.Is(err, ErrSourceTooLarge) hold.
func (e *SourceSizeError) Unwrap() error { return ErrSourceTooLarge }

// CheckSourceSize enforces the per-data-source limit of MaxSourceBytes
// (54,400 GB with GB = 10^9 bytes); exactly the limit is allowed. A larger
// source yields a *SourceSizeError (wrapping ErrSourceTooLarge) naming the
// source, its size and the limit.
func CheckSourceSize(name string, bytes int64) error {
	if bytes <= MaxSourceBytes {
		return nil
	}
	return &SourceSizeError{Name: name, Size: bytes}
}

// formatGB gives bytes in decimal GB with one decimal, digits grouped.
func formatGB(bytes int64) string {
	tenths := (bytes + 50_000_000) / 100_000_000 // rounded to 0.1 GB
	return groupDigits(tenths/10) + "." + strconv.FormatInt(tenths%10, 10)
}

// groupDigits writes n with thousands separators: 54400000000000 →
// "54,400,000,000,000".
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := ""
	if s[0] == '-' {
		neg, s = "-", s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return neg + string(out)
}
