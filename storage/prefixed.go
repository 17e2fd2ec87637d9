package storage

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Prefixed returns a view of b in which every name is stored under
// prefix + "/". A vault lives under a prefix of an account URL this way.
// Listings strip the prefix again. Close closes b.
func Prefixed(b Backend, prefix string) Backend {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return b
	}
	return &prefixed{b: b, p: prefix + "/"}
}

type prefixed struct {
	b Backend
	p string
}

var _ Backend = (*prefixed)(nil)

// Unwrap returns the backend the prefix applies to.
func (p *prefixed) Unwrap() Backend { return p.b }

func (p *prefixed) Location() string {
	loc := p.b.Location()
	if i := strings.IndexByte(loc, '?'); i >= 0 {
		return strings.TrimSuffix(loc[:i], "/") + "/" + strings.TrimSuffix(p.p, "/") + loc[i:]
	}
	return strings.TrimSuffix(loc, "/") + "/" + strings.TrimSuffix(p.p, "/")
}

func (p *prefixed) name(n string) (string, error) {
	if err := CheckName(n); err != nil {
		return "", err
	}
	return p.p + n, nil
}

func (p *prefixed) Save(ctx context.Context, name string, r io.Reader, size int64) error {
	n, err := p.name(name)
	if err != nil {
		return err
	}
	return p.b.Save(ctx, n, r, size)
}

func (p *prefixed) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	n, err := p.name(name)
	if err != nil {
		return err
	}
	return p.b.Load(ctx, n, offset, length, fn)
}

func (p *prefixed) Stat(ctx context.Context, name string) (Info, error) {
	n, err := p.name(name)
	if err != nil {
		return Info{}, err
	}
	info, err := p.b.Stat(ctx, n)
	info.Name = strings.TrimPrefix(info.Name, p.p)
	return info, err
}

func (p *prefixed) List(ctx context.Context, prefix string, fn func(Info) error) error {
	return p.b.List(ctx, p.p+prefix, func(info Info) error {
		if !strings.HasPrefix(info.Name, p.p) {
			return fmt.Errorf("list %s: backend returned %q outside the prefix", p.Location(), info.Name)
		}
		info.Name = info.Name[len(p.p):]
		return fn(info)
	})
}

func (p *prefixed) Remove(ctx context.Context, name string) error {
	n, err := p.name(name)
	if err != nil {
		return err
	}
	return p.b.Remove(ctx, n)
}

func (p *prefixed) Close() error { return p.b.Close() }

// Unwrapper is implemented by wrappers (Prefixed, storagetest.Fault, …) to expose the
// backend they wrap.
type Unwrapper interface{ Unwrap() Backend }

// Innermost follows Unwrap until it reaches a backend that wraps nothing,
// such as *S3 or *File, for features outside the Backend interface
// (ObjectLockEnabled, ServerTime).
func Innermost(b Backend) Backend {
	for {
		u, ok := b.(Unwrapper)
		if !ok {
			return b
		}
		b = u.Unwrap()
	}
}
