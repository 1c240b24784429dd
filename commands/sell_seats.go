package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/event"
)

// SellSeats turns a confirmed booking's held seats into sold ones.
type SellSeats struct {
	EventID   uuid.UUID
	BookingID uuid.UUID
}

// SellSeats decides the sale on the event's writer.
func (d *EventDesk) SellSeats(ctx context.Context, msg Msg, cmd SellSeats) error {
	return d.do(ctx, cmd.EventID, msg, func(e *event.Event, now time.Time) error {
		return e.Sell(cmd.BookingID, now)
	})
}
