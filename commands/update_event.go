package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/event"
)

// UpdateEvent replaces an event's details and ticket types.
type UpdateEvent struct {
	EventID     uuid.UUID
	Details     event.Details
	TicketTypes []event.TicketType
}

// UpdateEvent goes through the event's writer, so that it never races the
// holds of a sale in progress.
func (d *EventDesk) UpdateEvent(ctx context.Context, msg Msg, cmd UpdateEvent) (EventState, error) {
	var state EventState
	err := d.do(ctx, cmd.EventID, msg, func(e *event.Event, now time.Time) error {
		if err := e.Update(cmd.Details, cmd.TicketTypes, now); err != nil {
			return err
		}
		state = eventState(e)
		return nil
	})
	return state, err
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
