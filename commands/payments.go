package commands

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/fault"
	"github.com/ticketd/ticketing/domain/payment"
)

// ErrPaymentNotFound refuses a command about an unknown payment (or one
// the caller may not see).
var ErrPaymentNotFound = fmt.Errorf("commands: payment not found: %w", fault.ErrNotFound)

// NotPayableError refuses a payment for a booking that cannot take one now.
type NotPayableError struct {
	BookingID uuid.UUID
	Why       string
}

func (e *NotPayableError) Error() string {
	return fmt.Sprintf("commands: booking %s cannot be paid: %s", e.BookingID, e.Why)
}

// Is classifies the refusal as a state conflict.
func (e *NotPayableError) Is(target error) bool { return target == fault.ErrConflict }

// MaxPaymentAttempts bounds the attempts to pay one booking.
const MaxPaymentAttempts = 20

// PaymentState is a payment as its last command left it.
type PaymentState struct {
	ID            uuid.UUID
	BookingID     uuid.UUID
	UserID        uuid.UUID
	Amount        int64
	Currency      string
	Status        payment.Status
	FailureReason string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func paymentState(p *payment.Payment) PaymentState {
	return PaymentState{
		ID: p.ID(), BookingID: p.BookingID(), UserID: p.UserID(), Amount: p.Amount(), Currency: p.Currency(),
		Status: p.Status(), FailureReason: p.FailureReason(), CreatedAt: p.CreatedAt(), UpdatedAt: p.UpdatedAt(),
	}
}

// PayableBooking is what the payments service knows of a booking: it
// learns it from the bookings service's events (through the booking read
// model), never from the booking's stream.
type PayableBooking struct {
	UserID    uuid.UUID
	Status    booking.Status
	Amount    int64
	Currency  string
	ExpiresAt time.Time
}

// BookingLookup finds a booking as the payments service sees it.
type BookingLookup interface {
	PayableBooking(ctx context.Context, id uuid.UUID) (PayableBooking, bool, error)
}

// Payments handles the payments service's commands.
type Payments struct {
	repo     *Repository
	bookings BookingLookup
	// recent caches the payments last stored or loaded (see stateCache
	// for when a cached state is trusted).
	recent *stateCache[payment.Payment, *payment.Payment]
}

// paymentCacheSize bounds the payments kept in memory.
const paymentCacheSize = 50_000

// NewPayments returns the payments service's command handlers.
func NewPayments(repo *Repository, bookings BookingLookup) *Payments {
	return &Payments{repo: repo, bookings: bookings, recent: newStateCache[payment.Payment](paymentCacheSize)}
}

// load replays a payment from the store.
func (h *Payments) load(ctx context.Context, id uuid.UUID) (*payment.Payment, error) {
	p := &payment.Payment{}
	if err := h.repo.Load(ctx, payment.Stream(id), p); err != nil {
		return nil, err
	}
	if !p.Exists() {
		return nil, ErrPaymentNotFound
	}
	h.recent.put(id, p)
	return p, nil
}

func (h *Payments) change(ctx context.Context, id uuid.UUID, msg Msg, decide func(*payment.Payment, time.Time) error) (PaymentState, error) {
	var state PaymentState
	err := retry(ctx, func() error {
		p, fromCache := h.recent.get(id)
		if !fromCache {
			var err error
			if p, err = h.load(ctx, id); err != nil {
				return err
			}
		}
		now := h.repo.clock().UTC()
		err := decide(p, now)
		if fromCache && (err != nil || len(p.Pending()) == 0) {
			// Only a recorded decision is checked by the append: decide
			// a refusal or a no-op again on the stored state.
			if p, err = h.load(ctx, id); err != nil {
				return err
			}
			err = decide(p, now)
		}
		if err != nil {
			return err
		}
		if _, err := h.repo.Save(ctx, payment.Stream(id), id, p, msg); err != nil {
			h.recent.drop(id)
			return err
		}
		h.recent.put(id, p)
		state = paymentState(p)
		return nil
	})
	return state, err
}

// PaymentAttemptID is the id of the n-th attempt (from 1) to pay a
// booking. Attempt ids are deterministic so that two requests racing to pay
// one booking race for the same stream, and exactly one wins.
func PaymentAttemptID(bookingID uuid.UUID, n int) uuid.UUID {
	return uuid.NewSHA1(bookingID, []byte("payment-attempt:"+strconv.Itoa(n)))
}

// Payment returns a payment's state from the write side, for its payer (or
// anyone, when asAdmin).
func (h *Payments) Payment(ctx context.Context, id, callerID uuid.UUID, asAdmin bool) (PaymentState, error) {
	p, err := h.load(ctx, id)
	if err != nil {
		return PaymentState{}, err
	}
	if !asAdmin && p.UserID() != callerID {
		return PaymentState{}, ErrPaymentNotFound
	}
	return paymentState(p), nil
}

// firstRecordID is the id of the first record of stream, if any.
func (h *Payments) firstRecordID(ctx context.Context, stream string) (uuid.UUID, error) {
	recs, err := h.repo.store.ReadStream(ctx, stream, es.ReadOptions{Limit: 1})
	if errors.Is(err, es.ErrStreamNotFound) || (err == nil && len(recs) == 0) {
		return uuid.Nil, nil
	}
	if err != nil {
		return uuid.Nil, err
	}
	return recs[0].ID, nil
}
