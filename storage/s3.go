package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 tuning. Objects up to s3PartSize go in one PUT from a memory buffer
// (so a failed attempt can be retried); larger ones in s3PartSize parts,
// s3Threads of them in flight, which keeps a local MinIO and a WAN link
// busy while bounding memory to (s3Threads+1) × s3PartSize per Save.
const (
	s3PartSize = 16 << 20
	s3Threads  = 4
	// s3AbortTimeout bounds the clean-up of a failed multipart upload, which
	// runs even when the caller's context is already cancelled.
	s3AbortTimeout = 30 * time.Second
)

// Header names of the S3 checksum protocol.
const (
	hdrChecksum     = "x-amz-checksum-crc64nvme"
	hdrChecksumAlgo = "x-amz-checksum-algorithm"
	hdrChecksumType = "x-amz-checksum-type"
	hdrChecksumMode = "x-amz-checksum-mode"
)

// S3 is a Backend on an S3 bucket (any S3-compatible server) through
// minio-go, for s3://host:port/bucket[/prefix] URLs.
//
// Write-once is enforced by the server with conditional writes
// (If-None-Match: *, on the single PUT or on CompleteMultipartUpload), so
// two writers racing on one name cannot both win; MinIO honours it (see
// TestS3ConditionalPut). Every PUT and every part carries a CRC-64/NVME
// checksum header that the server verifies, and the object keeps the
// full-object value, which Stat reports and whole-object Loads verify.
// ETags are never used for integrity.
type S3 struct {
	client   *minio.Client
	core     minio.Core
	u        URL
	prefix   string // "" or ends in "/"
	lockDays int
	tr       *http.Transport
	bufs     sync.Pool // *[]byte of s3PartSize
	noKeys   bool      // no access key was given: say so when S3 refuses
}

var _ Backend = (*S3)(nil)

// NewS3 returns an S3 backend for a parsed s3:// URL. It does not contact
// the server; use Check for an early, clear error.
func NewS3(ctx context.Context, u URL, o Options) (*S3, error) {
	if u.Scheme != "s3" {
		return nil, fmt.Errorf("new S3 backend: %s is not an s3:// URL", u)
	}
	tr, err := minio.DefaultTransport(!u.Insecure)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	if o.Proxy != "" {
		pu, err := url.Parse(o.Proxy)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, fmt.Errorf("proxy %q for %s: want http://host:port or https://host:port", Redact(o.Proxy), u)
		}
		tr.Proxy = http.ProxyURL(pu)
	}
	// Fail fast on a dead endpoint instead of waiting 30 s per attempt;
	// retries cover the transient cases.
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	retries := o.MaxRetries
	if retries <= 0 {
		retries = DefaultMaxRetries
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:           credentials.NewStaticV4(o.AccessKey, o.SecretKey, o.SessionToken),
		Secure:          !u.Insecure,
		Transport:       tr,
		Region:          u.Region,
		TrailingHeaders: true,
		MaxRetries:      retries,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	s := &S3{client: client, core: minio.Core{Client: client}, u: u, lockDays: o.ObjectLockDays, tr: tr, noKeys: o.AccessKey == ""}
	if u.Prefix != "" {
		s.prefix = u.Prefix + "/"
	}
	s.bufs.New = func() any { b := make([]byte, s3PartSize); return &b }
	return s, nil
}

// Location returns the URL without secrets.
func (s *S3) Location() string { return s.u.String() }

// Bucket returns the bucket name.
func (s *S3) Bucket() string { return s.u.Bucket }

// Client returns the underlying minio-go client, for tests and tools that
// need an S3 call the Backend interface does not offer.
func (s *S3) Client() *minio.Client { return s.client }

func (s *S3) key(name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	return s.prefix + name, nil
}

// putOptions carries retention; write-once and checksums are added per call.
func (s *S3) putOptions() minio.PutObjectOptions {
	o := minio.PutObjectOptions{
		// The CRC64NVME header protects the content; signing the payload's
		// SHA-256 as well would cost a second pass over every byte.
		DisableContentSha256: true,
		UserMetadata:         map[string]string{},
	}
	if s.lockDays > 0 {
		o.Mode = minio.Compliance
		o.RetainUntilDate = time.Now().Add(time.Duration(s.lockDays) * 24 * time.Hour).UTC()
	}
	return o
}

