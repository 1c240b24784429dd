package readmodels

import (
	"context"
	"fmt"

	"github.com/google/uuid"
)

// PaymentReader is what the payment queries need of the payment read
// model.
type PaymentReader interface {
	Payment(ctx context.Context, id uuid.UUID) (PaymentView, bool, error)
}

// PaymentFeed carries payment status changes live, to every instance that
// serves a status stream: in process when embedded, over Redis pub/sub
// when distributed. The payments projector publishes each payment view it
// changed, after the change is stored.
//
// Delivery is latest-state, not every-state: a subscriber that reads slower
// than payments change may miss intermediate states, but it always ends up
// with the latest one, and a slow subscriber never blocks Publish. Order
// received states by Position and drop any not newer than the last one
// handled.
//
// Subscribe's channel is closed when cancel is called or ctx is done.
// Publish is safe for concurrent use and does not wait for subscribers.
type PaymentFeed interface {
	PaymentSubscriber
	Publish(ctx context.Context, v PaymentView) error
}

// PaymentSubscriber is the half of the feed that readers use.
type PaymentSubscriber interface {
	Subscribe(ctx context.Context, paymentID uuid.UUID) (updates <-chan PaymentView, cancel func(), err error)
}

// PaymentQueries answers the payment service's reads.
type PaymentQueries struct {
	payments PaymentReader
	feed     PaymentSubscriber
}

// NewPaymentQueries returns the payment queries over payments, with live
// updates from feed (which may be nil when nothing calls Watch).
func NewPaymentQueries(payments PaymentReader, feed PaymentSubscriber) *PaymentQueries {
	return &PaymentQueries{payments: payments, feed: feed}
}

// Payment returns the payment id. An unknown id is a *NotFoundError.
func (q *PaymentQueries) Payment(ctx context.Context, id uuid.UUID) (PaymentView, error) {
	v, ok, err := q.payments.Payment(ctx, id)
	if err != nil {
		return PaymentView{}, fmt.Errorf("readmodels: get payment %s: %w", id, err)
	}
	if !ok {
		return PaymentView{}, &NotFoundError{View: "payment", ID: id}
	}
	return v, nil
}

// Watch streams payment id for a status stream: its current state at
// once, then every newer state as the projector stores it. States arrive
// in order and never repeat (a state is sent only when its Position is
// greater than the last one sent). The channel is closed after a state
// whose status is final (payment.Status.Final: failed or refunded), or
// when ctx is done; a slow reader gets the latest state, not every one.
//
// An unknown id is a *NotFoundError; right after a payment request, wait
// for the payments projector first.
func (q *PaymentQueries) Watch(ctx context.Context, id uuid.UUID) (<-chan PaymentView, error) {
	if q.feed == nil {
		return nil, fmt.Errorf("readmodels: watch payment %s: no payment feed configured", id)
	}
	// Subscribe before reading, so that no change falls between the read
	// and the subscription.
	ctx, stop := context.WithCancel(ctx)
	updates, cancel, err := q.feed.Subscribe(ctx, id)
	if err != nil {
		stop()
		return nil, fmt.Errorf("readmodels: watch payment %s: %w", id, err)
	}
	current, err := q.Payment(ctx, id)
	if err != nil {
		cancel()
		stop()
		return nil, err
	}
	out := make(chan PaymentView, 1)
	out <- current
	go func() {
		defer close(out)
		defer stop()
		defer cancel()
		last := current
		for !last.Status.Final() {
			select {
			case <-ctx.Done():
				return
			case v, ok := <-updates:
				if !ok {
					return
				}
				if v.Position <= last.Position {
					continue
				}
				last = v
				select {
				case out <- v:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
