package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/fault"
)

// ErrBookingNotFound refuses a command about a booking that does not exist
// or that the caller may not see (the two are not told apart).
var ErrBookingNotFound = fmt.Errorf("commands: booking not found: %w", fault.ErrNotFound)

// ErrIdempotencyMismatch refuses a request that reuses an idempotency key
// with a different body.
var ErrIdempotencyMismatch = fmt.Errorf("commands: idempotency key reused with a different request: %w", fault.ErrConflict)

// BookingState is a booking as its last command left it.
type BookingState struct {
	ID         uuid.UUID
	UserID     uuid.UUID
	EventID    uuid.UUID
	TicketType string
	Quantity   int
	Amount     int64
	Currency   string
	Status     booking.Status
	Reason     string
	ExpiresAt  time.Time
	PaymentID  uuid.UUID
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

func bookingState(b *booking.Booking) BookingState {
	return BookingState{
		ID: b.ID(), UserID: b.UserID(), EventID: b.EventID(), TicketType: b.TicketType(), Quantity: b.Quantity(),
		Amount: b.Amount(), Currency: b.Currency(), Status: b.Status(), Reason: b.Reason(),
		ExpiresAt: b.ExpiresAt(), PaymentID: b.PaymentID(), CreatedAt: b.CreatedAt(), UpdatedAt: b.UpdatedAt(),
	}
}

// Bookings handles the booking service's commands.
type Bookings struct {
	repo    *Repository
	holdTTL time.Duration
	// recent caches the bookings last stored or loaded (see stateCache
	// for when a cached state is trusted).
	recent *stateCache[booking.Booking, *booking.Booking]
}

// bookingCacheSize bounds the bookings kept in memory: a flash sale's worth.
const bookingCacheSize = 100_000

// NewBookings returns the booking service's command handlers; holds last
// holdTTL.
func NewBookings(repo *Repository, holdTTL time.Duration) *Bookings {
	return &Bookings{repo: repo, holdTTL: holdTTL, recent: newStateCache[booking.Booking](bookingCacheSize)}
}

// load replays a booking from the store.
func (h *Bookings) load(ctx context.Context, id uuid.UUID) (*booking.Booking, error) {
	b := &booking.Booking{}
	if err := h.repo.Load(ctx, booking.Stream(id), b); err != nil {
		return nil, err
	}
	if b.ID() == uuid.Nil {
		return nil, ErrBookingNotFound
	}
	h.recent.put(id, b)
	return b, nil
}

// cached returns the booking from the cache if it is there, else from the
// store; fromCache says which.
func (h *Bookings) cached(ctx context.Context, id uuid.UUID) (b *booking.Booking, fromCache bool, err error) {
	if b, ok := h.recent.get(id); ok {
		return b, true, nil
	}
	b, err = h.load(ctx, id)
	return b, false, err
}

// change loads a booking, lets decide act on it and stores the result,
// retrying when another writer got there first.
func (h *Bookings) change(ctx context.Context, id uuid.UUID, msg Msg, decide func(*booking.Booking, time.Time) error) (BookingState, error) {
	var state BookingState
	err := retry(ctx, func() error {
		b, fromCache, err := h.cached(ctx, id)
		if err != nil {
			return err
		}
		now := h.repo.clock().UTC()
		err = decide(b, now)
		if fromCache && (err != nil || len(b.Pending()) == 0) {
			// Only a recorded decision is checked by the append: decide
			// a refusal or a no-op again on the stored state.
			if b, err = h.load(ctx, id); err != nil {
				return err
			}
			err = decide(b, now)
		}
		if err != nil {
			return err
		}
		if _, err := h.repo.Save(ctx, booking.Stream(id), id, b, msg); err != nil {
			h.recent.drop(id)
			return err
		}
		h.recent.put(id, b)
		state = bookingState(b)
		return nil
	})
	return state, err
}

// BookingIDFor derives the id of the booking a user places with an
// idempotency key, so that a retried request finds the booking the first
// one placed, even across a crash.
func BookingIDFor(userID uuid.UUID, idempotencyKey string) uuid.UUID {
	return uuid.NewSHA1(userID, []byte("booking:"+idempotencyKey))
}

// Booking returns a booking's current state from the write side, for the
// owner (or anyone, when asAdmin).
func (h *Bookings) Booking(ctx context.Context, id, callerID uuid.UUID, asAdmin bool) (BookingState, error) {
	b, err := h.load(ctx, id)
	if err != nil {
		return BookingState{}, err
	}
	if !asAdmin && b.UserID() != callerID {
		return BookingState{}, ErrBookingNotFound
	}
	return bookingState(b), nil
}
