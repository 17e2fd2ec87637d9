package s3fault

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// Kind is a kind of injected fault.
type Kind string

// Fault kinds. Status, Reset, Hang and DropPut answer the request in the
// proxy (the last three never or only partly reach MinIO); the others
// forward it and change the request or the answer.
const (
	Status    Kind = "status"     // reply Fault.Status (500, 503...) with an S3 error body; MinIO never sees it
	Reset     Kind = "reset"      // close the connection with a TCP reset, before any reply
	Hang      Kind = "hang"       // hold the request for Fault.For (or until the client gives up), then reset
	DropPut   Kind = "drop-put"   // read a PUT's body and answer 200 with a plausible ETag, storing nothing
	Truncate  Kind = "truncate"   // forward a GET and cut the body short (the declared length stays)
	FlipBit   Kind = "flip-bit"   // forward a GET and flip one bit of the body
	ListDrop  Kind = "list-drop"  // forward a listing and drop entries: Fault.Drop matches, or written within Fault.Recent
	ListEmpty Kind = "list-empty" // forward a listing and answer it empty (use Rule.Key to pick one prefix)
	PageSize  Kind = "page-size"  // rewrite a listing's max-keys to Fault.Keys (re-signed)
	LoopToken Kind = "loop-token" // a listing's next continuation token is the one the request sent: the pages loop
	ClockSkew Kind = "clock-skew" // shift the reply's Date header by Fault.Skew
)

// Kinds lists every fault kind, for tallies.
var Kinds = []Kind{Status, Reset, Hang, DropPut, Truncate, FlipBit, ListDrop, ListEmpty, PageSize, LoopToken, ClockSkew}

// Fault is one injection and its parameters.
type Fault struct {
	Kind   Kind
	Status int           // Status: the HTTP status (500 when 0)
	For    time.Duration // Hang: how long (until the client gives up when 0)
	Drop   Match         // ListDrop: entries to drop
	Recent time.Duration // ListDrop: also drop keys PUT through this proxy this recently
	Keys   int           // PageSize: the max-keys to ask for (1 when 0)
	Skew   time.Duration // ClockSkew: server time minus true time
}

// terminal faults answer the request themselves; at most one applies.
func (f Fault) terminal() bool {
	switch f.Kind {
	case Status, Reset, Hang, DropPut:
		return true
	}
	return false
}

// Match matches an object key or a listing's prefix.
type Match func(string) bool

// Prefix matches names starting with s.
func Prefix(s string) Match { return func(n string) bool { return strings.HasPrefix(n, s) } }

// Contains matches names holding s.
func Contains(s string) Match { return func(n string) bool { return strings.Contains(n, s) } }

// Rule injects Fault into requests it matches: all of Ops (any when nil),
// Key (any when nil; a listing's prefix for listings) and If (when set).
// Of the matching requests, the first Skip pass untouched; after that each
// one is hit with chance Prob (always when 0), at most Count times (no
// limit when 0).
type Rule struct {
	Ops   []Op
	Key   Match
	If    func(Request) bool
	Fault Fault
	Skip  int
	Count int
	Prob  float64
}

func (r *Rule) matches(req Request) bool {
	if len(r.Ops) > 0 {
		ok := false
		for _, op := range r.Ops {
			ok = ok || op == req.Op
		}
		if !ok {
			return false
		}
	}
	if r.Key != nil && !r.Key(req.Name()) {
		return false
	}
	return r.If == nil || r.If(req)
}

type ruleState struct {
	Rule
	seen, fired int
}

// Event is one injected fault.
type Event struct {
	Kind Kind
	Req  Request
}

func (e Event) String() string {
	return fmt.Sprintf("%s on %s %s", e.Kind, e.Req.Op, e.Req.Name())
}

