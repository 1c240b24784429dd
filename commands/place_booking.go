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

// Place records a pending booking. Placing the same BookingID again (a
// retried request with the same idempotency key) places nothing and
// returns the booking as it is now, unless the request differs, which is
// ErrIdempotencyMismatch.
//
// The stream must not exist yet, so two racing requests cannot both place
// it; callers should derive msg.ID from the request's content as well as
// its key, so that racing requests with different bodies produce different
// event ids and the loser sees the conflict rather than an idempotent
// success.
//
// The placement is written first and read back only when the store cannot
// say it wrote it: a new booking (nearly every call, in a flash sale) costs
// one append and no read. A repeat finds its own records (an idempotent
// retry, not Written) or another request's (a conflict) and answers from
// the stored booking.
func (h *Bookings) Place(ctx context.Context, msg Msg, cmd PlaceBooking) (BookingState, error) {
	b, err := booking.Place(cmd.BookingID, cmd.UserID, cmd.EventID, cmd.TicketType, cmd.Quantity, h.repo.clock().UTC())
	if err != nil {
		return BookingState{}, err
	}
	res, err := h.repo.Save(ctx, booking.Stream(cmd.BookingID), cmd.BookingID, b, msg)
	switch {
	case err == nil && res.Written:
		h.recent.put(cmd.BookingID, b)
		return bookingState(b), nil
	case err == nil, errors.Is(err, es.ErrConflict), errors.Is(err, es.ErrDuplicateEventID):
		// Placed before, by this request (retried) or another one.
		existing, loadErr := h.load(ctx, cmd.BookingID)
		if loadErr != nil {
			return BookingState{}, loadErr
		}
		return samePlacement(existing, cmd)
	default:
		h.recent.drop(cmd.BookingID)
		return BookingState{}, err
	}
}

// samePlacement answers a repeated placement: the existing booking if the
// request is the same, ErrIdempotencyMismatch if it is not.
func samePlacement(existing *booking.Booking, cmd PlaceBooking) (BookingState, error) {
	if existing.UserID() != cmd.UserID || existing.EventID() != cmd.EventID ||
		existing.TicketType() != cmd.TicketType || existing.Quantity() != cmd.Quantity {
		return BookingState{}, ErrIdempotencyMismatch
	}
	return bookingState(existing), nil
}
