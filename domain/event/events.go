package event

import (
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
)

// Stable type names of the Event aggregate's domain events.
const (
	TypeCreated       = "event.created"
	TypeUpdated       = "event.updated"
	TypeCancelled     = "event.cancelled"
	TypeSeatsHeld     = "event.seats_held"
	TypeSeatsRefused  = "event.seats_refused"
	TypeSeatsSold     = "event.seats_sold"
	TypeSeatsReleased = "event.seats_released"
)

// Created: an admin scheduled the event.
type Created struct {
	EventID     uuid.UUID
	Details     Details
	Currency    string
	TicketTypes []TicketType
	At          time.Time
}

// Updated: an admin changed the event. It carries the complete details and
// ticket types after the change, so that readers need no merge rules.
type Updated struct {
	Details     Details
	TicketTypes []TicketType
	At          time.Time
}

// Cancelled: the event will not take place. Bookings lists every booking
// that held or had bought seats at that moment, so that the booking saga can
// cancel each of them (and refund the paid ones) from this one fact.
type Cancelled struct {
	Reason   string
	Bookings []uuid.UUID
	At       time.Time
}

// SeatsHeld: Quantity seats of TicketType are held for BookingID at
// UnitPrice until the booking is confirmed (sold) or ends (released).
type SeatsHeld struct {
	BookingID  uuid.UUID
	TicketType string
	Quantity   int
	UnitPrice  int64
	Currency   string
	At         time.Time
}

// SeatsRefused: the seats could not be held; Reason is a Reason* constant.
type SeatsRefused struct {
	BookingID  uuid.UUID
	TicketType string
	Quantity   int
	Reason     string
	At         time.Time
}

// SeatsSold: the held seats of BookingID were paid for.
type SeatsSold struct {
	BookingID uuid.UUID
	At        time.Time
}

// SeatsReleased: the seats held or sold for BookingID are available again.
type SeatsReleased struct {
	BookingID  uuid.UUID
	TicketType string
	Quantity   int
	At         time.Time
}

func (Created) EventType() string       { return TypeCreated }
func (Updated) EventType() string       { return TypeUpdated }
func (Cancelled) EventType() string     { return TypeCancelled }
func (SeatsHeld) EventType() string     { return TypeSeatsHeld }
func (SeatsRefused) EventType() string  { return TypeSeatsRefused }
func (SeatsSold) EventType() string     { return TypeSeatsSold }
func (SeatsReleased) EventType() string { return TypeSeatsReleased }

// Register adds the Event aggregate's events to r.
func Register(r *es.Registry) {
	r.Register(Created{}, 1)
	r.Register(Updated{}, 1)
	r.Register(Cancelled{}, 1)
	r.Register(SeatsHeld{}, 1)
	r.Register(SeatsRefused{}, 1)
	r.Register(SeatsSold{}, 1)
	r.Register(SeatsReleased{}, 1)
}
