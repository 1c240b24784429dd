package commands

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/fault"
)

// RejectBooking asks the bookings service to reject a pending booking that
// another service could not act on (its event does not exist, say).
type RejectBooking struct {
	BookingID uuid.UUID
	Reason    string
}

// RejectBooking rejects the booking if it is still pending; a booking that
// moved on meanwhile is left alone.
func (h *Bookings) RejectBooking(ctx context.Context, msg Msg, cmd RejectBooking) error {
	_, err := h.change(ctx, cmd.BookingID, msg, func(b *booking.Booking, now time.Time) error {
		return b.Reject(cmd.Reason, now)
	})
	if errors.Is(err, fault.ErrConflict) {
		return nil
	}
	return err
}
