package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/payment"
)

// DueHolds lists bookings awaiting payment whose hold ran out by now. The
// booking read model answers it from an index, and keeps it durably with
// its checkpoint: that is what makes deadlines survive a restart.
type DueHolds interface {
	DueHolds(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error)
}

// PaymentOutcomes tells how a payment attempt stands, as the payment read
// model knows it: its status, when that status was reached, and whether
// the attempt exists at all.
type PaymentOutcomes interface {
	PaymentOutcome(ctx context.Context, id uuid.UUID) (status payment.Status, at time.Time, found bool, err error)
}

// Expirer expires the holds that ran out, including those that ran out
// while the process was down. It is part of the booking saga: the expiry it
// records leads the saga to release the seats.
//
// A hold runs out unpaid (DESIGN.md): a booking whose payment succeeded by
// its deadline is not expired even if the saga has not confirmed it yet
// (its process was down, or its consumer group was rebalancing). The
// payment's record is durable and the saga will confirm the booking when
// it reads it; expiring first would take the seats from a customer who
// paid in time and refund them. The seats stay held meanwhile, so nothing
// can be oversold. Without payment outcomes (WithPayments), every hold
// that ran out is expired.
type Expirer struct {
	bookings *Bookings
	due      DueHolds
	payments PaymentOutcomes
	log      *slog.Logger
	// Every is how often it looks for holds that ran out.
	Every time.Duration
}

// NewExpirer returns an expirer of bookings whose holds due lists.
func NewExpirer(bookings *Bookings, due DueHolds, log *slog.Logger) *Expirer {
	return &Expirer{bookings: bookings, due: due, log: log, Every: 250 * time.Millisecond}
}

// WithPayments makes the expirer spare the holds paid in time, as payments
// tells.
func (x *Expirer) WithPayments(payments PaymentOutcomes) *Expirer {
	x.payments = payments
	return x
}

// Run expires due holds until ctx is done.
func (x *Expirer) Run(ctx context.Context) error {
	t := time.NewTicker(x.Every)
	defer t.Stop()
	for {
		if _, err := x.ExpireDue(ctx); err != nil && ctx.Err() == nil {
			x.log.Warn("expiring holds", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// ExpireDue expires every hold due now and reports how many it looked at.
func (x *Expirer) ExpireDue(ctx context.Context) (int, error) {
	ids, err := x.due.DueHolds(ctx, x.bookings.repo.clock(), 1000)
	if err != nil {
		return 0, err
	}
	var firstErr error
	for _, id := range ids {
		paid, err := x.paidInTime(ctx, id)
		if err != nil {
			// Not knowing is not unpaid: try again at the next pass.
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if paid {
			x.log.Debug("hold ran out but was paid in time: left for the saga to confirm", "booking", id)
			continue
		}
		// One deadline, one message: a second instance (or a second pass
		// before the read model caught up) sends the same message again,
		// which the booking recognises.
		msg := Msg{ID: uuid.NewSHA1(id, []byte("expire")), CorrelationID: id}
		err = x.bookings.ExpireBooking(ctx, msg, id)
		var notDue *booking.NotDueError
		if err != nil && !errors.As(err, &notDue) && firstErr == nil {
			firstErr = err
		}
	}
	return len(ids), firstErr
}

// paidInTime reports whether a payment attempt for booking id succeeded by
// the booking's deadline. Attempts are numbered and each starts only after
// the one before failed, so the walk stops at the first one never started.
func (x *Expirer) paidInTime(ctx context.Context, id uuid.UUID) (bool, error) {
	if x.payments == nil {
		return false, nil
	}
	b, err := x.bookings.load(ctx, id)
	if err != nil {
		return false, err
	}
	if b.Status() != booking.StatusAwaitingPayment {
		return false, nil // the read model lags; ExpireBooking does nothing
	}
	for n := 1; n <= MaxPaymentAttempts; n++ {
		status, at, found, err := x.payments.PaymentOutcome(ctx, PaymentAttemptID(id, n))
		if err != nil {
			return false, fmt.Errorf("payment attempt %d of booking %s: %w", n, id, err)
		}
		if !found {
			return false, nil
		}
		if status == payment.Succeeded && !at.After(b.ExpiresAt()) {
			return true, nil
		}
	}
	return false, nil
}
