package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
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
func (h *Payments) Process(ctx context.Context, msg Msg, cmd ProcessPayment) (PaymentState, error) {
	b, ok, err := h.bookings.PayableBooking(ctx, cmd.BookingID)
	if err != nil {
		return PaymentState{}, err
	}
	if !ok || b.UserID != cmd.UserID {
		return PaymentState{}, ErrBookingNotFound
	}
	var state PaymentState
	err = retry(ctx, func() error {
		for n := 1; n <= MaxPaymentAttempts; n++ {
			id := PaymentAttemptID(cmd.BookingID, n)
			stream := payment.Stream(id)
			first, err := h.firstRecordID(ctx, stream)
			if err != nil {
				return err
			}
			if first == uuid.Nil {
				return h.start(ctx, msg, cmd, b, id, &state)
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

func (h *Payments) start(ctx context.Context, msg Msg, cmd ProcessPayment, b PayableBooking, id uuid.UUID, state *PaymentState) error {
	now := h.repo.clock().UTC()
	if b.Status != booking.StatusAwaitingPayment {
		return &NotPayableError{BookingID: cmd.BookingID, Why: "it is " + string(b.Status)}
	}
	if !now.Before(b.ExpiresAt) {
		return &NotPayableError{BookingID: cmd.BookingID, Why: "its hold has run out"}
	}
	p, err := payment.Request(id, cmd.BookingID, cmd.UserID, b.Amount, b.Currency, cmd.Token, now)
	if err != nil {
		return err
	}
	if _, err := h.repo.Save(ctx, payment.Stream(id), id, p, msg); err != nil {
		h.recent.drop(id)
		return err
	}
	h.recent.put(id, p)
	*state = paymentState(p)
	return nil
}