// Save uploads size bytes from r under name unless name exists. When a
// network failure hides the answer to a PUT that did land, minio-go's retry
// gets ErrExists for our own object; with content-derived names that is
// the right outcome.
func (s *S3) Save(ctx context.Context, name string, r io.Reader, size int64) error {
	key, err := s.key(name)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("save %s: negative size %d", name, size)
	}
	if size <= s3PartSize {
		return s.putSingle(ctx, name, key, r, size)
	}
	// A multipart upload only learns at completion that the name is
	// taken; ask first so a duplicate costs one HEAD, not the whole upload.
	if _, err := s.Stat(ctx, name); err == nil {
		return fmt.Errorf("save %s: %w", name, ErrExists)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	return s.putMultipart(ctx, name, key, r, size)
}

func (s *S3) getBuf() *[]byte  { return s.bufs.Get().(*[]byte) }
func (s *S3) putBuf(b *[]byte) { s.bufs.Put(b) }

func (s *S3) putSingle(ctx context.Context, name, key string, r io.Reader, size int64) error {
	// Small objects (most index and manifest objects) get their own
	// buffer instead of tying up a 16 MiB one from the pool.
	var buf []byte
	if size < s3PartSize/16 {
		buf = make([]byte, size)
	} else {
		bp := s.getBuf()
		defer s.putBuf(bp)
		buf = (*bp)[:size]
	}
	if _, err := io.ReadFull(ctxReader{ctx, r}, buf); err != nil {
		return fmt.Errorf("save %s: read source: %w", name, err)
	}
	h := NewChecksum()
	h.Write(buf)
	opts := s.putOptions()
	opts.UserMetadata[hdrChecksum] = FormatChecksum(h.Sum(nil))
	opts.SetMatchETagExcept("*")
	_, err := s.core.PutObject(ctx, s.u.Bucket, key, bytes.NewReader(buf), size, "", "", opts)
	if err != nil {
		return s.translate("save", name, err)
	}
	return nil
}

type partResult struct {
	part minio.CompletePart
	err  error
}

