// Package event is the Event aggregate: a ticketed event with its ticket
// types and capacities. It is the single authority on seats: it holds seats
// for a booking only while capacity allows, so that seats held or sold never
// exceed capacity however many bookings race, and it remembers what it
// decided for every booking, so that a repeated command changes nothing.
package event

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/fault"
)

// Status is whether the event takes place.
type Status string

const (
	Scheduled       Status = "scheduled"
	StatusCancelled Status = "cancelled"
)

// Why seats were refused.
const (
	ReasonSoldOut           = "sold_out"
	ReasonEventCancelled    = "event_cancelled"
	ReasonOverLimit         = "over_limit"
	ReasonUnknownTicketType = "unknown_ticket_type"
	ReasonSalesClosed       = "sales_closed"
)

// Limits on what an admin may set.
const (
	DefaultMaxPerBooking = 10
	MaxPerBookingLimit   = 100
	MaxTicketTypes       = 50
	MaxCapacity          = 10_000_000
)

// Stream is the name of event id's stream.
func Stream(id uuid.UUID) string { return "event-" + id.String() }

// StreamPrefix selects every event stream.
const StreamPrefix = "event-"

// Details are the descriptive fields of an event.
type Details struct {
	Name          string
	Description   string
	Venue         string
	StartsAt      time.Time
	EndsAt        time.Time
	MaxPerBooking int
}

// TicketType is a kind of seat with its price (in the currency's minor
// unit) and capacity.
type TicketType struct {
	Name     string
	Price    int64
	Capacity int
}

// CapacityError refuses a capacity below the seats already committed.
type CapacityError struct {
	TicketType string
	Capacity   int
	Committed  int
}

func (e *CapacityError) Error() string {
	return fmt.Sprintf("event: ticket type %q cannot have capacity %d: %d seats are held or sold", e.TicketType, e.Capacity, e.Committed)
}

// Is classifies the refusal as a state conflict.
func (e *CapacityError) Is(target error) bool { return target == fault.ErrConflict }

// ErrCancelled refuses changes to a cancelled event.
var ErrCancelled = fmt.Errorf("event: the event is cancelled: %w", fault.ErrConflict)

// SellError refuses to sell seats that are not held for the booking.
type SellError struct {
	BookingID uuid.UUID
	State     string
}

func (e *SellError) Error() string {
	return fmt.Sprintf("event: cannot sell seats of booking %s: they are %s", e.BookingID, e.State)
}

// Is classifies the refusal as a state conflict.
func (e *SellError) Is(target error) bool { return target == fault.ErrConflict }

type seatState uint8

const (
	seatsHeld seatState = iota + 1
	seatsSold
	seatsReleased
	seatsRefused
)

func (s seatState) String() string {
	switch s {
	case seatsHeld:
		return "held"
	case seatsSold:
		return "sold"
	case seatsReleased:
		return "released"
	case seatsRefused:
		return "refused"
	}
	return "unknown"
}

// seats is what the event decided for one booking.
type seats struct {
	ticketType int // index into Event.types, -1 when refused
	quantity   int
	state      seatState
	reason     string // why seats were refused
}

type ticketType struct {
	TicketType
	held int
	sold int
}

// Event is the aggregate. Its fields change only through its methods.
type Event struct {
	es.Changes

	id        uuid.UUID
	details   Details
	currency  string
	status    Status
	types     []ticketType
	bookings  map[uuid.UUID]seats
	createdAt time.Time
	updatedAt time.Time
}

// Create decides a new event. A zero MaxPerBooking means the default.
func Create(id uuid.UUID, d Details, currency string, types []TicketType, now time.Time) (*Event, error) {
	if d.MaxPerBooking == 0 {
		d.MaxPerBooking = DefaultMaxPerBooking
	}
	var in fault.Input
	in.Check(id != uuid.Nil, "id", "is required")
	in.Check(validCurrency(currency), "currency", "must be an ISO 4217 code such as IDR")
	// A missing starts_at is reported once, by checkDetails.
	in.Check(d.StartsAt.IsZero() || d.StartsAt.After(now), "starts_at", "must be in the future")
	checkDetails(&in, d)
	checkTicketTypes(&in, types)
	if err := in.Err(); err != nil {
		return nil, err
	}
	e := &Event{}
	e.record(Created{EventID: id, Details: d, Currency: currency, TicketTypes: clone(types), At: now})
	return e, nil
}