// Config sets up a Proxy.
type Config struct {
	Target    string // MinIO's host:port
	AccessKey string // keys for re-signing a rewritten request
	SecretKey string
	Region    string // "us-east-1" when empty
	Seed      uint64 // the PRNG behind Rule.Prob and the choice of bytes to damage
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	// Host is the proxy's host:port; give clients s3://Host/... URLs.
	Host string

	cfg    Config
	srv    *httptest.Server
	rp     *httputil.ReverseProxy
	mu     sync.Mutex
	rng    *rand.Rand
	rules  []*ruleState
	tally  map[Kind]int
	events []Event
	puts   map[string]time.Time // bucket/key -> when a PUT of it through the proxy succeeded
}

type ctxKey struct{}

// New starts a proxy in front of cfg.Target with no rules; Close stops it.
func New(cfg Config) *Proxy {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	p := &Proxy{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5e3fa017)), tally: map[Kind]int{}, puts: map[string]time.Time{}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true // pass bodies as MinIO sent them
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// Out.Host stays the Host the client signed; only the dial
			// target changes.
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = cfg.Target
		},
		Transport:     tr,
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			if m, ok := resp.Request.Context().Value(ctxKey{}).(*modifiers); ok {
				return p.modify(resp, m)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// MinIO unreachable or the client went away: as a gateway would.
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.srv = httptest.NewServer(p)
	p.Host = strings.TrimPrefix(p.srv.URL, "http://")
	return p
}

// Target is the MinIO server's host:port behind the proxy.
func (p *Proxy) Target() string { return p.cfg.Target }

// AccessKey and SecretKey are the keys the proxy re-signs with.
func (p *Proxy) AccessKey() string { return p.cfg.AccessKey }
func (p *Proxy) SecretKey() string { return p.cfg.SecretKey }

// Close stops the proxy and drops its connections.
func (p *Proxy) Close() {
	p.srv.CloseClientConnections()
	p.srv.Close()
}

// SetRules replaces the script; counters of the old rules are dropped,
// the tally is kept.
func (p *Proxy) SetRules(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = p.rules[:0]
	for _, r := range rules {
		p.rules = append(p.rules, &ruleState{Rule: r})
	}
}

// Tally returns how many faults of each kind were injected so far.
func (p *Proxy) Tally() map[Kind]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Kind]int, len(p.tally))
	for k, n := range p.tally {
		out[k] = n
	}
	return out
}

// Events returns every injected fault so far, in order.
func (p *Proxy) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event(nil), p.events...)
}

// FormatTally writes a tally as "kind=n ..." in a fixed order.
func FormatTally(t map[Kind]int) string {
	var parts []string
	for _, k := range Kinds {
		if t[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, t[k]))
		}
	}
	var extra []string
	for k, n := range t {
		if !knownKind(k) && n > 0 {
			extra = append(extra, fmt.Sprintf("%s=%d", k, n))
		}
	}
	sort.Strings(extra)
	parts = append(parts, extra...)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func knownKind(k Kind) bool {
	for _, kk := range Kinds {
		if kk == k {
			return true
		}
	}
	return false
}

// pick runs the script over req: the faults that fire, at most one
// terminal one (the first), recorded in the tally.
func (p *Proxy) pick(req Request) []Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Fault
	terminal := false
	for _, r := range p.rules {
		if !r.matches(req) {
			continue
		}
		r.seen++
		if r.seen <= r.Skip || (r.Count > 0 && r.fired >= r.Count) {
			continue
		}
		if r.Fault.terminal() && terminal {
			continue
		}
		if r.Prob > 0 && p.rng.Float64() >= r.Prob {
			continue
		}
		r.fired++
		terminal = terminal || r.Fault.terminal()
		out = append(out, r.Fault)
	}
	// A terminal fault goes first: the others only apply to what MinIO
	// answers, and a terminal one means MinIO is not asked.
	sort.SliceStable(out, func(i, j int) bool { return out[i].terminal() && !out[j].terminal() })
	if len(out) > 0 && out[0].terminal() {
		out = out[:1]
	}
	for _, f := range out {
		p.tally[f.Kind]++
		p.events = append(p.events, Event{Kind: f.Kind, Req: req})
	}
	return out
}

