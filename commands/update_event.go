package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/fault"
)

// UpdateEvent changes some of an event's fields; nil leaves one as it is.
type UpdateEvent struct {
	EventID       uuid.UUID
	Name          *string
	Description   *string
	Venue         *string
	StartsAt      *time.Time
	EndsAt        *time.Time
	MaxPerBooking *int
	// TicketTypes are merged by name: an existing type takes the price and
	// capacity given (nil keeps its own), a new name adds a type (then both
	// are required). Types not named stay as they are.
	TicketTypes []TicketTypeChange
}

// TicketTypeChange is the change of one ticket type.
type TicketTypeChange struct {
	Name     string
	Price    *int64
	Capacity *int
}

// UpdateEvent merges the change into the event's current state and
// decides it on the event's writer, so it never races the holds of a sale
// in progress nor another update.
func (d *EventDesk) UpdateEvent(ctx context.Context, msg Msg, cmd UpdateEvent) (EventState, error) {
	var state EventState
	err := d.do(ctx, cmd.EventID, msg, func(e *event.Event, now time.Time) error {
		details, types, err := merge(e, cmd)
		if err != nil {
			return err
		}
		if err := e.Update(details, types, now); err != nil {
			return err
		}
		state = eventState(e)
		return nil
	})
	return state, err
}

func merge(e *event.Event, cmd UpdateEvent) (event.Details, []event.TicketType, error) {
	d := e.Details()
	set(&d.Name, cmd.Name)
	set(&d.Description, cmd.Description)
	set(&d.Venue, cmd.Venue)
	set(&d.StartsAt, cmd.StartsAt)
	set(&d.EndsAt, cmd.EndsAt)
	set(&d.MaxPerBooking, cmd.MaxPerBooking)

	current := e.TicketTypes()
	types := make([]event.TicketType, len(current))
	index := make(map[string]int, len(current))
	for i, t := range current {
		types[i] = t.TicketType
		index[t.Name] = i
	}
	var in fault.Input
	for i, ch := range cmd.TicketTypes {
		if j, ok := index[ch.Name]; ok {
			set(&types[j].Price, ch.Price)
			set(&types[j].Capacity, ch.Capacity)
			continue
		}
		field := fmt.Sprintf("ticket_types[%d]", i)
		in.Check(ch.Price != nil, field+".price", "is required for a new ticket type")
		in.Check(ch.Capacity != nil, field+".capacity", "is required for a new ticket type")
		if ch.Price != nil && ch.Capacity != nil {
			index[ch.Name] = len(types)
			types = append(types, event.TicketType{Name: ch.Name, Price: *ch.Price, Capacity: *ch.Capacity})
		}
	}
	return d, types, in.Err()
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// EventState returns an event's current state as its writer sees it.
func (d *EventDesk) EventState(ctx context.Context, id uuid.UUID) (EventState, error) {
	var state EventState
	err := d.do(ctx, id, Msg{}, func(e *event.Event, _ time.Time) error {
		state = eventState(e)
		return nil
	})
	return state, err
}
