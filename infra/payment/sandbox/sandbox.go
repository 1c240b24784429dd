// Package sandbox is the embedded payment provider: it behaves like a real
// one, settling charges asynchronously by calling the payments service's
// webhook (POST /payment/status) with a signed notification, so that the
// whole payment path is exercised without an account anywhere.
//
// Tokens: tok_success succeeds shortly, tok_delayed succeeds after a few
// seconds, tok_decline fails with a reason; any other token is declined on
// the spot as invalid.
package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
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
	wg      sync.WaitGroup
	ctx     context.Context
	stop    context.CancelFunc
}

// New returns a sandbox that notifies webhookURL, signing with secret.
func New(webhookURL string, secret []byte, log *slog.Logger) *Gateway {
	ctx, stop := context.WithCancel(context.Background())
	return &Gateway{
		url: webhookURL, secret: secret, log: log,
		client: &http.Client{Timeout: 5 * time.Second},
		Settle: 200 * time.Millisecond, Delayed: 3 * time.Second, GiveUpAfter: 2 * time.Minute,
		charged: map[uuid.UUID]bool{}, ctx: ctx, stop: stop,
	}
}

// Close stops pending notifications. A real provider would still send
// them; the payments service reconciles on start-up.
func (g *Gateway) Close() {
	g.stop()
	g.wg.Wait()
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
		if err == nil {
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
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