func (s *S3) putMultipart(ctx context.Context, name, key string, r io.Reader, size int64) (err error) {
	opts := s.putOptions()
	opts.UserMetadata[hdrChecksumAlgo] = "CRC64NVME"
	opts.UserMetadata[hdrChecksumType] = "FULL_OBJECT"
	uploadID, err := s.core.NewMultipartUpload(ctx, s.u.Bucket, key, opts)
	if err != nil {
		return s.translate("save", name, err)
	}
	defer func() {
		if err != nil {
			// minio-go would abort with the caller's context, which is
			// often the cancelled one; parts left behind cost storage.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s3AbortTimeout)
			defer cancel()
			_ = s.core.AbortMultipartUpload(actx, s.u.Bucket, key, uploadID)
		}
	}()

	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, s3Threads)
	results := make(chan partResult, (size+s3PartSize-1)/s3PartSize)
	var wg sync.WaitGroup
	full := NewChecksum()
	src := ctxReader{pctx, r}
	var readErr error
	nparts := 0
	for off := int64(0); off < size; off += s3PartSize {
		n := min(size-off, s3PartSize)
		select {
		case sem <- struct{}{}:
		case <-pctx.Done():
		}
		if pctx.Err() != nil {
			break
		}
		bp := s.getBuf()
		buf := (*bp)[:n]
		if _, err := io.ReadFull(src, buf); err != nil {
			s.putBuf(bp)
			<-sem
			readErr = fmt.Errorf("save %s: read source: %w", name, err)
			break
		}
		full.Write(buf)
		ph := NewChecksum()
		ph.Write(buf)
		nparts++
		num := nparts
		sum := FormatChecksum(ph.Sum(nil))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { s.putBuf(bp); <-sem }()
			hdr := http.Header{}
			hdr.Set(hdrChecksum, sum)
			hdr.Set(hdrChecksumAlgo, "CRC64NVME")
			p, err := s.core.PutObjectPart(pctx, s.u.Bucket, key, uploadID, num, bytes.NewReader(buf), n,
				minio.PutObjectPartOptions{CustomHeader: hdr, DisableContentSha256: true})
			if err != nil {
				cancel()
				results <- partResult{err: err}
				return
			}
			if p.ChecksumCRC64NVME != "" && p.ChecksumCRC64NVME != sum {
				cancel()
				results <- partResult{err: fmt.Errorf("part %d: server checksum %s, sent %s", num, p.ChecksumCRC64NVME, sum)}
				return
			}
			results <- partResult{part: minio.CompletePart{PartNumber: num, ETag: p.ETag, ChecksumCRC64NVME: sum}}
		}()
	}
	wg.Wait()
	close(results)
	parts := make([]minio.CompletePart, nparts)
	var partErr error
	for res := range results {
		if res.err != nil {
			if partErr == nil {
				partErr = res.err
			}
			continue
		}
		parts[res.part.PartNumber-1] = res.part
	}
	// A failed part cancels pctx, which makes the source read fail too:
	// report the cause, not the echo.
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("save %s: %w", name, ctx.Err())
	case partErr != nil:
		return s.translate("save", name, partErr)
	case readErr != nil:
		return readErr
	}
	sum := FormatChecksum(full.Sum(nil))
	copts := minio.PutObjectOptions{UserMetadata: map[string]string{hdrChecksum: sum, hdrChecksumType: "FULL_OBJECT"}}
	copts.SetMatchETagExcept("*")
	info, err := s.core.CompleteMultipartUpload(ctx, s.u.Bucket, key, uploadID, parts, copts)
	if err != nil {
		return s.translate("save", name, err)
	}
	if info.ChecksumCRC64NVME != "" && info.ChecksumCRC64NVME != sum {
		return fmt.Errorf("save %s at %s: server reports %s checksum %s, uploaded %s", name, s.Location(), ChecksumAlgorithm, info.ChecksumCRC64NVME, sum)
	}
	return nil
}

// Load reads a range of the object. A whole-object read is verified against
// the stored full-object checksum and size: a mismatch is returned by the
// reader at EOF (instead of io.EOF) and by Load.
func (s *S3) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	key, err := s.key(name)
	if err != nil {
		return err
	}
	if offset < 0 {
		return fmt.Errorf("load %s: offset %d: %w", name, offset, ErrInvalidRange)
	}
	if length == 0 {
		info, err := s.Stat(ctx, name)
		if err != nil {
			return err
		}
		if offset > info.Size {
			return fmt.Errorf("load %s: offset %d of %d-byte object: %w", name, offset, info.Size, ErrInvalidRange)
		}
		return fn(bytes.NewReader(nil))
	}
	var opts minio.GetObjectOptions
	whole := offset == 0 && length < 0
	switch {
	case whole:
		opts.Set(hdrChecksumMode, "ENABLED")
	case length < 0:
		err = opts.SetRange(offset, 0)
	default:
		err = opts.SetRange(offset, offset+length-1)
	}
	if err != nil {
		return fmt.Errorf("load %s: %w", name, err)
	}
	rc, oi, _, err := s.core.GetObject(ctx, s.u.Bucket, key, opts)
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && er.Code == "InvalidRange" {
			// S3 refuses a range starting at the end; that is an empty read
			// for us, and only a start beyond the end is an error.
			info, serr := s.Stat(ctx, name)
			if serr != nil {
				return serr
			}
			if offset == info.Size || (offset == 0 && info.Size == 0) {
				return fn(bytes.NewReader(nil))
			}
			return fmt.Errorf("load %s: offset %d of %d-byte object: %w", name, offset, info.Size, ErrInvalidRange)
		}
		return s.translate("load", name, err)
	}
	defer rc.Close()
	vr := &verifyReader{r: ctxReader{ctx, rc}, name: name, loc: s.Location()}
	if whole {
		vr.size = oi.Size
		vr.want = oi.ChecksumCRC64NVME
		vr.h = NewChecksum()
	}
	if err := fn(vr); err != nil {
		return err
	}
	return vr.err
}

