package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/event"
)

// HoldSeats asks the events service to hold seats for a booking. The answer
// is an event on the event's stream: SeatsHeld or SeatsRefused.
type HoldSeats struct {
	EventID    uuid.UUID
	BookingID  uuid.UUID
	TicketType string
	Quantity   int
}

// HoldSeats decides the hold on the event's writer.
func (d *EventDesk) HoldSeats(ctx context.Context, msg Msg, cmd HoldSeats) error {
	return d.do(ctx, cmd.EventID, msg, func(e *event.Event, now time.Time) error {
		e.Hold(cmd.BookingID, cmd.TicketType, cmd.Quantity, now)
		return nil
	})
}
