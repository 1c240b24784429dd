package event

import (
	"time"

	"github.com/google/uuid"
)

// TicketTypeState is a ticket type with the seats committed of it.
type TicketTypeState struct {
	TicketType
	Held      int
	Sold      int
	Available int
}

func (e *Event) ID() uuid.UUID        { return e.id }
func (e *Event) Details() Details     { return e.details }
func (e *Event) Currency() string     { return e.currency }
func (e *Event) Status() Status       { return e.status }
func (e *Event) CreatedAt() time.Time { return e.createdAt }
func (e *Event) UpdatedAt() time.Time { return e.updatedAt }

// Exists reports whether the event was created (a zero Event replayed from
// an empty stream was not).
func (e *Event) Exists() bool { return e.id != uuid.Nil }

// TicketTypes returns each ticket type with what is held, sold and
// available of it.
func (e *Event) TicketTypes() []TicketTypeState {
	out := make([]TicketTypeState, len(e.types))
	for i := range e.types {
		t := &e.types[i]
		out[i] = TicketTypeState{TicketType: t.TicketType, Held: t.held, Sold: t.sold, Available: t.available()}
	}
	return out
}

// Snapshot is the complete state of an Event as plain values, so that a
// long stream (a fact per booking) can be loaded from its latest snapshot
// plus the few records after it.
type Snapshot struct {
	ID          uuid.UUID
	Details     Details
	Currency    string
	Status      Status
	TicketTypes []TicketTypeState
	Bookings    []BookingSeats
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// BookingSeats is what the event decided for one booking. TicketType is
// empty for a refusal.
type BookingSeats struct {
	BookingID  uuid.UUID
	TicketType string
	Quantity   int
	State      string
	Reason     string
}

// Snapshot captures the state.
func (e *Event) Snapshot() Snapshot {
	s := Snapshot{
		ID: e.id, Details: e.details, Currency: e.currency, Status: e.status,
		TicketTypes: e.TicketTypes(), CreatedAt: e.createdAt, UpdatedAt: e.updatedAt,
		Bookings: make([]BookingSeats, 0, len(e.bookings)),
	}
	for id, b := range e.bookings {
		bs := BookingSeats{BookingID: id, Quantity: b.quantity, State: b.state.String(), Reason: b.reason}
		if b.ticketType >= 0 {
			bs.TicketType = e.types[b.ticketType].Name
		}
		s.Bookings = append(s.Bookings, bs)
	}
	return s
}

// Restore rebuilds an Event from a snapshot taken at version.
func Restore(s Snapshot, version int64) *Event {
	e := &Event{
		id: s.ID, details: s.Details, currency: s.Currency, status: s.Status,
		createdAt: s.CreatedAt, updatedAt: s.UpdatedAt,
		types:    make([]ticketType, len(s.TicketTypes)),
		bookings: make(map[uuid.UUID]seats, len(s.Bookings)),
	}
	for i, t := range s.TicketTypes {
		e.types[i] = ticketType{TicketType: t.TicketType, held: t.Held, sold: t.Sold}
	}
	for _, b := range s.Bookings {
		st := seats{ticketType: e.typeIndex(b.TicketType), quantity: b.Quantity, reason: b.Reason}
		switch b.State {
		case "held":
			st.state = seatsHeld
		case "sold":
			st.state = seatsSold
		case "released":
			st.state = seatsReleased
		default:
			st.state, st.ticketType = seatsRefused, -1
		}
		e.bookings[b.BookingID] = st
	}
	e.Restored(version)
	return e
}