// verifyReader checks size and checksum of a whole-object read at EOF.
type verifyReader struct {
	r         io.Reader
	name, loc string
	h         interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
	}
	want    string
	size, n int64
	err     error
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	if v.h != nil {
		v.h.Write(p[:n])
	}
	if err == io.EOF && v.h != nil {
		switch got := FormatChecksum(v.h.Sum(nil)); {
		case v.n != v.size:
			v.err = fmt.Errorf("load %s at %s: got %d bytes, object has %d: %w", v.name, v.loc, v.n, v.size, io.ErrUnexpectedEOF)
		case v.want != "" && got != v.want:
			v.err = fmt.Errorf("load %s at %s: %s checksum mismatch: stored %s, read %s", v.name, v.loc, ChecksumAlgorithm, v.want, got)
		}
		if v.err != nil {
			return n, v.err
		}
	}
	return n, err
}

// Stat returns size, time and the stored full-object checksum.
func (s *S3) Stat(ctx context.Context, name string) (Info, error) {
	key, err := s.key(name)
	if err != nil {
		return Info{}, err
	}
	oi, err := s.client.StatObject(ctx, s.u.Bucket, key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		return Info{}, s.translate("stat", name, err)
	}
	return Info{Name: name, Size: oi.Size, ModTime: oi.LastModified, Checksum: oi.ChecksumCRC64NVME}, nil
}

// List pages through the bucket listing (1,000 keys a request); the
// listing goroutine is cancelled when fn stops early.
func (s *S3) List(ctx context.Context, prefix string, fn func(Info) error) error {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	last := ""
	for oi := range s.client.ListObjects(lctx, s.u.Bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if oi.Err != nil {
			return s.translate("list", prefix, oi.Err)
		}
		// S3 lists keys in ascending order; a key that does not sort after
		// the last one means the server's continuation token went back,
		// and minio-go would page through the same keys forever.
		if last != "" && oi.Key <= last {
			return fmt.Errorf("list %s at %s: the server listed %s after %s: its listing loops or is out of order", prefix, s.Location(), oi.Key, last)
		}
		last = oi.Key
		if strings.HasSuffix(oi.Key, "/") {
			continue // a "directory" marker made by some other tool
		}
		if err := fn(Info{Name: strings.TrimPrefix(oi.Key, s.prefix), Size: oi.Size, ModTime: oi.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Remove deletes the object's current version. On a versioned (object
// lock) bucket it deletes that version for real rather than hiding it
// behind a delete marker, so S3 refuses it while retention lasts
// (ErrLocked).
func (s *S3) Remove(ctx context.Context, name string) error {
	key, err := s.key(name)
	if err != nil {
		return err
	}
	oi, err := s.client.StatObject(ctx, s.u.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return s.translate("remove", name, err)
	}
	vid := oi.VersionID
	if vid == "null" {
		vid = ""
	}
	if err := s.client.RemoveObject(ctx, s.u.Bucket, key, minio.RemoveObjectOptions{VersionID: vid}); err != nil {
		return s.translate("remove", name, err)
	}
	return nil
}

// Close releases idle connections.
func (s *S3) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

// Check makes one request to the bucket and returns the translated error,
// so a command can fail early with one clear line (missing bucket, wrong
// keys, unreachable endpoint).
func (s *S3) Check(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.u.Bucket)
	if err != nil {
		return s.translate("check", "", err)
	}
	if !ok {
		return s.noBucket(nil)
	}
	return nil
}

// ObjectLockEnabled reports whether the bucket was created with object
// lock, which --immutable-days needs.
func (s *S3) ObjectLockEnabled(ctx context.Context) (bool, error) {
	status, _, _, _, err := s.client.GetObjectLockConfig(ctx, s.u.Bucket)
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && er.Code == "ObjectLockConfigurationNotFoundError" {
			return false, nil
		}
		return false, s.translate("get object lock configuration", "", err)
	}
	return status == "Enabled", nil
}

// ServerTime returns the S3 server's clock, read from the Date header of a
// HEAD request on the bucket (any answer carries one, even a refusal), and
// corrected by half the round trip. Date has a resolution of one second.
func (s *S3) ServerTime(ctx context.Context) (time.Time, error) {
	scheme := "https"
	if s.u.Insecure {
		scheme = "http"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, scheme+"://"+s.u.Host+"/"+s.u.Bucket+"/", nil)
	if err != nil {
		return time.Time{}, fmt.Errorf("server time of %s: %w", s.Location(), err)
	}
	start := time.Now()
	resp, err := (&http.Client{Transport: s.tr, Timeout: time.Minute}).Do(req)
	if err != nil {
		return time.Time{}, s.translate("server time", "", err)
	}
	resp.Body.Close()
	rtt := time.Since(start)
	d, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return time.Time{}, fmt.Errorf("server time of %s: no usable Date header (%q)", s.Location(), resp.Header.Get("Date"))
	}
	return d.Add(rtt / 2), nil
}

// AbortIncompleteUploads aborts multipart uploads under the backend's
// prefix that were started more than olderThan ago (a killed run leaves
// them behind, and S3 bills their parts). Uploads younger than that may
// belong to a live writer. It returns how many it aborted.
func (s *S3) AbortIncompleteUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	return s.AbortUploads(ctx, func(_ string, started time.Time) bool { return started.Before(cutoff) })
}

