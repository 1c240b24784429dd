package commands

import (
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/event"
)

// EventState is an event as its last command left it: what a command's
// response shows before the read models have caught up.
type EventState struct {
	ID          uuid.UUID
	Details     event.Details
	Currency    string
	Status      event.Status
	TicketTypes []event.TicketTypeState
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func eventState(e *event.Event) EventState {
	return EventState{
		ID: e.ID(), Details: e.Details(), Currency: e.Currency(), Status: e.Status(),
		TicketTypes: e.TicketTypes(), CreatedAt: e.CreatedAt(), UpdatedAt: e.UpdatedAt(),
	}
}
