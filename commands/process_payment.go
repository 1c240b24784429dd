package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/payment"
)

// ProcessPayment pays for a booking with a provider token. The amount is
// the booking's: the client never sends one.
type ProcessPayment struct {
	BookingID uuid.UUID
	UserID    uuid.UUID
	Token     string
}

// Process starts a payment attempt: accepted only for the caller's booking
// in awaiting_payment with no attempt processing or succeeded. The payment
// processor then charges the gateway, whose notification settles it.
//
// Attempts are numbered streams (see PaymentAttemptID): the first free
// number is taken with "no stream", so racing requests cannot start two
// attempts. A request repeated with the same message id (the same
// idempotency key) finds the attempt it started and returns it.
//
// Most requests start a booking's first attempt, so that is written before
// anything is read, as Place does: a first attempt that exists already
// (this request retried, another one's, or one that failed) refuses the
// write, or a store that cannot tell a retried write from a new one says
// it did not write, and only then are the attempts walked to find out
// which.
func (h *Payments) Process(ctx context.Context, msg Msg, cmd ProcessPayment) (PaymentState, error) {
	b, ok, err := h.bookings.PayableBooking(ctx, cmd.BookingID)
	if err != nil {
		return PaymentState{}, err
	}
	if !ok || b.UserID != cmd.UserID {
		return PaymentState{}, ErrBookingNotFound
	}
	var state PaymentState
	if b.payable(h.repo.clock()) {
		written, err := h.start(ctx, msg, cmd, b, PaymentAttemptID(cmd.BookingID, 1), &state)
		switch {
		case err == nil && written:
			return state, nil
		case err == nil, errors.Is(err, es.ErrConflict), errors.Is(err, es.ErrDuplicateEventID):
			// Started before: the walk below says by whom.
		default:
			return PaymentState{}, err
		}
	}
	err = retry(ctx, func() error {
		for n := 1; n <= MaxPaymentAttempts; n++ {
			id := PaymentAttemptID(cmd.BookingID, n)
			stream := payment.Stream(id)
			first, err := h.firstRecordID(ctx, stream)
			if err != nil {
				return err
			}
			if first == uuid.Nil {
				written, err := h.start(ctx, msg, cmd, b, id, &state)
				if err != nil || written {
					return err
				}
				// The store found this request's write there already, or
				// cannot tell: read back whose the attempt is.
				if first, err = h.firstRecordID(ctx, stream); err != nil {
					return err
				}
				if first == uuid.Nil {
					return fmt.Errorf("commands: payment attempt %s: appended but not found", id)
				}
			}
			p, err := h.load(ctx, id)
			if err != nil {
				return err
			}
			if first == h.repo.recordID(msg, stream, 0) {
				if p.Token() != cmd.Token {
					return ErrIdempotencyMismatch
				}
				state = paymentState(p)
				return nil
			}
			if p.Status() != payment.Failed {
				return &NotPayableError{BookingID: cmd.BookingID, Why: "a payment is already " + string(p.Status())}
			}
		}
		return &NotPayableError{BookingID: cmd.BookingID, Why: "too many failed attempts"}
	})
	return state, err
}

// start starts payment attempt id with "no stream" and reports whether it
// wrote it: false, without an error, when the store found this request's
// write already there.
func (h *Payments) start(ctx context.Context, msg Msg, cmd ProcessPayment, b PayableBooking, id uuid.UUID, state *PaymentState) (bool, error) {
	now := h.repo.clock().UTC()
	if b.Status != booking.StatusAwaitingPayment {
		return false, &NotPayableError{BookingID: cmd.BookingID, Why: "it is " + string(b.Status)}
	}
	if !now.Before(b.ExpiresAt) {
		return false, &NotPayableError{BookingID: cmd.BookingID, Why: "its hold has run out"}
	}
	p, err := payment.Request(id, cmd.BookingID, cmd.UserID, b.Amount, b.Currency, cmd.Token, now)
	if err != nil {
		return false, err
	}
	res, err := h.repo.Save(ctx, payment.Stream(id), id, p, msg)
	if err != nil || !res.Written {
		h.recent.drop(id)
		return false, err
	}
	h.recent.put(id, p)
	*state = paymentState(p)
	return true, nil
}

// payable reports whether a payment may start on the booking now; start
// says why not.
func (b PayableBooking) payable(now time.Time) bool {
	return b.Status == booking.StatusAwaitingPayment && now.Before(b.ExpiresAt)
}