// AbortUploads aborts the incomplete multipart uploads under the backend's
// prefix for which abort, given the object name (relative to the prefix)
// and when the upload started, returns true. A caller that knows which
// names only it can be writing (content-named objects of its own store,
// under its lock) aborts its own leftovers at once, whatever their age.
// It returns how many it aborted.
func (s *S3) AbortUploads(ctx context.Context, abort func(name string, started time.Time) bool) (int, error) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type upload struct{ key, id string }
	var old []upload
	// List the whole bucket and filter here: MinIO lists uploads only for
	// an exact object name or for no prefix at all.
	for u := range s.client.ListIncompleteUploads(lctx, s.u.Bucket, "", true) {
		if u.Err != nil {
			return 0, s.translate("list incomplete uploads", "", u.Err)
		}
		if strings.HasPrefix(u.Key, s.prefix) && abort(strings.TrimPrefix(u.Key, s.prefix), u.Initiated) {
			old = append(old, upload{u.Key, u.UploadID})
		}
	}
	n := 0
	for _, u := range old {
		if err := s.core.AbortMultipartUpload(ctx, s.u.Bucket, u.key, u.id); err != nil {
			var er minio.ErrorResponse
			if errors.As(err, &er) && er.Code == "NoSuchUpload" {
				continue
			}
			return n, s.translate("abort upload", strings.TrimPrefix(u.key, s.prefix), err)
		}
		n++
	}
	return n, nil
}

func (s *S3) noBucket(err error) error {
	errs := []error{}
	if err != nil {
		errs = append(errs, err)
	}
	return &edgeError{
		msg:  fmt.Sprintf("S3 bucket %q does not exist at %s: create it (for example with mc mb) or check the URL", s.u.Bucket, s.Location()),
		errs: errs,
	}
}

