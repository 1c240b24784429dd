package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/event"
)

// CreateEvent schedules a new event.
type CreateEvent struct {
	EventID     uuid.UUID
	Details     event.Details
	Currency    string
	TicketTypes []event.TicketType
}

// CreateEvent decides and stores a new event. The stream must not exist,
// so retrying with the same EventID cannot create two.
func (d *EventDesk) CreateEvent(ctx context.Context, msg Msg, cmd CreateEvent) (EventState, error) {
	e, err := event.Create(cmd.EventID, cmd.Details, cmd.Currency, cmd.TicketTypes, d.repo.clock().UTC())
	if err != nil {
		return EventState{}, err
	}
	if _, err := d.repo.Save(ctx, event.Stream(cmd.EventID), cmd.EventID, e, msg); err != nil {
		return EventState{}, err
	}
	return eventState(e), nil
}
