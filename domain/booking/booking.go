// Package booking is the Booking aggregate: a customer's request for seats
// of one ticket type, moving along the state machine
//
//	pending ──> awaiting_payment ──> confirmed ──> cancelled
//	   │              │    │
//	   │              │    └──> expired
//	   │              └──> cancelled
//	   └──> rejected
//
// and nowhere else.
package booking

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/fault"
)

// Status is where a booking stands.
type Status string

const (
	StatusPending         Status = "pending"
	StatusAwaitingPayment Status = "awaiting_payment"
	StatusConfirmed       Status = "confirmed"
	StatusRejected        Status = "rejected"
	StatusExpired         Status = "expired"
	StatusCancelled       Status = "cancelled"
)

// Final reports whether no transition leaves s except confirmed's cancel.
func (s Status) Final() bool {
	return s == StatusRejected || s == StatusExpired || s == StatusCancelled
}

// Reasons recorded when the booking itself decides.
const (
	ReasonHoldExpired    = "hold_expired"
	ReasonEventCancelled = "event_cancelled"
)

// MaxQuantity bounds one booking whatever the event allows, so that a typo
// cannot ask for a million seats.
const MaxQuantity = 100

// Stream is the name of booking id's stream.
func Stream(id uuid.UUID) string { return "booking-" + id.String() }

// StreamPrefix selects every booking stream.
const StreamPrefix = "booking-"

// TransitionError is a refused transition: Action is not allowed from From.
type TransitionError struct {
	Action string
	From   Status
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("booking: cannot %s a booking that is %s", e.Action, e.From)
}

// Is classifies the refusal as a state conflict.
func (e *TransitionError) Is(target error) bool { return target == fault.ErrConflict }

// NotDueError refuses to expire a hold before its deadline.
type NotDueError struct {
	ExpiresAt time.Time
	Now       time.Time
}

func (e *NotDueError) Error() string {
	return fmt.Sprintf("booking: hold runs until %s, it is only %s", e.ExpiresAt.Format(time.RFC3339), e.Now.Format(time.RFC3339))
}

// Is classifies the refusal as a state conflict.
func (e *NotDueError) Is(target error) bool { return target == fault.ErrConflict }

// Booking is the aggregate. Its fields change only through its methods.
type Booking struct {
	es.Changes

	id         uuid.UUID
	userID     uuid.UUID
	eventID    uuid.UUID
	ticketType string
	quantity   int
	status     Status
	reason     string
	unitPrice  int64
	amount     int64
	currency   string
	expiresAt  time.Time
	paymentID  uuid.UUID
	createdAt  time.Time
	updatedAt  time.Time
}

// Place decides a new booking.
func Place(id, userID, eventID uuid.UUID, ticketType string, quantity int, now time.Time) (*Booking, error) {
	var in fault.Input
	in.Check(id != uuid.Nil, "id", "is required")
	in.Check(userID != uuid.Nil, "user_id", "is required")
	in.Check(eventID != uuid.Nil, "event_id", "is required")
	in.Check(ticketType != "", "ticket_type", "is required")
	in.Check(quantity >= 1 && quantity <= MaxQuantity, "quantity", fmt.Sprintf("must be between 1 and %d", MaxQuantity))
	if err := in.Err(); err != nil {
		return nil, err
	}
	b := &Booking{}
	b.record(Placed{BookingID: id, UserID: userID, EventID: eventID, TicketType: ticketType, Quantity: quantity, At: now})
	return b, nil
}

// AwaitPayment records that the seats are held until expiresAt.
//
// The event decides once per booking, so a booking that has left pending
// through awaiting payment was already told about this very hold: repeating
// it is a no-op whatever happened since (confirmed, expired, cancelled).
// Refusing a repeat would tell the caller to release seats that are sold
// or already released. Only a booking rejected while its hold was on the
// way refuses it, and the caller must then release the seats.
func (b *Booking) AwaitPayment(unitPrice int64, currency string, expiresAt, now time.Time) error {
	switch b.status {
	case StatusPending:
		b.record(AwaitingPayment{UnitPrice: unitPrice, Amount: unitPrice * int64(b.quantity), Currency: currency, ExpiresAt: expiresAt, At: now})
		return nil
	case StatusAwaitingPayment, StatusConfirmed, StatusExpired, StatusCancelled:
		return nil
	default:
		return &TransitionError{Action: "hold seats for", From: b.status}
	}
}

