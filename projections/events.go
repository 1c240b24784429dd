package projections

import (
	"context"
	"log/slog"
	"slices"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/readmodels"
)

// EventsStore is what the events projection needs of its store.
//
// Commit stores c atomically and durably: the events, the seat holds and
// their removals, and the move of the checkpoint from c.From to c.To,
// all or nothing. If the stored checkpoint is not c.From it changes
// nothing and returns an error matching ErrCheckpointConflict.
// Checkpoint is 0 for a projection never committed.
type EventsStore interface {
	Checkpoint(ctx context.Context) (uint64, error)
	Event(ctx context.Context, id uuid.UUID) (readmodels.EventView, bool, error)
	SeatHold(ctx context.Context, booking uuid.UUID) (SeatHold, bool, error)
	Commit(ctx context.Context, c EventsCommit) error
}

// SeatHold is what the events projection remembers of the seats one
// booking holds or bought. It is the projection's own state, not a read
// model: SeatsSold names only the booking, and SeatsReleased does not say
// whether the seats were held or sold, so the projection must remember
// which ticket type, how many, and where they stand. A hold is removed
// when its seats are released.
type SeatHold struct {
	BookingID  uuid.UUID
	EventID    uuid.UUID
	TicketType string
	Quantity   int
	Sold       bool
}

// EventsCommit is one batch of the events projection: each changed event
// once, whatever number of records changed it.
type EventsCommit struct {
	From, To uint64
	Events   []readmodels.EventView
	// Holds are the holds created or changed; Released the bookings whose
	// holds are removed.
	Holds    []SeatHold
	Released []uuid.UUID
}

// eventsTypes are the records the events projection reads. Seat refusals
// change nothing that is shown.
var eventsTypes = []string{
	event.TypeCreated, event.TypeUpdated, event.TypeCancelled,
	event.TypeSeatsHeld, event.TypeSeatsSold, event.TypeSeatsReleased,
}

// NewEvents returns the projector of the event listing and event views:
// details, status, and seats available per ticket type. reg must know the
// Event aggregate's events.
func NewEvents(log EventLog, reg *es.Registry, store EventsStore, logger *slog.Logger) *Projector {
	return newProjector(NameEvents, log, reg, es.Filter{Types: eventsTypes}, &eventsProjection{store: store}, logger)
}

type eventsProjection struct {
	store EventsStore
}

func (p *eventsProjection) checkpoint(ctx context.Context) (uint64, error) {
	return p.store.Checkpoint(ctx)
}

// holdWork is a batch's working copy of one seat hold.
type holdWork struct {
	hold     SeatHold
	stored   bool // the store has it, so releasing it must remove it
	changed  bool
	released bool
}

type eventsBatch struct {
	store  EventsStore
	events workset[readmodels.EventView]
	holds  map[uuid.UUID]*holdWork
	order  []uuid.UUID
}

func (p *eventsProjection) apply(ctx context.Context, from, to uint64, batch []decoded) error {
	b := &eventsBatch{store: p.store, events: newWorkset[readmodels.EventView](), holds: map[uuid.UUID]*holdWork{}}
	for _, d := range batch {
		if err := b.apply(ctx, d); err != nil {
			return err
		}
	}
	c := EventsCommit{From: from, To: to, Events: b.events.values()}
	for _, id := range b.order {
		h := b.holds[id]
		switch {
		case h.released && h.stored:
			c.Released = append(c.Released, id)
		case !h.released && h.changed:
			c.Holds = append(c.Holds, h.hold)
		}
	}
	return p.store.Commit(ctx, c)
}

// ownEvent copies the slice a stored view shares with its store.
func ownEvent(v *readmodels.EventView) { v.TicketTypes = slices.Clone(v.TicketTypes) }

func (b *eventsBatch) event(ctx context.Context, rec *es.Record) (*readmodels.EventView, error) {
	id, err := aggregateID(rec, event.StreamPrefix)
	if err != nil {
		return nil, err
	}
	v, err := b.events.get(ctx, id, b.store.Event, ownEvent)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, inconsistent(rec, "event %s was never created", id)
	}
	return v, nil
}

func (b *eventsBatch) hold(ctx context.Context, booking uuid.UUID) (*holdWork, error) {
	if h, ok := b.holds[booking]; ok {
		if h.released {
			return nil, nil
		}
		return h, nil
	}
	h, ok, err := b.store.SeatHold(ctx, booking)
	if err != nil || !ok {
		return nil, err
	}
	w := &holdWork{hold: h, stored: true}
	b.holds[booking] = w
	b.order = append(b.order, booking)
	return w, nil
}

