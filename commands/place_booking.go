package commands

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
)

// PlaceBooking asks for seats. The booking saga takes it from there: it
// asks the event to hold the seats and moves the booking on.
type PlaceBooking struct {
	BookingID  uuid.UUID
	UserID     uuid.UUID
	EventID    uuid.UUID
	TicketType string
	Quantity   int
}

// Place records a pending booking. The stream must not exist yet: placing
// the same BookingID again (a retried request with the same idempotency
// key) returns the booking as it is now, unless the request differs, which
// is ErrIdempotencyMismatch.
func (h *Bookings) Place(ctx context.Context, msg Msg, cmd PlaceBooking) (BookingState, error) {
	b, err := booking.Place(cmd.BookingID, cmd.UserID, cmd.EventID, cmd.TicketType, cmd.Quantity, h.repo.clock().UTC())
	if err != nil {
		return BookingState{}, err
	}
	_, err = h.repo.Save(ctx, booking.Stream(cmd.BookingID), cmd.BookingID, b, msg)
	if errors.Is(err, es.ErrConflict) || errors.Is(err, es.ErrDuplicateEventID) {
		existing, loadErr := h.load(ctx, cmd.BookingID)
		if loadErr != nil {
			return BookingState{}, loadErr
		}
		if existing.UserID() != cmd.UserID || existing.EventID() != cmd.EventID ||
			existing.TicketType() != cmd.TicketType || existing.Quantity() != cmd.Quantity {
			return BookingState{}, ErrIdempotencyMismatch
		}
		return bookingState(existing), nil
	}
	if err != nil {
		return BookingState{}, err
	}
	return bookingState(b), nil
}