// Update changes the details and ticket types. Existing bookings keep the
// price they were held at. A ticket type may be removed only while nothing
// is held or sold of it, and a capacity may not drop below what is.
func (e *Event) Update(d Details, types []TicketType, now time.Time) error {
	if e.status == StatusCancelled {
		return ErrCancelled
	}
	if d.MaxPerBooking == 0 {
		d.MaxPerBooking = e.details.MaxPerBooking
	}
	var in fault.Input
	checkDetails(&in, d)
	checkTicketTypes(&in, types)
	if err := in.Err(); err != nil {
		return err
	}
	for _, old := range e.types {
		committed := old.held + old.sold
		if committed == 0 {
			continue
		}
		capacity := 0
		for _, t := range types {
			if t.Name == old.Name {
				capacity = t.Capacity
			}
		}
		if capacity < committed {
			return &CapacityError{TicketType: old.Name, Capacity: capacity, Committed: committed}
		}
	}
	e.record(Updated{Details: d, TicketTypes: clone(types), At: now})
	return nil
}

// Cancel calls the event off. Cancelling again is a no-op.
func (e *Event) Cancel(reason string, now time.Time) error {
	if e.status == StatusCancelled {
		return nil
	}
	var active []uuid.UUID
	for id, s := range e.bookings {
		if s.state == seatsHeld || s.state == seatsSold {
			active = append(active, id)
		}
	}
	sortIDs(active)
	e.record(Cancelled{Reason: reason, Bookings: active, At: now})
	return nil
}

// Hold decides whether quantity seats of ticketType can be held for
// booking: it records SeatsHeld or SeatsRefused and returns which. A
// booking the event has already decided on gets the same answer again and
// nothing is recorded.
func (e *Event) Hold(booking uuid.UUID, ticketType string, quantity int, now time.Time) (held bool, reason string) {
	if s, seen := e.bookings[booking]; seen {
		if s.state == seatsRefused {
			return false, s.reason
		}
		return true, ""
	}
	idx := e.typeIndex(ticketType)
	switch {
	case e.status == StatusCancelled:
		reason = ReasonEventCancelled
	case idx < 0:
		reason = ReasonUnknownTicketType
	case quantity < 1 || quantity > e.details.MaxPerBooking:
		reason = ReasonOverLimit
	case !now.Before(e.details.StartsAt):
		reason = ReasonSalesClosed
	case e.types[idx].available() < quantity:
		reason = ReasonSoldOut
	}
	if reason != "" {
		e.record(SeatsRefused{BookingID: booking, TicketType: ticketType, Quantity: quantity, Reason: reason, At: now})
		return false, reason
	}
	t := e.types[idx]
	e.record(SeatsHeld{BookingID: booking, TicketType: t.Name, Quantity: quantity, UnitPrice: t.Price, Currency: e.currency, At: now})
	return true, ""
}

// Sell turns the seats held for booking into sold ones. Selling again is a
// no-op; selling seats that are not held is refused.
func (e *Event) Sell(booking uuid.UUID, now time.Time) error {
	s, seen := e.bookings[booking]
	switch {
	case seen && s.state == seatsSold:
		return nil
	case seen && s.state == seatsHeld:
		e.record(SeatsSold{BookingID: booking, At: now})
		return nil
	case seen:
		return &SellError{BookingID: booking, State: s.state.String()}
	default:
		return &SellError{BookingID: booking, State: "unknown"}
	}
}

// Release makes the seats held or sold for booking available again. It is
// a no-op for a booking with nothing to release, so that a repeated or late
// release is harmless.
func (e *Event) Release(booking uuid.UUID, now time.Time) {
	s, seen := e.bookings[booking]
	if !seen || (s.state != seatsHeld && s.state != seatsSold) {
		return
	}
	e.record(SeatsReleased{BookingID: booking, TicketType: e.types[s.ticketType].Name, Quantity: s.quantity, At: now})
}

func (e *Event) record(p es.Payload) {
	e.Apply(p)
	e.Record(p)
}