// Reject records that the seats could not be held.
func (b *Booking) Reject(reason string, now time.Time) error {
	switch b.status {
	case StatusPending:
		b.record(Rejected{Reason: reason, At: now})
		return nil
	case StatusRejected:
		return nil
	default:
		return &TransitionError{Action: "reject", From: b.status}
	}
}

// Confirm records that payment paymentID succeeded while the seats were
// held. Confirming again with the same payment is a no-op; any other case
// is refused, and the caller must refund that payment.
func (b *Booking) Confirm(paymentID uuid.UUID, now time.Time) error {
	switch {
	case b.status == StatusAwaitingPayment:
		b.record(Confirmed{PaymentID: paymentID, At: now})
		return nil
	case b.status == StatusConfirmed && b.paymentID == paymentID:
		return nil
	default:
		return &TransitionError{Action: "confirm", From: b.status}
	}
}

// Expire ends a hold that ran out unpaid. A deadline may fire late, after
// the booking moved on: then there is nothing to expire and it is a no-op.
func (b *Booking) Expire(now time.Time) error {
	if b.status != StatusAwaitingPayment {
		return nil
	}
	if now.Before(b.expiresAt) {
		return &NotDueError{ExpiresAt: b.expiresAt, Now: now}
	}
	b.record(Expired{Reason: ReasonHoldExpired, At: now})
	return nil
}

// Cancel ends a booking at its owner's or an admin's request. Only a
// booking awaiting payment or confirmed can be cancelled; a pending one has
// not been decided yet. Cancelling a confirmed booking refunds its payment.
func (b *Booking) Cancel(reason string, now time.Time) error {
	switch b.status {
	case StatusAwaitingPayment, StatusConfirmed:
		refund := b.status == StatusConfirmed && b.paymentID != uuid.Nil
		b.record(Cancelled{Reason: reason, From: b.status, PaymentID: b.paymentID, Refund: refund, At: now})
		return nil
	default:
		return &TransitionError{Action: "cancel", From: b.status}
	}
}

// CancelForEvent ends the booking because its event was cancelled: a
// pending booking is rejected, a live one cancelled, a final one left alone.
func (b *Booking) CancelForEvent(now time.Time) error {
	switch b.status {
	case StatusPending:
		return b.Reject(ReasonEventCancelled, now)
	case StatusAwaitingPayment, StatusConfirmed:
		return b.Cancel(ReasonEventCancelled, now)
	default:
		return nil
	}
}

func (b *Booking) record(p es.Payload) {
	b.Apply(p)
	b.Record(p)
}

// Apply mutates the state by one event. It never validates: events are
// facts.
func (b *Booking) Apply(p es.Payload) {
	switch e := p.(type) {
	case Placed:
		b.id, b.userID, b.eventID = e.BookingID, e.UserID, e.EventID
		b.ticketType, b.quantity = e.TicketType, e.Quantity
		b.status = StatusPending
		b.createdAt, b.updatedAt = e.At, e.At
	case AwaitingPayment:
		b.status = StatusAwaitingPayment
		b.unitPrice, b.amount, b.currency = e.UnitPrice, e.Amount, e.Currency
		b.expiresAt, b.updatedAt = e.ExpiresAt, e.At
	case Rejected:
		b.status, b.reason, b.updatedAt = StatusRejected, e.Reason, e.At
	case Confirmed:
		b.status, b.paymentID, b.updatedAt = StatusConfirmed, e.PaymentID, e.At
	case Expired:
		b.status, b.reason, b.updatedAt = StatusExpired, e.Reason, e.At
	case Cancelled:
		b.status, b.reason, b.updatedAt = StatusCancelled, e.Reason, e.At
	}
}

func (b *Booking) ID() uuid.UUID        { return b.id }
func (b *Booking) UserID() uuid.UUID    { return b.userID }
func (b *Booking) EventID() uuid.UUID   { return b.eventID }
func (b *Booking) TicketType() string   { return b.ticketType }
func (b *Booking) Quantity() int        { return b.quantity }
func (b *Booking) Status() Status       { return b.status }
func (b *Booking) Reason() string       { return b.reason }
func (b *Booking) UnitPrice() int64     { return b.unitPrice }
func (b *Booking) Amount() int64        { return b.amount }
func (b *Booking) Currency() string     { return b.currency }
func (b *Booking) ExpiresAt() time.Time { return b.expiresAt }
func (b *Booking) PaymentID() uuid.UUID { return b.paymentID }
func (b *Booking) CreatedAt() time.Time { return b.createdAt }
func (b *Booking) UpdatedAt() time.Time { return b.updatedAt }
