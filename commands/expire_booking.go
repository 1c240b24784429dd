package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
)

// ExpireBooking ends a hold whose deadline passed unpaid. A booking that
// moved on in the meantime is left alone.
func (h *Bookings) ExpireBooking(ctx context.Context, msg Msg, id uuid.UUID) error {
	_, err := h.change(ctx, id, msg, func(b *booking.Booking, now time.Time) error {
		return b.Expire(now)
	})
	return err
}
