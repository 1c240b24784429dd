package embedded

import (
	"context"
	"sync"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

var (
	_ readmodels.PaymentFeed       = (*PaymentFeed)(nil)
	_ projections.PaymentPublisher = (*PaymentFeed)(nil)
)

// PaymentFeed is the in-process payment feed: the payments projector
// publishes, every status stream of this process subscribes.
//
// Each subscriber has a one-slot mailbox that always holds the latest
// state it has not read: a publish replaces an unread state rather than
// wait for the subscriber. So Publish never blocks (the projector must
// not stall behind a slow client), and a subscriber that falls behind
// skips intermediate states but always ends up with the latest one.
type PaymentFeed struct {
	mu   sync.Mutex
	subs map[uuid.UUID]map[*feedSub]struct{}
}

type feedSub struct {
	ch chan readmodels.PaymentView
}

// NewPaymentFeed returns a feed with no subscribers.
func NewPaymentFeed() *PaymentFeed {
	return &PaymentFeed{subs: map[uuid.UUID]map[*feedSub]struct{}{}}
}

// Subscribe returns the states of payment id published from now on. The
// channel is closed when cancel is called or ctx is done; cancel may be
// called more than once.
func (f *PaymentFeed) Subscribe(ctx context.Context, id uuid.UUID) (<-chan readmodels.PaymentView, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	s := &feedSub{ch: make(chan readmodels.PaymentView, 1)}
	f.mu.Lock()
	if f.subs[id] == nil {
		f.subs[id] = map[*feedSub]struct{}{}
	}
	f.subs[id][s] = struct{}{}
	f.mu.Unlock()

	var once sync.Once
	remove := func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			delete(f.subs[id], s)
			if len(f.subs[id]) == 0 {
				delete(f.subs, id)
			}
			// Publish sends under f.mu, so nothing sends after this.
			close(s.ch)
		})
	}
	stop := context.AfterFunc(ctx, remove)
	return s.ch, func() { stop(); remove() }, nil
}

// Publish hands v to every subscriber of its payment without waiting for
// any of them.
func (f *PaymentFeed) Publish(_ context.Context, v readmodels.PaymentView) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs[v.ID] {
		// Drop an older state the subscriber has not read. Senders hold
		// f.mu, so the slot is free afterwards and the send cannot block.
		select {
		case <-s.ch:
		default:
		}
		s.ch <- v
	}
	return nil
}

// Subscribers is how many subscriptions are open, for tests and metrics.
func (f *PaymentFeed) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, subs := range f.subs {
		n += len(subs)
	}
	return n
}
