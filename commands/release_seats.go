package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/event"
)

// ReleaseSeats gives back the seats of a booking that expired or was
// cancelled (or that ended before its hold was recorded).
type ReleaseSeats struct {
	EventID   uuid.UUID
	BookingID uuid.UUID
}

// ReleaseSeats decides the release on the event's writer; releasing
// nothing is a no-op.
func (d *EventDesk) ReleaseSeats(ctx context.Context, msg Msg, cmd ReleaseSeats) error {
	return d.do(ctx, cmd.EventID, msg, func(e *event.Event, now time.Time) error {
		e.Release(cmd.BookingID, now)
		return nil
	})
}
