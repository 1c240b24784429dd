// Package sandbox is the embedded payment provider: it behaves like a real
// one, settling charges asynchronously by calling the payments service's
// webhook (POST /payment/status) with a signed notification, so that the
// whole payment path is exercised without an account anywhere.
//
// Tokens: tok_success succeeds shortly, tok_delayed succeeds after a few
// seconds, tok_decline fails with a reason; any other token is declined on
// the spot as invalid.
//
// Like a real provider, it does not forget a charge it accepted when the
// process that asked dies: accepted charges are kept in a ledger file
// (appended and synced before Charge returns) until their notification was
// acknowledged, and a restarted sandbox sends what is still owed.
package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/infra/payment/webhook"
)

var _ commands.Gateway = (*Gateway)(nil)

// Sandbox tokens.
const (
	TokenSuccess = "tok_success"
	TokenDelayed = "tok_delayed"
	TokenDecline = "tok_decline"
)

// webhookConns bounds the connections to the webhook. It caps the
// notifications in flight, so it also caps settlements per second at
// webhookConns / webhook latency: 64 held confirmations near 2,300/s.
const webhookConns = 256

// Gateway is the sandbox provider.
type Gateway struct {
	url    string
	secret []byte
	client *http.Client
	log    *slog.Logger

	// Settle and Delayed are how long tok_success and tok_delayed take.
	Settle, Delayed time.Duration
	// GiveUpAfter bounds how long a notification is retried.
	GiveUpAfter time.Duration

	mu      sync.Mutex
	charged map[uuid.UUID]bool
	ledger  *ledger
	wg      sync.WaitGroup
	ctx     context.Context
	stop    context.CancelFunc
}

// entry is one line of the ledger: a notification owed (Due set) or sent
// (Sent true).
type entry struct {
	Notification notification `json:"n"`
	Due          time.Time    `json:"due,omitempty"`
	Sent         bool         `json:"sent,omitempty"`
}

// Open returns a sandbox that notifies webhookURL, signing with secret, and
// keeps its ledger at ledgerPath. Notifications owed from before a restart
// are sent again (the webhook is idempotent).
func Open(ledgerPath, webhookURL string, secret []byte, log *slog.Logger) (*Gateway, error) {
	ctx, stop := context.WithCancel(context.Background())
	g := &Gateway{
		url: webhookURL, secret: secret, log: log,
		// At most webhookConns notifications are in flight, each on a
		// kept connection: a burst of settlements waits for a connection
		// rather than dialling (and later closing) hundreds of new ones.
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			MaxIdleConns: webhookConns, MaxIdleConnsPerHost: webhookConns, MaxConnsPerHost: webhookConns,
			IdleConnTimeout: 90 * time.Second,
		}},
		Settle: 200 * time.Millisecond, Delayed: 3 * time.Second, GiveUpAfter: 2 * time.Minute,
		charged: map[uuid.UUID]bool{}, ctx: ctx, stop: stop,
	}
	owed, err := readLedger(ledgerPath)
	if err != nil {
		stop()
		return nil, err
	}
	f, err := os.OpenFile(ledgerPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		stop()
		return nil, fmt.Errorf("sandbox: open ledger: %w", err)
	}
	g.ledger = newLedger(f)
	for id, e := range owed {
		g.charged[id] = true
		g.wg.Add(1)
		go g.notify(e.Notification, time.Until(e.Due))
	}
	if len(owed) > 0 {
		log.Info("sandbox gateway: resending notifications owed from before a restart", "count", len(owed))
	}
	return g, nil
}

func readLedger(path string) (map[uuid.UUID]entry, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox: read ledger: %w", err)
	}
	defer f.Close()
	owed := map[uuid.UUID]entry{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e entry
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue // a line torn by a crash was never acknowledged
		}
		id, err := uuid.Parse(e.Notification.PaymentID)
		if err != nil {
			continue
		}
		if e.Sent {
			delete(owed, id)
		} else {
			owed[id] = e
		}
	}
	return owed, sc.Err()
}

func (g *Gateway) write(e entry, sync bool) error {
	line, _ := json.Marshal(e)
	return g.ledger.append(append(line, '\n'), sync)
}

// Close stops sending. What is still owed stays in the ledger and is sent
// by the next Open.
func (g *Gateway) Close() {
	g.stop()
	g.wg.Wait()
	g.ledger.f.Close()
}

// notification is the provider's webhook body (API.md, POST /payment/status).
type notification struct {
	PaymentID     string `json:"payment_id"`
	Status        string `json:"status"`
	GatewayRef    string `json:"gateway_ref"`
	FailureReason string `json:"failure_reason,omitempty"`
}

