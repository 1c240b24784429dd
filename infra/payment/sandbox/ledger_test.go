package sandbox

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
)

// Charges accepted at the same moment share fsyncs, and every one of them
// is in the ledger when Charge returns: a restarted sandbox owes them all.
func TestConcurrentChargesAreAllRemembered(t *testing.T) {
	_, srv := newProvider(t)
	ledger := filepath.Join(t.TempDir(), "ledger")
	g := open(t, ledger, srv.URL)
	g.Settle = time.Hour // nothing is sent by this instance
	const charges = 200
	var wg sync.WaitGroup
	for range charges {
		wg.Go(func() {
			if _, err := g.Charge(context.Background(), commands.Charge{PaymentID: uuid.New(), Token: TokenSuccess}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	g.Close()
	owed, err := readLedger(ledger)
	if err != nil || len(owed) != charges {
		t.Fatalf("the ledger owes %d notifications (%v), want %d", len(owed), err, charges)
	}
}

// After an fsync fails nothing more is acknowledged as durable.
func TestLedgerSyncFailureIsFinal(t *testing.T) {
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "ledger"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	l := newLedger(f)
	if err := l.append([]byte("one\n"), true); err != nil {
		t.Fatal(err)
	}
	l.syncErr = os.ErrClosed // as if an fsync had failed
	if err := l.append([]byte("two\n"), true); err == nil {
		t.Fatal("a line was acknowledged as durable after a failed fsync")
	}
	f.Close()
}

// Notifications reuse their connections to the webhook.
func TestNotificationsKeepTheirConnection(t *testing.T) {
	var conns atomic.Int64
	got := make(chan struct{}, 64)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"ignored","status":"succeeded"}`)
		got <- struct{}{}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	g := open(t, filepath.Join(t.TempDir(), "ledger"), srv.URL)
	defer g.Close()
	g.Settle = 0
	const n = 20
	for range n {
		if _, err := g.Charge(context.Background(), commands.Charge{PaymentID: uuid.New(), Token: TokenSuccess}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("no notification")
		}
		time.Sleep(5 * time.Millisecond) // let the connection go back to the pool
	}
	if c := conns.Load(); c > 2 {
		t.Fatalf("%d notifications opened %d connections", n, c)
	}
}
