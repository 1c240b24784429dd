package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/event"
)

// CancelEvent calls an event off. The booking saga then cancels every
// booking that held or bought seats, refunding the paid ones.
type CancelEvent struct {
	EventID uuid.UUID
	Reason  string
}

// CancelEvent is idempotent: cancelling a cancelled event changes nothing
// and answers its state.
func (d *EventDesk) CancelEvent(ctx context.Context, msg Msg, cmd CancelEvent) (EventState, error) {
	var state EventState
	err := d.do(ctx, cmd.EventID, msg, func(e *event.Event, now time.Time) error {
		if err := e.Cancel(cmd.Reason, now); err != nil {
			return err
		}
		state = eventState(e)
		return nil
	})
	return state, err
}