func (b *eventsBatch) apply(ctx context.Context, d decoded) error {
	rec := d.rec
	var v *readmodels.EventView
	var err error
	switch e := d.payload.(type) {
	case event.Created:
		id := e.EventID
		if id == uuid.Nil {
			if id, err = aggregateID(rec, event.StreamPrefix); err != nil {
				return err
			}
		}
		at := e.At.UTC()
		v = &readmodels.EventView{
			ID: id, Currency: e.Currency, Status: event.Scheduled,
			TicketTypes: mergeTicketTypes(nil, e.TicketTypes),
			CreatedAt:   at, UpdatedAt: at,
		}
		setDetails(v, e.Details)
		b.events.put(id, v)

	case event.Updated:
		if v, err = b.event(ctx, rec); err != nil {
			return err
		}
		setDetails(v, e.Details)
		v.TicketTypes = mergeTicketTypes(v.TicketTypes, e.TicketTypes)
		v.UpdatedAt = e.At.UTC()

	case event.Cancelled:
		if v, err = b.event(ctx, rec); err != nil {
			return err
		}
		v.Status, v.UpdatedAt = event.StatusCancelled, e.At.UTC()

	case event.SeatsHeld:
		if v, err = b.event(ctx, rec); err != nil {
			return err
		}
		t := ticketType(v, e.TicketType)
		if t == nil {
			return inconsistent(rec, "event %s has no ticket type %q", v.ID, e.TicketType)
		}
		// The event decides once per booking, so a hold is new. Only the
		// batch is checked: a store lookup per SeatsHeld would cost the
		// hot path a read for a case the write side rules out.
		if w, seen := b.holds[e.BookingID]; seen && !w.released {
			return inconsistent(rec, "booking %s already holds seats", e.BookingID)
		}
		t.Held += e.Quantity
		t.Available = readmodels.Available(t.Capacity, t.Held, t.Sold)
		w, seen := b.holds[e.BookingID]
		if !seen {
			w = &holdWork{}
			b.holds[e.BookingID] = w
			b.order = append(b.order, e.BookingID)
		}
		// A hold released and held again within one batch keeps its
		// stored flag, so the store's old copy is overwritten.
		w.hold = SeatHold{BookingID: e.BookingID, EventID: v.ID, TicketType: t.Name, Quantity: e.Quantity}
		w.changed, w.released = true, false

	case event.SeatsSold:
		if v, err = b.event(ctx, rec); err != nil {
			return err
		}
		h, err := b.hold(ctx, e.BookingID)
		if err != nil {
			return err
		}
		if h == nil || h.hold.Sold || h.hold.EventID != v.ID {
			return inconsistent(rec, "booking %s holds no seats of event %s to sell", e.BookingID, v.ID)
		}
		t := ticketType(v, h.hold.TicketType)
		if t == nil {
			return inconsistent(rec, "event %s has no ticket type %q", v.ID, h.hold.TicketType)
		}
		t.Held = max(t.Held-h.hold.Quantity, 0)
		t.Sold += h.hold.Quantity
		t.Available = readmodels.Available(t.Capacity, t.Held, t.Sold)
		h.hold.Sold, h.changed = true, true

	case event.SeatsReleased:
		if v, err = b.event(ctx, rec); err != nil {
			return err
		}
		h, err := b.hold(ctx, e.BookingID)
		if err != nil {
			return err
		}
		if h == nil || h.hold.EventID != v.ID {
			return inconsistent(rec, "booking %s holds no seats of event %s to release", e.BookingID, v.ID)
		}
		// A ticket type removed since had nothing held or sold (the
		// event refuses to remove it otherwise): nothing to give back.
		if t := ticketType(v, h.hold.TicketType); t != nil {
			if h.hold.Sold {
				t.Sold = max(t.Sold-h.hold.Quantity, 0)
			} else {
				t.Held = max(t.Held-h.hold.Quantity, 0)
			}
			t.Available = readmodels.Available(t.Capacity, t.Held, t.Sold)
		}
		h.released = true

	default:
		return nil
	}
	v.Position = rec.Position
	return nil
}

func setDetails(v *readmodels.EventView, d event.Details) {
	v.Name, v.Description, v.Venue = d.Name, d.Description, d.Venue
	v.StartsAt, v.EndsAt = d.StartsAt.UTC(), d.EndsAt.UTC()
	v.MaxPerBooking = d.MaxPerBooking
}

// mergeTicketTypes returns the ticket types of an update, each keeping the
// seats held and sold of the old type of the same name: the update carries
// capacities and prices, the holds and sales are the projection's.
func mergeTicketTypes(old []readmodels.TicketTypeView, types []event.TicketType) []readmodels.TicketTypeView {
	out := make([]readmodels.TicketTypeView, len(types))
	for i, t := range types {
		n := readmodels.TicketTypeView{Name: t.Name, Price: t.Price, Capacity: t.Capacity}
		for _, o := range old {
			if o.Name == t.Name {
				n.Held, n.Sold = o.Held, o.Sold
				break
			}
		}
		n.Available = readmodels.Available(n.Capacity, n.Held, n.Sold)
		out[i] = n
	}
	return out
}

func ticketType(v *readmodels.EventView, name string) *readmodels.TicketTypeView {
	for i := range v.TicketTypes {
		if v.TicketTypes[i].Name == name {
			return &v.TicketTypes[i]
		}
	}
	return nil
}