// translate turns minio-go and network errors into the package's sentinels
// and into one-line messages that name the URL (never a key) and say what
// to do.
func (s *S3) translate(op, name string, err error) error {
	if err == nil {
		return nil
	}
	what := op
	if name != "" {
		what = op + " " + name
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if ctxErr := contextError(err); ctxErr != nil {
			return fmt.Errorf("%s at %s: %w", what, s.Location(), ctxErr)
		}
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		// MinIO refuses a locked delete as InvalidRequest or AccessDenied
		// with this text; AWS uses AccessDenied.
		if strings.Contains(er.Message, "WORM") || er.Code == "ObjectLocked" {
			return &edgeError{msg: fmt.Sprintf("%s at %s: object is under retention: %s", what, s.Location(), oneLine(er.Message)), errs: []error{ErrLocked, err}}
		}
		switch er.Code {
		case "NoSuchKey", "NoSuchVersion":
			return fmt.Errorf("%s: %w", what, ErrNotFound)
		case "NoSuchBucket":
			return s.noBucket(err)
		case "PreconditionFailed":
			return fmt.Errorf("%s: %w", what, ErrExists)
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "AccessDeniedException":
			if op == "remove" && er.Code == "AccessDenied" && !s.noKeys {
				// Keys without delete rights are how backup and offload
				// are meant to run (docs/OPERATIONS.md, least privilege):
				// only prune deletes from the vault.
				return &edgeError{
					msg: fmt.Sprintf("%s at %s: S3 denied the delete (AccessDenied): these keys may not delete objects; run prune with keys allowed s3:DeleteObject on bucket %q (see docs/OPERATIONS.md, \"Least privilege\")",
						what, s.Location(), s.u.Bucket),
					errs: []error{err},
				}
			}
			if s.noKeys {
				return &edgeError{
					msg: fmt.Sprintf("S3 refused a request without access keys at %s (%s): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or register with a vault credentials file that holds keys",
						s.Location(), er.Code),
					errs: []error{err},
				}
			}
			return &edgeError{
				msg: fmt.Sprintf("S3 rejected the access keys for %s (%s): check the access key and secret key in the vault credentials or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and that they may use bucket %q",
					s.Location(), er.Code, s.u.Bucket),
				errs: []error{err},
			}
		}
		if er.StatusCode >= 500 || er.StatusCode == http.StatusTooManyRequests {
			return &edgeError{
				msg:  fmt.Sprintf("%s at %s: server answered %d %s after retries: try again later", what, s.Location(), er.StatusCode, oneLine(er.Code)),
				errs: []error{ErrUnavailable, err},
			}
		}
		if s.u.Insecure && er.StatusCode == http.StatusBadRequest && strings.Contains(er.Code, " ") {
			// Not an S3 error code but an HTTP status line: most likely an
			// HTTPS port refusing a plain-HTTP request.
			return &edgeError{
				msg:  fmt.Sprintf("%s at %s: the server refused the request with %q, not an S3 error: if it speaks HTTPS, remove ?insecure=1", what, s.Location(), oneLine(er.Code)),
				errs: []error{err},
			}
		}
		return &edgeError{msg: fmt.Sprintf("%s at %s: %s (%s)", what, s.Location(), oneLine(er.Message), er.Code), errs: []error{err}}
	}
	// The scheme does not match the server: Go's HTTP client says so only
	// in its message text.
	switch msg := err.Error(); {
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return &edgeError{
			msg:  fmt.Sprintf("%s at %s: the server answers plain HTTP, not HTTPS: add ?insecure=1 to the URL (or give the server TLS)", what, s.Location()),
			errs: []error{err},
		}
	case strings.Contains(msg, `malformed HTTP response "\x15\x03`):
		return &edgeError{
			msg:  fmt.Sprintf("%s at %s: the server speaks HTTPS, but the URL asks for plain HTTP: remove ?insecure=1", what, s.Location()),
			errs: []error{err},
		}
	}
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	switch {
	case errors.As(err, &oe), errors.As(err, &de):
		var detail error = err
		if oe != nil {
			detail = oe
		} else if de != nil {
			detail = de
		}
		return &edgeError{
			msg:  fmt.Sprintf("cannot reach %s: %s: check the host and port, that the S3 server is running, and the proxy setting", s.Location(), oneLine(detail.Error())),
			errs: []error{ErrUnavailable, err},
		}
	case errors.As(err, &ne) && ne.Timeout():
		return &edgeError{
			msg:  fmt.Sprintf("cannot reach %s: timed out: check the host and port, that the S3 server is running, and the proxy setting", s.Location()),
			errs: []error{ErrUnavailable, err},
		}
	}
	return fmt.Errorf("%s at %s: %w", what, s.Location(), err)
}

// contextError returns the context sentinel err wraps, if any.
func contextError(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	}
	return nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
