package httpapi

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/fault"
	"github.com/ticketd/ticketing/readmodels"
)

type createBookingRequest struct {
	EventID    string `json:"event_id"`
	TicketType string `json:"ticket_type"`
	Quantity   int    `json:"quantity"`
}

func (s *Server) createBooking(c *fiber.Ctx) error {
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	var req createBookingRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	var f fields
	eventID := f.uuidField("event_id", req.EventID)
	if req.TicketType == "" {
		f.add("ticket_type", "is required")
	}
	if req.Quantity < 1 || req.Quantity > booking.MaxQuantity {
		f.add("quantity", "must be between 1 and "+itoa(booking.MaxQuantity))
	}
	if err := f.err(); err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	if err := s.checkBookable(c, eventID, req.TicketType, req.Quantity); err != nil {
		return err
	}
	userID := claims(c).UserID
	id := uuid.New()
	if key != "" {
		// The id is derived from the key, so a retry after a lost answer,
		// or after a crash, finds the booking instead of placing another.
		id = commands.BookingIDFor(userID, key)
	}
	// The message id covers the body too: two racing requests with one key
	// and different bodies then conflict instead of both "succeeding".
	msg := commands.Msg{ID: es.DeriveID(id, fmt.Sprintf("place:%s:%s:%d", eventID, req.TicketType, req.Quantity)), CorrelationID: id}
	b, err := s.Bookings.Commands.Place(ctx, msg, commands.PlaceBooking{
		BookingID: id, UserID: userID, EventID: eventID, TicketType: req.TicketType, Quantity: req.Quantity,
	})
	if err != nil {
		return err
	}
	out := bookingFromState(&b)
	return accepted(c, "/bookings/"+id.String(), &out)
}

// checkBookable turns the obvious mistakes (no such event, no such ticket
// type, too many seats, a cancelled event) into an immediate answer. The
// event aggregate still decides; this only spares the client a rejection.
func (s *Server) checkBookable(c *fiber.Ctx, eventID uuid.UUID, ticketType string, quantity int) error {
	if s.Bookings.Events == nil {
		return nil
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	var ev readmodels.EventView
	err := s.fresh(ctx, func() (err error) {
		ev, err = s.Bookings.Events.Event(ctx, eventID)
		return err
	})
	if errors.Is(err, fault.ErrNotFound) {
		return invalid(fieldError{Field: "event_id", Message: "no event has this id"})
	}
	if err != nil {
		return err
	}
	if ev.Status == event.StatusCancelled {
		return newError(fiber.StatusConflict, typeConflict, "Conflict", "The event is cancelled.")
	}
	names := make([]string, len(ev.TicketTypes))
	for i, t := range ev.TicketTypes {
		names[i] = t.Name
	}
	if !slices.Contains(names, ticketType) {
		return invalid(fieldError{Field: "ticket_type", Message: "must be one of the event's ticket types: " + strings.Join(names, ", ")})
	}
	if quantity > ev.MaxPerBooking {
		return invalid(fieldError{Field: "quantity", Message: "must be at most " + itoa(ev.MaxPerBooking) + " for this event"})
	}
	return nil
}

type cancelBookingRequest struct {
	BookingID string `json:"booking_id"`
	Reason    string `json:"reason"`
}

func (s *Server) cancelBooking(c *fiber.Ctx) error {
	var req cancelBookingRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	var f fields
	id := f.uuidField("booking_id", req.BookingID)
	if len(req.Reason) > 500 {
		f.add("reason", "must be at most 500 characters")
	}
	if err := f.err(); err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	b, err := s.Bookings.Commands.Cancel(ctx, commands.Msg{ID: uuid.New(), CorrelationID: id}, commands.CancelBooking{
		BookingID: id, Reason: req.Reason, CallerID: claims(c).UserID, AsAdmin: isAdmin(c),
	})
	if err != nil {
		return err
	}
	out := bookingFromState(&b)
	return accepted(c, "/bookings/"+id.String(), &out)
}

func (s *Server) getBooking(c *fiber.Ctx) error {
	id, err := pathID(c, "booking")
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	var b readmodels.BookingView
	err = s.fresh(ctx, func() (err error) {
		b, err = s.Bookings.Reads.Booking(ctx, id)
		return err
	})
	if err != nil {
		return err
	}
	if b.UserID != claims(c).UserID && !isAdmin(c) {
		return notFound("No booking has that id.")
	}
	out := bookingFromView(&b)
	return sendJSON(c, &out)
}

func (s *Server) listBookings(c *fiber.Ctx) error {
	ctx, cancel := s.ctx(c)
	defer cancel()
	page, err := s.Bookings.Reads.ListUserBookings(ctx, claims(c).UserID, readmodels.ListRequest{Limit: c.Query("limit"), Cursor: c.Query("cursor")})
	if err != nil {
		return err
	}
	out := bookingListJSON{Items: make([]bookingJSON, len(page.Items)), NextCursor: optString(page.NextCursor)}
	for i := range page.Items {
		out.Items[i] = bookingFromView(&page.Items[i])
	}
	return sendJSON(c, &out)
}
