package redis

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/projections/logtest"
	"github.com/ticketd/ticketing/readmodels"
)

func state(id uuid.UUID, pos uint64) readmodels.PaymentView {
	return readmodels.PaymentView{ID: id, Status: payment.Processing, Position: pos, CreatedAt: t0, UpdatedAt: t0}
}

func receive(t *testing.T, ch <-chan readmodels.PaymentView) (readmodels.PaymentView, bool) {
	t.Helper()
	select {
	case v, ok := <-ch:
		return v, ok
	case <-time.After(5 * time.Second):
		t.Fatal("nothing received")
		return readmodels.PaymentView{}, false
	}
}

// receiveUntil reads ch until it delivers position pos.
func receiveUntil(t *testing.T, ch <-chan readmodels.PaymentView, pos uint64) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				t.Fatalf("closed before position %d", pos)
			}
			if v.Position == pos {
				return
			}
		case <-deadline:
			t.Fatalf("position %d not received", pos)
		}
	}
}

// processes opens two stores on one prefix: the projector's process,
// which publishes, and a service process, which subscribes.
func processes(t *testing.T, opts Options) (projector, service *Store) {
	prefix := newPrefix(t)
	return openStore(t, prefix, opts), openStore(t, prefix, opts)
}

func TestFeedFansOutToEverySubscriberOfThePayment(t *testing.T) {
	ctx := context.Background()
	pub, sub := processes(t, Options{})
	x, y := uuid.New(), uuid.New()
	var xs []<-chan readmodels.PaymentView
	for range 3 {
		ch, cancel, err := sub.Feed().Subscribe(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
		xs = append(xs, ch)
	}
	other, cancelOther, err := sub.Feed().Subscribe(ctx, y)
	if err != nil {
		t.Fatal(err)
	}
	defer cancelOther()

	want := state(x, 1)
	if err := pub.Feed().Publish(ctx, want); err != nil {
		t.Fatal(err)
	}
	for i, ch := range xs {
		if v, _ := receive(t, ch); v != want {
			t.Errorf("subscriber %d got %+v", i, v)
		}
	}
	select {
	case v := <-other:
		t.Fatalf("a subscriber of another payment got %+v", v)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestFeedSubscriptionIsLiveWhenSubscribeReturns publishes from another
// process the moment Subscribe returns: Subscribe waits for Redis to
// confirm, so nothing published after it returns is lost.
func TestFeedSubscriptionIsLiveWhenSubscribeReturns(t *testing.T) {
	ctx := context.Background()
	pub, sub := processes(t, Options{})
	for i := range 200 {
		id := uuid.New()
		ch, cancel, err := sub.Feed().Subscribe(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Feed().Publish(ctx, state(id, uint64(i+1))); err != nil {
			t.Fatal(err)
		}
		if v, _ := receive(t, ch); v.Position != uint64(i+1) {
			t.Fatalf("got %+v", v)
		}
		cancel()
	}
}

func TestFeedSlowSubscriberNeverBlocksAndEndsWithTheLatest(t *testing.T) {
	ctx := context.Background()
	pub, sub := processes(t, Options{})
	id := uuid.New()
	idle, cancelIdle, err := sub.Feed().Subscribe(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer cancelIdle()
	busy, cancelBusy, err := sub.Feed().Subscribe(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer cancelBusy()

	const n = 5_000
	var wg sync.WaitGroup
	var seen []uint64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for v := range busy {
			seen = append(seen, v.Position)
			if v.Position == n {
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	published := make(chan error, 1)
	go func() {
		for pos := uint64(1); pos <= n; pos++ {
			if err := pub.Feed().Publish(ctx, state(id, pos)); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	select {
	case err := <-published:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Publish blocked on a subscriber that does not read")
	}
	// The idle subscriber's mailbox holds one state, the latest (give the
	// last messages time to arrive).
	receiveUntil(t, idle, n)
	wg.Wait()
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Fatalf("the busy subscriber saw %d after %d", seen[i], seen[i-1])
		}
	}
	if seen[len(seen)-1] != n {
		t.Fatalf("the busy subscriber ended at %d", seen[len(seen)-1])
	}
	t.Logf("the busy subscriber saw %d of %d states", len(seen), n)
}

func TestFeedSubscriptionsEnd(t *testing.T) {
	tests := []struct {
		name string
		end  func(s *Store, cancel func(), stop context.CancelFunc)
	}{
		{"by cancel", func(_ *Store, cancel func(), _ context.CancelFunc) { cancel() }},
		{"by cancel, twice", func(_ *Store, cancel func(), _ context.CancelFunc) { cancel(); cancel() }},
		{"by their context", func(_ *Store, _ func(), stop context.CancelFunc) { stop() }},
		{"by closing the store", func(s *Store, _ func(), _ context.CancelFunc) { s.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			c := rawClient(t, testServers.Redis(t))
			defer c.Close()
			id := uuid.New()
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			ch, cancel, err := s.Feed().Subscribe(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			channel := s.Feed().channel(id)
			if n := c.PubSubNumSub(ctx, channel).Val()[channel]; n != 1 {
				t.Fatalf("%d subscriptions on the server, want 1", n)
			}
			tt.end(s, cancel, stop)
			if _, ok := receive(t, ch); ok {
				t.Fatal("the channel is still open")
			}
			deadline := time.Now().Add(5 * time.Second)
			for s.Feed().Subscribers() != 0 || c.PubSubNumSub(context.Background(), channel).Val()[channel] != 0 {
				if time.Now().After(deadline) {
					t.Fatal("the subscription is still registered")
				}
				time.Sleep(time.Millisecond)
			}
			cancel()
		})
	}
}

// TestFeedRecoversALostConnection kills the subscription connection on
// the server, and changes the payment in the store while the feed is
// away, without publishing: the feed reconnects, subscribes again and
// delivers the stored state it missed. Later publishes arrive as before.
func TestFeedRecoversALostConnection(t *testing.T) {
	ctx := context.Background()
	pub, sub := processes(t, Options{FeedHealthInterval: 50 * time.Millisecond})
	id := uuid.New()
	ch, cancel, err := sub.Feed().Subscribe(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	// Health checks come and go on the quiet connection meanwhile.
	time.Sleep(200 * time.Millisecond)

	c := rawClient(t, testServers.Redis(t))
	defer c.Close()
	killed := 0
	for _, line := range strings.Split(c.ClientList(ctx).Val(), "\n") {
		if strings.Contains(line, " name="+sub.prefix+"-readstore ") && strings.Contains(line, "sub=1") {
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "id="); ok {
					if err := c.Do(ctx, "CLIENT", "KILL", "ID", v).Err(); err != nil {
						t.Fatal(err)
					}
					killed++
				}
			}
		}
	}
	if killed != 1 {
		t.Fatalf("killed %d subscription connections, want 1", killed)
	}
	missed := state(id, 7)
	missed.Status = payment.Succeeded
	if err := pub.Payments().Commit(ctx, projections.PaymentsCommit{From: 0, To: 7, Payments: []readmodels.PaymentView{missed}}); err != nil {
		t.Fatal(err)
	}
	receiveUntil(t, ch, 7)

	if err := pub.Feed().Publish(ctx, state(id, 8)); err != nil {
		t.Fatal(err)
	}
	receiveUntil(t, ch, 8)
}

// TestPaymentStatusIsLive follows a payment from its request to its
// refund through the projector in one process, Redis, and a status
// stream in another, as distributed mode runs them.
func TestPaymentStatusIsLive(t *testing.T) {
	reg := registry()
	log := logtest.New(t, reg)
	pay, bk, u := uuid.New(), uuid.New(), uuid.New()
	log.Append(payment.Stream(pay), pay,
		payment.Requested{PaymentID: pay, BookingID: bk, UserID: u, Amount: 200, Currency: "IDR", Token: "tok_success", At: t0},
		payment.Settled{BookingID: bk, GatewayRef: "gw", At: t0.Add(time.Second)})
	projector, service := processes(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := projections.NewPayments(log, reg, projector.Payments(), projector.Feed(), nil)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	head, _ := log.HeadPosition(ctx)
	if err := p.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}

	q := readmodels.NewPaymentQueries(service.Payments(), service.Feed())
	watched, err := q.Watch(ctx, pay)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := receive(t, watched); v.Status != payment.Succeeded {
		t.Fatalf("first state %s, want the current one, succeeded", v.Status)
	}
	log.Append(payment.Stream(pay), pay, payment.RefundRequested{BookingID: bk, Reason: "cancelled", At: t0})
	if v, _ := receive(t, watched); v.Status != payment.RefundPending {
		t.Fatalf("next state %s, want refund_pending", v.Status)
	}
	log.Append(payment.Stream(pay), pay, payment.RefundCompleted{BookingID: bk, At: t0})
	if v, _ := receive(t, watched); v.Status != payment.Refunded {
		t.Fatalf("next state %s, want refunded", v.Status)
	}
	if _, ok := receive(t, watched); ok {
		t.Fatal("the stream goes on after a final status")
	}
	cancel()
	<-done
}

// TestWatchMissesNoChangeAroundItsStart starts status streams while the
// projector settles their payments at the same moment: whether the
// change lands before the stream's read, between its subscription and
// its read, or after, every stream ends with the final state.
func TestWatchMissesNoChangeAroundItsStart(t *testing.T) {
	ctx := context.Background()
	projector, service := processes(t, Options{})
	q := readmodels.NewPaymentQueries(service.Payments(), service.Feed())
	for i := range 100 {
		id := uuid.New()
		cp := uint64(2 * i)
		requested := state(id, cp+1)
		if err := projector.Payments().Commit(ctx, projections.PaymentsCommit{From: cp, To: cp + 1, Payments: []readmodels.PaymentView{requested}}); err != nil {
			t.Fatal(err)
		}
		failed := state(id, cp+2)
		failed.Status = payment.Failed
		settled := make(chan error, 1)
		go func() {
			// The projector's order: store, then publish.
			time.Sleep(time.Duration(i%10) * 30 * time.Microsecond)
			err := projector.Payments().Commit(ctx, projections.PaymentsCommit{From: cp + 1, To: cp + 2, Payments: []readmodels.PaymentView{failed}})
			if err == nil {
				err = projector.Feed().Publish(ctx, failed)
			}
			settled <- err
		}()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		watched, err := q.Watch(wctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var last readmodels.PaymentView
		for v := range watched {
			last = v
		}
		cancel()
		if err := <-settled; err != nil {
			t.Fatal(err)
		}
		if last != failed {
			t.Fatalf("stream %d ended with %+v, want the final state", i, last)
		}
	}
}
