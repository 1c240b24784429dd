// Package readmodels is the query side: the shapes of the read models, the
// ports of the stores that keep them, and the query handlers the HTTP
// adapter calls.
//
// Read models are built by the projectors (package projections) from the
// event log, so they trail the write side by a few milliseconds. A caller
// that must read its own write waits for the projector first (see
// projections.Projector.WaitFor); the views carry the log Position of the
// last record applied to them, so that two states of one view can always
// be ordered.
//
// The views are plain values without tags: the wire shapes (JSON, Redis
// hashes) belong to the adapters that speak them. Views returned by a store
// may share their slices with it: treat them as read-only.
package readmodels

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/fault"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/domain/user"
)

// EventView is a ticketed event as the listing and GET /events/{id} show
// it, with the seats still available per ticket type.
type EventView struct {
	ID            uuid.UUID
	Name          string
	Description   string
	Venue         string
	StartsAt      time.Time
	EndsAt        time.Time // zero when the event has no announced end
	Currency      string
	MaxPerBooking int
	Status        event.Status
	TicketTypes   []TicketTypeView
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// Position is the log position of the last record applied to the view.
	Position uint64
}

// TicketTypeView is one kind of seat of an event. Held and Sold are kept so
// that a change of capacity can recompute Available without the history.
type TicketTypeView struct {
	Name     string
	Price    int64
	Capacity int
	Held     int
	Sold     int
	// Available is Capacity - Held - Sold, never below zero.
	Available int
}

// Available is what a ticket type still offers: capacity minus the seats
// held or sold, and never below zero (a capacity lowered below what was
// committed, which the write side refuses but old history may contain,
// shows as sold out rather than as a negative count).
func Available(capacity, held, sold int) int {
	return max(capacity-held-sold, 0)
}

// BookingView is a booking as its owner sees it.
type BookingView struct {
	ID         uuid.UUID
	UserID     uuid.UUID
	EventID    uuid.UUID
	TicketType string
	Quantity   int
	// UnitPrice, Amount and Currency are known once the seats are held
	// (zero and empty while pending or after a rejection).
	UnitPrice int64
	Amount    int64
	Currency  string
	Status    booking.Status
	// Reason says why the booking was rejected, expired or cancelled.
	Reason string
	// ExpiresAt is when the hold runs out; zero until the seats are held.
	ExpiresAt time.Time
	// PaymentID is the booking's latest payment attempt (or the payment
	// that confirmed it); uuid.Nil when none was made.
	PaymentID uuid.UUID
	CreatedAt time.Time
	UpdatedAt time.Time
	// Position is the log position of the last record applied to the view.
	Position uint64
}

// PaymentView is one payment attempt.
type PaymentView struct {
	ID            uuid.UUID
	BookingID     uuid.UUID
	UserID        uuid.UUID
	Amount        int64
	Currency      string
	Status        payment.Status
	FailureReason string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// Position is the log position of the last record applied to the view;
	// it orders the states a live feed delivers.
	Position uint64
}

// ProfileView is a user's profile. It never holds the password hash.
type ProfileView struct {
	ID        uuid.UUID
	Email     string
	Name      string
	Phone     string
	Role      user.Role
	CreatedAt time.Time
	UpdatedAt time.Time
	// Position is the log position of the last record applied to the view.
	Position uint64
}

// ErrNotFound is matched (with errors.Is) by every query for a view that
// does not exist; it is classified as fault.ErrNotFound. Right after a
// write it may only mean that the projection has not caught up yet.
var ErrNotFound = fmt.Errorf("readmodels: view not found: %w", fault.ErrNotFound)

// NotFoundError names the view that was not found.
type NotFoundError struct {
	View string // "event", "booking", "payment" or "profile"
	ID   uuid.UUID
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("readmodels: %s %s not found", e.View, e.ID)
}

// Is makes errors.Is(err, ErrNotFound) and errors.Is(err,
// fault.ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool {
	return target == ErrNotFound || target == fault.ErrNotFound
}