// Charge accepts a charge for asynchronous settlement. Charging the same
// payment again schedules nothing new.
func (g *Gateway) Charge(_ context.Context, c commands.Charge) (commands.ChargeResult, error) {
	ref := "sb_ch_" + c.PaymentID.String()
	n := notification{PaymentID: c.PaymentID.String(), GatewayRef: ref}
	var after time.Duration
	switch c.Token {
	case TokenSuccess:
		n.Status, after = "succeeded", g.Settle
	case TokenDelayed:
		n.Status, after = "succeeded", g.Delayed
	case TokenDecline:
		n.Status, n.FailureReason, after = "failed", "card_declined", g.Settle
	default:
		return commands.ChargeResult{Declined: true, Reason: "invalid_token", GatewayRef: ref}, nil
	}
	g.mu.Lock()
	seen := g.charged[c.PaymentID]
	g.charged[c.PaymentID] = true
	g.mu.Unlock()
	if !seen {
		// Accepted means remembered: the charge is on disk before we say so.
		if err := g.write(entry{Notification: n, Due: time.Now().Add(after)}, true); err != nil {
			g.mu.Lock()
			delete(g.charged, c.PaymentID)
			g.mu.Unlock()
			return commands.ChargeResult{}, fmt.Errorf("sandbox: record charge: %w", err)
		}
		g.wg.Add(1)
		go g.notify(n, after)
	}
	return commands.ChargeResult{GatewayRef: ref}, nil
}

// Refund gives the money back at once.
func (g *Gateway) Refund(_ context.Context, r commands.RefundOrder) (string, error) {
	return "sb_rf_" + r.PaymentID.String(), nil
}

func (g *Gateway) notify(n notification, after time.Duration) {
	defer g.wg.Done()
	body, _ := json.Marshal(n)
	select {
	case <-time.After(after):
	case <-g.ctx.Done():
		return
	}
	deadline := time.Now().Add(g.GiveUpAfter)
	backoff := 100 * time.Millisecond
	for {
		err := g.post(body)
		var permanent *permanentError
		if err == nil || errors.As(err, &permanent) {
			if err != nil {
				g.log.Error("sandbox gateway: notification refused for good", "payment_id", n.PaymentID, "err", err)
			}
			// Losing this line only means sending again after a restart.
			if werr := g.write(entry{Notification: n, Sent: true}, false); werr != nil {
				g.log.Warn("sandbox gateway: ledger", "err", werr)
			}
			return
		}
		if time.Now().After(deadline) {
			g.log.Error("sandbox gateway: giving up on a notification", "payment_id", n.PaymentID, "err", err)
			return
		}
		g.log.Warn("sandbox gateway: notification failed, retrying", "payment_id", n.PaymentID, "err", err)
		select {
		case <-time.After(backoff):
		case <-g.ctx.Done():
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (g *Gateway) post(body []byte) error {
	req, err := http.NewRequestWithContext(g.ctx, http.MethodPost, g.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	sig, ts := webhook.Sign(g.secret, time.Now(), body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, sig)
	req.Header.Set(webhook.TimestampHeader, ts)
	resp, err := g.client.Do(req)
	if err != nil {
		return err
	}
	// Read to the end, or the connection is closed instead of kept for
	// the next notification (a new TCP connection per notification was
	// a tenth of the server's CPU while paying).
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusUnauthorized:
		// The payments service understood and refused (unknown payment, a
		// verdict contradicting an earlier one): retrying cannot help. A
		// 401 may be a secret being rotated, so it is retried.
		return &permanentError{status: resp.Status}
	default:
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
}

type permanentError struct{ status string }

func (e *permanentError) Error() string { return "webhook answered " + e.status }

// ledger is the sandbox's append-only file, with group commit: a line that
// must be durable waits for an fsync that started after it was written,
// and one fsync covers every line written before it started. Under load,
// charges share fsyncs instead of each paying for its own.
type ledger struct {
	f *os.File

	mu      sync.Mutex
	cond    *sync.Cond
	written uint64 // lines written so far
	synced  uint64 // lines covered by a successful fsync
	syncing bool   // an fsync is running
	// syncErr is the error of a failed fsync. After one, what was
	// written is not known to be on disk (Linux may drop the pages it
	// failed to write and report success next time), so no later line is
	// acknowledged as durable either: charges fail until a restart.
	syncErr error
}

func newLedger(f *os.File) *ledger {
	l := &ledger{f: f}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// append writes line and, with sync, returns once it is on disk.
func (l *ledger) append(line []byte, sync bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(line); err != nil {
		return err
	}
	l.written++
	mine := l.written
	if !sync {
		return nil
	}
	for {
		if l.syncErr != nil {
			return fmt.Errorf("sandbox: ledger sync failed earlier: %w", l.syncErr)
		}
		if l.synced >= mine {
			return nil
		}
		if l.syncing {
			l.cond.Wait()
			continue
		}
		l.syncing = true
		upTo := l.written
		l.mu.Unlock()
		err := l.f.Sync()
		l.mu.Lock()
		l.syncing = false
		if err != nil {
			l.syncErr = err
		} else {
			l.synced = upTo
		}
		l.cond.Broadcast()
	}
}
