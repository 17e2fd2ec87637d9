package storage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Options configure Open. Secrets in it never appear in errors or in
// Location.
type Options struct {
	// AccessKey and SecretKey authenticate to S3; when both are empty they
	// come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and
	// SessionToken from AWS_SESSION_TOKEN.
	AccessKey, SecretKey string
	// SessionToken goes with temporary keys (STS: an assumed role, an
	// instance profile's keys); empty for an IAM user's keys.
	SessionToken string
	// Proxy is an http:// or https:// proxy URL for all S3 traffic; empty
	// means the usual HTTPS_PROXY/HTTP_PROXY/NO_PROXY environment.
	Proxy string
	// ObjectLockDays > 0 puts every saved object under COMPLIANCE
	// retention for that many days (S3 buckets with object lock only).
	ObjectLockDays int
	// MaxRetries is how many times one S3 request is tried in total on
	// network errors, timeouts and 5xx answers, with exponential backoff;
	// 0 means DefaultMaxRetries, 1 means no retry.
	MaxRetries int
}

// DefaultMaxRetries is the number of attempts per S3 request when
// Options.MaxRetries is 0: about 3 s of backoff before giving up.
const DefaultMaxRetries = 5

// URL is a parsed backend URL.
type URL struct {
	Scheme   string // "file" or "s3"
	Path     string // file: the absolute directory
	Host     string // s3: host:port
	Bucket   string // s3
	Prefix   string // s3: key prefix without leading or trailing "/", may be ""
	Insecure bool   // s3: plain HTTP instead of HTTPS
	Region   string // s3: optional ?region=
}

// String returns the URL in the form Open accepts. It never holds secrets:
// ParseURL refuses URLs carrying user information.
func (u URL) String() string {
	if u.Scheme == "file" {
		return (&url.URL{Scheme: "file", Path: u.Path}).String()
	}
	p := "/" + u.Bucket
	if u.Prefix != "" {
		p += "/" + u.Prefix
	}
	s := (&url.URL{Scheme: "s3", Host: u.Host, Path: p}).String()
	q := url.Values{}
	if u.Insecure {
		q.Set("insecure", "1")
	}
	if u.Region != "" {
		q.Set("region", u.Region)
	}
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

var userinfoRE = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@`)

// Redact returns rawURL with any user information (keys, passwords)
// replaced by "***", for use in messages about a URL that may not parse.
func Redact(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		if u.User != nil {
			u.User = url.User("***")
			return u.String()
		}
		return rawURL
	}
	return userinfoRE.ReplaceAllString(rawURL, "${1}***@")
}

var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ParseURL parses file:///abs/path and s3://host:port/bucket[/prefix] URLs
// (query: insecure=1 for plain HTTP, region=NAME). The error names the URL
// (redacted) and the expected form.
func ParseURL(rawURL string) (URL, error) {
	fail := func(why string) (URL, error) {
		return URL{}, fmt.Errorf("invalid storage URL %q: %s (want file:///abs/path or s3://host:port/bucket[/prefix][?insecure=1])", Redact(rawURL), why)
	}
	if strings.TrimSpace(rawURL) == "" {
		return fail("empty")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return fail("cannot parse it")
	}
	if u.User != nil {
		return fail("keys do not belong in the URL; use the credentials file or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return fail("a file URL needs an absolute path with three slashes, like file:///var/lib/tapeless/vault")
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return fail("a file URL takes no query or fragment")
		}
		if u.Path == "" || !path.IsAbs(u.Path) {
			return fail("a file URL needs an absolute path")
		}
		return URL{Scheme: "file", Path: path.Clean(u.Path)}, nil
	case "s3":
		if u.Host == "" {
			return fail("missing host:port")
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil {
			host, port = u.Host, ""
		}
		if host == "" {
			return fail("missing host")
		}
		if port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fail("bad port " + strconv.Quote(port))
			}
		}
		p := strings.TrimPrefix(u.Path, "/")
		bucket, prefix, _ := strings.Cut(p, "/")
		if bucket == "" {
			return fail("missing bucket name after the host")
		}
		if !bucketRE.MatchString(bucket) || strings.Contains(bucket, "..") {
			return fail(fmt.Sprintf("bucket name %q is not valid (3-63 lowercase letters, digits, dots, hyphens)", bucket))
		}
		prefix = strings.TrimSuffix(prefix, "/")
		if prefix != "" {
			if err := CheckName(prefix); err != nil {
				return fail("bad prefix: " + err.Error())
			}
		}
		out := URL{Scheme: "s3", Host: u.Host, Bucket: bucket, Prefix: prefix}
		q := u.Query()
		for k := range q {
			switch k {
			case "insecure", "region":
			default:
				return fail(fmt.Sprintf("unknown query parameter %q", k))
			}
		}
		switch v := q.Get("insecure"); v {
		case "", "0", "false":
		case "1", "true":
			out.Insecure = true
		default:
			return fail(fmt.Sprintf("insecure=%q: use insecure=1", v))
		}
		out.Region = q.Get("region")
		return out, nil
	case "":
		return fail("missing scheme")
	default:
		return fail(fmt.Sprintf("unsupported scheme %q", u.Scheme))
	}
}

// Open returns the Backend for rawURL. It does not contact the server: a
// missing bucket, wrong keys or an unreachable endpoint show up, as one
// clear error naming the URL, on the first call (see (*S3).Check).
func Open(ctx context.Context, rawURL string, o Options) (Backend, error) {
	b, err := open(ctx, rawURL, o)
	if err == nil && openHook != nil {
		b = openHook(rawURL, b)
	}
	return b, err
}

// openHook, when set, wraps every backend Open returns; see
// SetOpenHookForTesting.
var openHook func(url string, b Backend) Backend

// SetOpenHookForTesting makes Open pass every backend it returns through
// wrap (with the URL it was opened for), until the returned function is
// called. It lets a test inject faults (a listing that comes back empty)
// below commands that open their own backends; it is not safe for tests
// that run in parallel, and nothing but tests may call it.
func SetOpenHookForTesting(wrap func(url string, b Backend) Backend) (restore func()) {
	old := openHook
	openHook = wrap
	return func() { openHook = old }
}

func open(ctx context.Context, rawURL string, o Options) (Backend, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "file":
		if o.ObjectLockDays > 0 {
			return nil, fmt.Errorf("%s: object lock (immutable days) needs an S3 bucket with object lock; a file URL cannot enforce it", u)
		}
		return NewFile(u.Path)
	default:
		if o.AccessKey == "" && o.SecretKey == "" {
			o.AccessKey = os.Getenv("AWS_ACCESS_KEY_ID")
			o.SecretKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
			o.SessionToken = os.Getenv("AWS_SESSION_TOKEN")
		}
		return NewS3(ctx, u, o)
	}
}

// Check makes one cheap call to the backend behind b so that a command can
// refuse early with one clear line: for S3 a request on the bucket (missing
// bucket, wrong keys, unreachable endpoint), for a file backend a look at
// its directory.
func Check(ctx context.Context, b Backend) error {
	if c, ok := Innermost(b).(interface{ Check(context.Context) error }); ok {
		return c.Check(ctx)
	}
	err := b.List(ctx, "", func(Info) error { return errCheckStop })
	if errors.Is(err, errCheckStop) {
		return nil
	}
	return err
}

var errCheckStop = errors.New("stop listing")
