package embedded

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

func state(id uuid.UUID, pos uint64) readmodels.PaymentView {
	return readmodels.PaymentView{ID: id, Status: payment.Processing, Position: pos}
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

func TestFeedFansOutToEverySubscriberOfThePayment(t *testing.T) {
	ctx := context.Background()
	f := NewPaymentFeed()
	x, y := uuid.New(), uuid.New()
	var xs []<-chan readmodels.PaymentView
	for range 3 {
		ch, cancel, err := f.Subscribe(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
		xs = append(xs, ch)
	}
	other, cancelOther, _ := f.Subscribe(ctx, y)
	defer cancelOther()

	f.Publish(ctx, state(x, 1))
	for i, ch := range xs {
		if v, _ := receive(t, ch); v.Position != 1 {
			t.Errorf("subscriber %d got %+v", i, v)
		}
	}
	select {
	case v := <-other:
		t.Fatalf("a subscriber of another payment got %+v", v)
	default:
	}
}

func TestFeedSlowSubscriberNeverBlocksAndEndsWithTheLatest(t *testing.T) {
	ctx := context.Background()
	f := NewPaymentFeed()
	id := uuid.New()
	idle, cancelIdle, _ := f.Subscribe(ctx, id)
	defer cancelIdle()
	busy, cancelBusy, _ := f.Subscribe(ctx, id)
	defer cancelBusy()

	// busy reads while publishing goes on; idle does not read at all.
	var wg sync.WaitGroup
	var seen []uint64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for v := range busy {
			seen = append(seen, v.Position)
			if v.Position == 10_000 {
				return
			}
			time.Sleep(10 * time.Microsecond)
		}
	}()
	published := make(chan struct{})
	go func() {
		for pos := uint64(1); pos <= 10_000; pos++ {
			f.Publish(ctx, state(id, pos))
		}
		close(published)
	}()
	select {
	case <-published:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a subscriber that does not read")
	}
	if v, _ := receive(t, idle); v.Position != 10_000 {
		t.Fatalf("the idle subscriber got position %d, want the latest, 10000", v.Position)
	}
	wg.Wait()
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Fatalf("the busy subscriber saw %d after %d", seen[i], seen[i-1])
		}
	}
	if seen[len(seen)-1] != 10_000 {
		t.Fatalf("the busy subscriber ended at %d", seen[len(seen)-1])
	}
}

func TestFeedSubscriptionsEnd(t *testing.T) {
	tests := []struct {
		name string
		end  func(cancel func(), stop context.CancelFunc)
	}{
		{"by cancel", func(cancel func(), _ context.CancelFunc) { cancel() }},
		{"by cancel, twice", func(cancel func(), _ context.CancelFunc) { cancel(); cancel() }},
		{"by their context", func(_ func(), stop context.CancelFunc) { stop() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewPaymentFeed()
			id := uuid.New()
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			ch, cancel, err := f.Subscribe(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			tt.end(cancel, stop)
			if _, ok := receive(t, ch); ok {
				t.Fatal("the channel is still open")
			}
			deadline := time.Now().Add(5 * time.Second)
			for f.Subscribers() != 0 {
				if time.Now().After(deadline) {
					t.Fatal("the subscription is still registered")
				}
				time.Sleep(time.Millisecond)
			}
			f.Publish(context.Background(), state(id, 1)) // no one to send to, no panic
			cancel()
		})
	}
}

// TestPaymentStatusIsLive follows a payment from its request to its
// refund through the projector, the store and the feed, as a status
// stream would.
func TestPaymentStatusIsLive(t *testing.T) {
	w := newWorld(t)
	s := open(t, t.TempDir(), Options{})
	feed := NewPaymentFeed()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := projections.NewPayments(w.log, w.reg, s.Payments(), feed, nil)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	head, _ := w.log.HeadPosition(ctx)
	if err := p.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}

	q := readmodels.NewPaymentQueries(s.Payments(), feed)
	watched, err := q.Watch(ctx, w.pay)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := receive(t, watched); v.Status != payment.Succeeded {
		t.Fatalf("first state %s, want the current one, succeeded", v.Status)
	}
	w.log.Append(payment.Stream(w.pay), w.pay, payment.RefundRequested{BookingID: w.paid, Reason: "cancelled", At: t0})
	if v, _ := receive(t, watched); v.Status != payment.RefundPending {
		t.Fatalf("next state %s, want refund_pending", v.Status)
	}
	w.log.Append(payment.Stream(w.pay), w.pay, payment.RefundCompleted{BookingID: w.paid, At: t0})
	if v, _ := receive(t, watched); v.Status != payment.Refunded {
		t.Fatalf("next state %s, want refunded", v.Status)
	}
	if _, ok := receive(t, watched); ok {
		t.Fatal("the stream goes on after a final status")
	}
	cancel()
	<-done
}
