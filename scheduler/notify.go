package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// NotifyConfig is whom the daemon tells: a webhook URL (a JSON POST per
// event) and commands with arguments run on a failure and on a recovery.
// The CLI fills it from the configuration file's notify section.
type NotifyConfig struct {
	Webhook    string
	OnFailure  []string
	OnRecovery []string
}

// Notification events.
const (
	EventFailure  = "failure"  // a run failed
	EventRecovery = "recovery" // the first successful run after a failed one
)

// Notification is what a webhook receives as JSON and a command hook on
// its standard input (and, flattened, in TAPELESS_* variables).
type Notification struct {
	Event  string    `json:"event"` // EventFailure or EventRecovery
	Job    string    `json:"job"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Result string    `json:"result"`
	Error  string    `json:"error,omitempty"`
	Bytes  int64     `json:"bytes,omitempty"`
	Host   string    `json:"host"`   // this machine's host name
	Server string    `json:"server"` // this server's name in the vault
	Store  string    `json:"store"`  // the store folder
}

// Notifier tells the operator when a daemon job fails and when it
// succeeds again. Failing to notify is logged, never returned: a broken
// webhook must not stop backups.
type Notifier struct {
	cfg    NotifyConfig
	host   string
	server string
	store  string
	log    *slog.Logger
	client *http.Client

	// attempts is how often a webhook POST is tried; backoff the wait
	// before the second try, doubled for each further one; tryTimeout
	// bounds one try and cmdTimeout a command hook.
	attempts   int
	backoff    time.Duration
	tryTimeout time.Duration
	cmdTimeout time.Duration

	mu sync.Mutex
	// failed remembers per job whether its last decided run failed, so a
	// skipped run between a failure and a success hides no recovery.
	failed map[string]bool
}

// Notifier defaults: four tries 2 s, 4 s, 8 s apart with 10 s each is
// under a minute in the worst case; a hook gets 30 s.
const (
	notifyAttempts   = 4
	notifyBackoff    = 2 * time.Second
	notifyTryTimeout = 10 * time.Second
	notifyCmdTimeout = 30 * time.Second
)

// NewNotifier returns a notifier for cfg; server and store name this
// server in the messages. log nil means slog.Default().
func NewNotifier(cfg NotifyConfig, server, store string, log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.Default()
	}
	host, _ := os.Hostname()
	return &Notifier{
		cfg: cfg, host: host, server: server, store: store, log: log,
		client:   &http.Client{},
		attempts: notifyAttempts, backoff: notifyBackoff,
		tryTimeout: notifyTryTimeout, cmdTimeout: notifyCmdTimeout,
		failed: map[string]bool{},
	}
}

// Enabled reports whether any notification is configured.
func (n *Notifier) Enabled() bool {
	return n != nil && (n.cfg.Webhook != "" || len(n.cfg.OnFailure) > 0 || len(n.cfg.OnRecovery) > 0)
}

// Observe is the daemon's hook after each run: prev is the job's run
// before cur (zero when none). A failed cur sends a failure event; the
// first successful run after a failed one sends a recovery event; a
// skipped run decides nothing. It returns when the webhook and the
// command are done, within about a minute, or when ctx ends.
func (n *Notifier) Observe(ctx context.Context, prev, cur RunRecord) {
	if n == nil || cur.Result == "skipped" {
		return
	}
	n.mu.Lock()
	wasFailed, known := n.failed[cur.Job]
	if !known && prev.Job != "" && prev.Result != "skipped" {
		wasFailed = !prev.OK()
	}
	n.failed[cur.Job] = !cur.OK()
	n.mu.Unlock()

	var event string
	var command []string
	switch {
	case !cur.OK():
		event, command = EventFailure, n.cfg.OnFailure
	case wasFailed:
		event, command = EventRecovery, n.cfg.OnRecovery
	default:
		return
	}
	msg := Notification{Event: event, Job: cur.Job, Start: cur.Start, End: cur.End, Result: cur.Result,
		Error: cur.Error, Bytes: cur.Bytes, Host: n.host, Server: n.server, Store: n.store}
	var wg sync.WaitGroup
	if n.cfg.Webhook != "" {
		wg.Go(func() {
			if err := n.post(ctx, msg); err != nil {
				n.log.Error("notify: webhook failed", "event", event, "job", cur.Job, "err", err)
			} else {
				n.log.Info("notify: webhook sent", "event", event, "job", cur.Job)
			}
		})
	}
	if len(command) > 0 {
		wg.Go(func() {
			if err := n.runHook(ctx, command, msg); err != nil {
				n.log.Error("notify: command hook failed", "event", event, "job", cur.Job, "command", command[0], "err", err)
			} else {
				n.log.Info("notify: command hook ran", "event", event, "job", cur.Job, "command", command[0])
			}
		})
	}
	wg.Wait()
}

// permanentError is a webhook answer that a retry cannot change (a 4xx
// other than 408 and 429).
type permanentError struct{ error }

// post sends msg to the webhook, retrying network errors, timeouts and
// 5xx/408/429 answers with doubling waits, until the tries run out or ctx
// ends.
func (n *Notifier) post(ctx context.Context, msg Notification) error {
	body, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	wait := n.backoff
	var last error
	for try := 1; try <= n.attempts; try++ {
		if try > 1 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%w (after %d tries, last: %v)", ctx.Err(), try-1, last)
			case <-t.C:
			}
			wait *= 2
		}
		last = n.postOnce(ctx, body)
		if last == nil {
			return nil
		}
		var pe permanentError
		if errors.As(last, &pe) {
			return last
		}
		n.log.Warn("notify: webhook try failed", "try", try, "of", n.attempts, "err", last)
	}
	return fmt.Errorf("webhook: %d tries: %w", n.attempts, last)
}

func (n *Notifier) postOnce(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, n.tryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.Webhook, bytes.NewReader(body))
	if err != nil {
		return permanentError{fmt.Errorf("webhook: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tapeless-notify")
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("webhook answered %s: %s", resp.Status, strings.TrimSpace(string(snippet)))
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return permanentError{err}
	}
	return err
}

// HookEnv is the environment a command hook sees besides the daemon's
// own: the notification's fields as TAPELESS_* variables.
func HookEnv(msg Notification) []string {
	return []string{
		"TAPELESS_EVENT=" + msg.Event,
		"TAPELESS_JOB=" + msg.Job,
		"TAPELESS_RESULT=" + msg.Result,
		"TAPELESS_ERROR=" + msg.Error,
		"TAPELESS_START=" + msg.Start.UTC().Format(time.RFC3339),
		"TAPELESS_END=" + msg.End.UTC().Format(time.RFC3339),
		"TAPELESS_BYTES=" + fmt.Sprint(msg.Bytes),
		"TAPELESS_HOST=" + msg.Host,
		"TAPELESS_SERVER=" + msg.Server,
		"TAPELESS_STORE=" + msg.Store,
	}
}

// runHook runs command with the notification in its environment and as
// JSON on its standard input, killed after cmdTimeout.
func (n *Notifier) runHook(ctx context.Context, command []string, msg Notification) error {
	body, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	cmd.Env = append(os.Environ(), HookEnv(msg)...)
	cmd.Stdin = bytes.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A child the hook left behind may hold the output open; do not wait
	// for it past the kill.
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("%w (%v)", err, ctx.Err())
	}
	if err != nil {
		o := strings.TrimSpace(out.String())
		if len(o) > 500 {
			o = o[:500] + "…"
		}
		if o != "" {
			return fmt.Errorf("%s: %w: %s", command[0], err, o)
		}
		return fmt.Errorf("%s: %w", command[0], err)
	}
	return nil
}