func (p *Proxy) intn(n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.IntN(n)
}

// modifiers are the response-side faults of one forwarded request.
type modifiers struct {
	req    Request
	faults []Fault
	token  string // the continuation-token the request sent
}

// ServeHTTP classifies the request, applies the script and forwards.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := Classify(r)
	faults := p.pick(req)
	if len(faults) > 0 && faults[0].terminal() {
		p.answer(w, r, req, faults[0])
		return
	}
	m := &modifiers{req: req, token: r.URL.Query().Get("continuation-token")}
	for _, f := range faults {
		if f.Kind == PageSize {
			if err := p.rewriteMaxKeys(r, f.Keys); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			continue
		}
		m.faults = append(m.faults, f)
	}
	ctx := context.WithValue(r.Context(), ctxKey{}, m)
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

// answer applies a terminal fault.
func (p *Proxy) answer(w http.ResponseWriter, r *http.Request, req Request, f Fault) {
	switch f.Kind {
	case Status:
		_, _ = io.Copy(io.Discard, r.Body)
		status := f.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		code := "InternalError"
		switch status {
		case http.StatusServiceUnavailable:
			code = "ServiceUnavailable"
		case http.StatusTooManyRequests:
			code = "SlowDown"
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
				`<Error><Code>%s</Code><Message>s3fault: injected %d</Message><Resource>/%s/%s</Resource><RequestId>s3fault</RequestId></Error>`,
				code, status, req.Bucket, req.Key)
		}
	case Reset:
		reset(w)
	case Hang:
		if f.For > 0 {
			t := time.NewTimer(f.For)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
			}
		} else {
			<-r.Context().Done()
		}
		reset(w)
	case DropPut:
		h := md5.New()
		if _, err := io.Copy(h, r.Body); err != nil {
			reset(w)
			return
		}
		// Echo the checksums the client declared, as S3 does for a stored
		// object: the client has no way to tell.
		for k, v := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") {
				w.Header()[k] = v
			}
		}
		w.Header().Set("ETag", `"`+hex.EncodeToString(h.Sum(nil))+`"`)
		w.WriteHeader(http.StatusOK)
	}
}

// reset closes the client's connection with a TCP RST.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("s3fault: connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}

// rewriteMaxKeys changes a listing's page size and signs the request
// again: max-keys is part of the signed query.
func (p *Proxy) rewriteMaxKeys(r *http.Request, keys int) error {
	if keys <= 0 {
		keys = 1
	}
	q := r.URL.Query()
	q.Set("max-keys", strconv.Itoa(keys))
	r.URL.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	r.RequestURI = ""
	r.Header.Del("Authorization")
	signed := signer.SignV4(*r, p.cfg.AccessKey, p.cfg.SecretKey, "", p.cfg.Region)
	r.Header = signed.Header
	return nil
}

var (
	contentsRE = regexp.MustCompile(`(?s)<Contents>.*?</Contents>`)
	keyRE      = regexp.MustCompile(`(?s)<Key>(.*?)</Key>`)
	prefixesRE = regexp.MustCompile(`(?s)<CommonPrefixes>.*?</CommonPrefixes>`)
	truncRE    = regexp.MustCompile(`<IsTruncated>true</IsTruncated>`)
	nextTokRE  = regexp.MustCompile(`(?s)<NextContinuationToken>(.*?)</NextContinuationToken>`)
	keyCountRE = regexp.MustCompile(`<KeyCount>\d+</KeyCount>`)
	xmlUnesc   = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&quot;", `"`, "&apos;", "'", "&#34;", `"`, "&#39;", "'")
	xmlEsc     = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
)

