package scheduler

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// HTTPConfig is what the daemon's HTTP endpoint serves.
type HTTPConfig struct {
	// Token, when not empty, is required of every request as
	// "Authorization: Bearer TOKEN".
	Token   string
	Metrics *Metrics
	// Status returns the JSON of 'tapeless status --json' for
	// /api/status, encoded as the command encodes it, and its warnings
	// for /healthz.
	Status func(ctx context.Context) ([]byte, []Warning, error)
	// Page, when set, adds the status page's points, runs and throttle
	// schedule to the status report it shows at /.
	Page func(ctx context.Context) (PageExtra, error)
	Log  *slog.Logger
}

// ErrListenNotLoopback refuses an address other hosts can reach when no
// token protects it.
var ErrListenNotLoopback = errors.New("not a loopback address")

// CheckListen refuses addr unless it is a loopback address (127.0.0.0/8,
// ::1, localhost) or a token protects it: the status names the store,
// the vault and the jobs' errors. An empty host (":9781") listens on
// every interface and needs a token too.
func CheckListen(addr string, token bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w; expected HOST:PORT such as 127.0.0.1:9781", addr, err)
	}
	if token {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("listen address %q: %w; bind to 127.0.0.1 or give --listen-token-file", addr, ErrListenNotLoopback)
}

// Handler serves /metrics, /healthz, /api/status and the status page at /.
func (c HTTPConfig) Handler() http.Handler {
	mux := http.NewServeMux()
	if c.Metrics != nil {
		mux.Handle("GET /metrics", c.Metrics.Handler())
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, ws, err := c.Status(r.Context())
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "status unknown: %s\n", oneLine(err.Error()))
			return
		}
		if len(ws) == 0 {
			fmt.Fprintln(w, "ok")
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, wn := range ws {
			fmt.Fprintf(w, "%s: %s\n", wn.Code, oneLine(wn.Message))
		}
	})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		st, _, err := c.Status(r.Context())
		if err != nil {
			http.Error(w, oneLine(err.Error()), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(st)
	})
	mux.HandleFunc("GET /{$}", c.servePage)
	if c.Token == "" {
		return mux
	}
	want := []byte("Bearer " + c.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tapeless"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// ServeHTTP listens on addr and serves c until ctx is cancelled. It
// returns once listening (an address in use is told at start); serving
// errors are logged.
func ServeHTTP(ctx context.Context, addr string, c HTTPConfig) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	lg := c.Log
	if lg == nil {
		lg = slog.Default()
	}
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			lg.Error("HTTP server stopped", "address", ln.Addr().String(), "error", err.Error())
		}
	}()
	return ln.Addr(), nil
}

// TrimToken reads a token file's content: surrounding white space is not
// part of it.
func TrimToken(b []byte) (string, error) {
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", errors.New("the token file is empty")
	}
	return t, nil
}
