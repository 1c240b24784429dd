package sandbox

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/infra/payment/webhook"
)

var secret = []byte("sandbox-test-secret")

// provider is the webhook receiver: it checks signatures like the payments
// service does and records what it was told.
type provider struct {
	mu       sync.Mutex
	received map[string][]notification
	answer   int
	got      chan notification
}

func newProvider(t *testing.T) (*provider, *httptest.Server) {
	p := &provider{received: map[string][]notification{}, answer: 200, got: make(chan notification, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), r.Header.Get(webhook.TimestampHeader), body, time.Now()); err != nil {
			t.Errorf("sandbox sent a notification that does not verify: %v", err)
		}
		var n notification
		_ = json.Unmarshal(body, &n)
		p.mu.Lock()
		p.received[n.PaymentID] = append(p.received[n.PaymentID], n)
		status := p.answer
		p.mu.Unlock()
		w.WriteHeader(status)
		p.got <- n
	}))
	t.Cleanup(srv.Close)
	return p, srv
}

func (p *provider) next(t *testing.T) notification {
	t.Helper()
	select {
	case n := <-p.got:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no notification arrived")
		return notification{}
	}
}

func open(t *testing.T, ledger, url string) *Gateway {
	t.Helper()
	g, err := Open(ledger, url, secret, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	g.Settle, g.Delayed = 10*time.Millisecond, 50*time.Millisecond
	return g
}

func TestTokensSettleAsDocumented(t *testing.T) {
	p, srv := newProvider(t)
	g := open(t, filepath.Join(t.TempDir(), "ledger"), srv.URL)
	defer g.Close()
	cases := []struct {
		token, status, reason string
	}{
		{TokenSuccess, "succeeded", ""},
		{TokenDelayed, "succeeded", ""},
		{TokenDecline, "failed", "card_declined"},
	}
	for _, tc := range cases {
		t.Run(tc.token, func(t *testing.T) {
			id := uuid.New()
			res, err := g.Charge(context.Background(), commands.Charge{PaymentID: id, Amount: 100, Currency: "IDR", Token: tc.token})
			if err != nil || res.Declined {
				t.Fatalf("charge = %+v, %v", res, err)
			}
			n := p.next(t)
			if n.PaymentID != id.String() || n.Status != tc.status || n.FailureReason != tc.reason || n.GatewayRef == "" {
				t.Fatalf("notification = %+v", n)
			}
		})
	}
	res, err := g.Charge(context.Background(), commands.Charge{PaymentID: uuid.New(), Token: "tok_bogus"})
	if err != nil || !res.Declined || res.Reason != "invalid_token" {
		t.Fatalf("unknown token = %+v, %v; want declined at once", res, err)
	}
}

func TestChargingTwiceNotifiesOnce(t *testing.T) {
	p, srv := newProvider(t)
	g := open(t, filepath.Join(t.TempDir(), "ledger"), srv.URL)
	defer g.Close()
	id := uuid.New()
	for range 3 {
		if _, err := g.Charge(context.Background(), commands.Charge{PaymentID: id, Token: TokenSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	p.next(t)
	time.Sleep(100 * time.Millisecond)
	p.mu.Lock()
	defer p.mu.Unlock()
	if got := len(p.received[id.String()]); got != 1 {
		t.Fatalf("%d notifications for one payment, want 1", got)
	}
}

func TestOwedNotificationsSurviveARestart(t *testing.T) {
	p, srv := newProvider(t)
	ledger := filepath.Join(t.TempDir(), "ledger")
	g := open(t, ledger, srv.URL)
	g.Delayed = time.Hour // it will not be sent by this instance
	id := uuid.New()
	if _, err := g.Charge(context.Background(), commands.Charge{PaymentID: id, Token: TokenDelayed}); err != nil {
		t.Fatal(err)
	}
	g.Close()

	// The ledger still owes it. Make it overdue, as if the process had been
	// down past its settle time, and restart: it is sent at once.
	owed, err := readLedger(ledger)
	if err != nil || len(owed) != 1 {
		t.Fatalf("ledger owes %d notifications, %v; want 1", len(owed), err)
	}
	e := owed[id]
	e.Due = time.Now().Add(-time.Second)
	g2 := open(t, ledger, srv.URL)
	if err := g2.write(e, true); err != nil {
		t.Fatal(err)
	}
	g2.Close()

	g3 := open(t, ledger, srv.URL)
	defer g3.Close()
	if n := p.next(t); n.PaymentID != id.String() || n.Status != "succeeded" {
		t.Fatalf("after restart = %+v", n)
	}
	eventuallyOwed(t, ledger, 0)
}

func TestRefusedNotificationsAreNotRetriedForever(t *testing.T) {
	p, srv := newProvider(t)
	p.answer = http.StatusNotFound
	ledger := filepath.Join(t.TempDir(), "ledger")
	g := open(t, ledger, srv.URL)
	if _, err := g.Charge(context.Background(), commands.Charge{PaymentID: uuid.New(), Token: TokenSuccess}); err != nil {
		t.Fatal(err)
	}
	p.next(t)
	eventuallyOwed(t, ledger, 0)
	g.Close()
}

func eventuallyOwed(t *testing.T, ledger string, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		owed, err := readLedger(ledger)
		if err == nil && len(owed) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ledger owes %d, want %d (%v)", len(owed), want, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