// modify applies response-side faults, and records successful PUTs for
// ListDrop's Fault.Recent.
func (p *Proxy) modify(resp *http.Response, m *modifiers) error {
	if resp.StatusCode/100 == 2 && (m.req.Op == OpPut || m.req.Op == OpCompleteUpload) {
		p.mu.Lock()
		p.puts[m.req.Bucket+"/"+m.req.Key] = time.Now()
		p.mu.Unlock()
	}
	for _, f := range m.faults {
		switch f.Kind {
		case ClockSkew:
			resp.Header.Set("Date", time.Now().Add(f.Skew).UTC().Format(http.TimeFormat))
		case Truncate:
			if resp.StatusCode/100 != 2 || resp.ContentLength <= 0 {
				continue
			}
			cut := int64(p.intn(int(resp.ContentLength)))
			resp.Header.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
			resp.Body = struct {
				io.Reader
				io.Closer
			}{io.LimitReader(resp.Body, cut), resp.Body}
		case FlipBit:
			if resp.StatusCode/100 != 2 || resp.ContentLength <= 0 {
				continue
			}
			at := int64(p.intn(int(resp.ContentLength)))
			bit := byte(1) << p.intn(8)
			resp.Body = &flipper{rc: resp.Body, at: at, bit: bit}
		case ListDrop, ListEmpty, LoopToken:
			if resp.StatusCode/100 != 2 || m.req.Op != OpList {
				continue
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return fmt.Errorf("s3fault: read listing: %w", err)
			}
			body = p.rewriteListing(body, m, f)
			resp.Body = io.NopCloser(bytes.NewReader(body))
			resp.ContentLength = int64(len(body))
			resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		}
	}
	return nil
}

func (p *Proxy) rewriteListing(body []byte, m *modifiers, f Fault) []byte {
	switch f.Kind {
	case ListEmpty:
		body = contentsRE.ReplaceAll(body, nil)
		body = prefixesRE.ReplaceAll(body, nil)
		body = truncRE.ReplaceAll(body, []byte("<IsTruncated>false</IsTruncated>"))
		body = nextTokRE.ReplaceAll(body, nil)
		body = keyCountRE.ReplaceAll(body, []byte("<KeyCount>0</KeyCount>"))
	case ListDrop:
		now := time.Now()
		dropped := 0
		body = contentsRE.ReplaceAllFunc(body, func(c []byte) []byte {
			km := keyRE.FindSubmatch(c)
			if km == nil {
				return c
			}
			key := xmlUnesc.Replace(string(km[1]))
			drop := f.Drop != nil && f.Drop(key)
			if f.Recent > 0 {
				p.mu.Lock()
				at, ok := p.puts[m.req.Bucket+"/"+key]
				p.mu.Unlock()
				drop = drop || (ok && now.Sub(at) <= f.Recent)
			}
			if drop {
				dropped++
				return nil
			}
			return c
		})
		if dropped > 0 {
			body = keyCountRE.ReplaceAllFunc(body, func(c []byte) []byte {
				n, _ := strconv.Atoi(string(c[len("<KeyCount>") : len(c)-len("</KeyCount>")]))
				return []byte(fmt.Sprintf("<KeyCount>%d</KeyCount>", max(0, n-dropped)))
			})
		}
	case LoopToken:
		if m.token == "" {
			return body // the first page: the loop starts on the second
		}
		body = nextTokRE.ReplaceAll(body, []byte("<NextContinuationToken>"+xmlEsc.Replace(m.token)+"</NextContinuationToken>"))
	}
	return body
}

// flipper flips one bit at offset at of the stream.
type flipper struct {
	rc  io.ReadCloser
	at  int64
	bit byte
	n   int64
}

func (f *flipper) Read(b []byte) (int, error) {
	n, err := f.rc.Read(b)
	if f.at >= f.n && f.at < f.n+int64(n) {
		b[f.at-f.n] ^= f.bit
	}
	f.n += int64(n)
	return n, err
}

func (f *flipper) Close() error { return f.rc.Close() }
