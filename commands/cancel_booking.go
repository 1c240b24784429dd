package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
)

// CancelBooking ends a booking at its owner's or an admin's request. The
// saga then releases the seats and refunds a confirmed booking's payment.
type CancelBooking struct {
	BookingID uuid.UUID
	Reason    string
	// CallerID is who asks; unless AsAdmin, only the owner may cancel, and
	// anybody else is told the booking does not exist.
	CallerID uuid.UUID
	AsAdmin  bool
}

// Cancel decides the cancellation.
func (h *Bookings) Cancel(ctx context.Context, msg Msg, cmd CancelBooking) (BookingState, error) {
	reason := cmd.Reason
	if reason == "" {
		reason = "cancelled_by_customer"
		if cmd.AsAdmin {
			reason = "cancelled_by_admin"
		}
	}
	return h.change(ctx, cmd.BookingID, msg, func(b *booking.Booking, now time.Time) error {
		if !cmd.AsAdmin && b.UserID() != cmd.CallerID {
			return ErrBookingNotFound
		}
		return b.Cancel(reason, now)
	})
}