// Apply mutates the state by one event. It never validates.
func (e *Event) Apply(p es.Payload) {
	switch v := p.(type) {
	case Created:
		e.id, e.details, e.currency, e.status = v.EventID, v.Details, v.Currency, Scheduled
		e.setTypes(v.TicketTypes)
		e.bookings = map[uuid.UUID]seats{}
		e.createdAt, e.updatedAt = v.At, v.At
	case Updated:
		e.details = v.Details
		e.setTypes(v.TicketTypes)
		e.updatedAt = v.At
	case Cancelled:
		e.status, e.updatedAt = StatusCancelled, v.At
	case SeatsHeld:
		idx := e.typeIndex(v.TicketType)
		e.types[idx].held += v.Quantity
		e.bookings[v.BookingID] = seats{ticketType: idx, quantity: v.Quantity, state: seatsHeld}
	case SeatsRefused:
		e.bookings[v.BookingID] = seats{ticketType: -1, quantity: v.Quantity, state: seatsRefused, reason: v.Reason}
	case SeatsSold:
		s := e.bookings[v.BookingID]
		e.types[s.ticketType].held -= s.quantity
		e.types[s.ticketType].sold += s.quantity
		s.state = seatsSold
		e.bookings[v.BookingID] = s
	case SeatsReleased:
		s := e.bookings[v.BookingID]
		if s.state == seatsHeld {
			e.types[s.ticketType].held -= s.quantity
		} else {
			e.types[s.ticketType].sold -= s.quantity
		}
		s.state = seatsReleased
		e.bookings[v.BookingID] = s
	}
}

// setTypes replaces the ticket types, carrying over what is held and sold
// of the ones that stay, and re-pointing bookings at the new indexes.
func (e *Event) setTypes(types []TicketType) {
	old := e.types
	e.types = make([]ticketType, len(types))
	remap := make([]int, len(old))
	for i := range remap {
		remap[i] = -1
	}
	for i, t := range types {
		e.types[i].TicketType = t
		for j, o := range old {
			if o.Name == t.Name {
				e.types[i].held, e.types[i].sold = o.held, o.sold
				remap[j] = i
			}
		}
	}
	if len(old) == 0 {
		return
	}
	for id, s := range e.bookings {
		if s.ticketType >= 0 {
			s.ticketType = remap[s.ticketType]
			e.bookings[id] = s
		}
	}
}

func (e *Event) typeIndex(name string) int {
	for i := range e.types {
		if e.types[i].Name == name {
			return i
		}
	}
	return -1
}

func (t *ticketType) available() int {
	a := t.Capacity - t.held - t.sold
	if a < 0 {
		return 0
	}
	return a
}

// Limits are in characters, as their messages say, not in bytes: a name in
// a non-Latin script must not be refused at a third of its length.
func checkDetails(in *fault.Input, d Details) {
	in.Check(strings.TrimSpace(d.Name) != "" && utf8.RuneCountInString(d.Name) <= 200, "name", "is required, at most 200 characters")
	in.Check(utf8.RuneCountInString(d.Description) <= 10_000, "description", "must be at most 10000 characters")
	in.Check(utf8.RuneCountInString(d.Venue) <= 200, "venue", "must be at most 200 characters")
	in.Check(!d.StartsAt.IsZero(), "starts_at", "is required")
	in.Check(d.EndsAt.IsZero() || d.EndsAt.After(d.StartsAt), "ends_at", "must be after starts_at")
	in.Check(d.MaxPerBooking >= 1 && d.MaxPerBooking <= MaxPerBookingLimit, "max_per_booking", fmt.Sprintf("must be between 1 and %d", MaxPerBookingLimit))
}

func checkTicketTypes(in *fault.Input, types []TicketType) {
	if len(types) == 0 || len(types) > MaxTicketTypes {
		in.Add("ticket_types", fmt.Sprintf("must have between 1 and %d entries", MaxTicketTypes))
		return
	}
	seen := make(map[string]bool, len(types))
	for i, t := range types {
		field := fmt.Sprintf("ticket_types[%d]", i)
		in.Check(strings.TrimSpace(t.Name) != "" && utf8.RuneCountInString(t.Name) <= 100, field+".name", "is required, at most 100 characters")
		in.Check(!seen[t.Name], field+".name", "must be unique within the event")
		in.Check(t.Price >= 0, field+".price", "must not be negative")
		in.Check(t.Capacity >= 0 && t.Capacity <= MaxCapacity, field+".capacity", fmt.Sprintf("must be between 0 and %d", MaxCapacity))
		seen[t.Name] = true
	}
}

func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

func clone(types []TicketType) []TicketType { return append([]TicketType(nil), types...) }

func sortIDs(ids []uuid.UUID) {
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
}
