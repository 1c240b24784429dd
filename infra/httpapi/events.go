package httpapi

import (
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/readmodels"
)

type ticketTypeRequest struct {
	Name     string `json:"name"`
	Price    *int64 `json:"price"`
	Capacity *int   `json:"capacity"`
}

type eventRequest struct {
	Name          *string             `json:"name"`
	Description   *string             `json:"description"`
	Venue         *string             `json:"venue"`
	StartsAt      *string             `json:"starts_at"`
	EndsAt        *string             `json:"ends_at"`
	Currency      *string             `json:"currency"`
	MaxPerBooking *int                `json:"max_per_booking"`
	TicketTypes   []ticketTypeRequest `json:"ticket_types"`
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (s *Server) createEvent(c *fiber.Ctx) error {
	var req eventRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	var f fields
	startsAt := f.timeField("starts_at", req.StartsAt)
	endsAt := f.timeField("ends_at", req.EndsAt)
	if req.StartsAt == nil {
		f.add("starts_at", "is required")
	}
	if req.Currency == nil {
		f.add("currency", "is required")
	}
	types := make([]event.TicketType, len(req.TicketTypes))
	for i, t := range req.TicketTypes {
		field := "ticket_types[" + itoa(i) + "]"
		if t.Price == nil {
			f.add(field+".price", "is required")
		}
		if t.Capacity == nil {
			f.add(field+".capacity", "is required")
		}
		types[i] = event.TicketType{Name: t.Name, Price: deref(t.Price), Capacity: deref(t.Capacity)}
	}
	if err := f.err(); err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	id := uuid.New()
	st, err := s.Events.Commands.CreateEvent(ctx, commands.NewMsg(), commands.CreateEvent{
		EventID: id,
		Details: event.Details{
			Name: deref(req.Name), Description: deref(req.Description), Venue: deref(req.Venue),
			StartsAt: deref(startsAt), EndsAt: deref(endsAt), MaxPerBooking: deref(req.MaxPerBooking),
		},
		Currency:    deref(req.Currency),
		TicketTypes: types,
	})
	if err != nil {
		return err
	}
	c.Location("/events/" + id.String())
	return c.Status(fiber.StatusCreated).JSON(eventFromState(&st))
}

func (s *Server) updateEvent(c *fiber.Ctx) error {
	id, err := pathID(c, "event")
	if err != nil {
		return err
	}
	var req eventRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	var f fields
	if req.Currency != nil {
		f.add("currency", "cannot be changed: prices are in it")
	}
	cmd := commands.UpdateEvent{
		EventID: id, Name: req.Name, Description: req.Description, Venue: req.Venue,
		StartsAt: f.timeField("starts_at", req.StartsAt), EndsAt: f.timeField("ends_at", req.EndsAt),
		MaxPerBooking: req.MaxPerBooking,
	}
	for _, t := range req.TicketTypes {
		cmd.TicketTypes = append(cmd.TicketTypes, commands.TicketTypeChange{Name: t.Name, Price: t.Price, Capacity: t.Capacity})
	}
	if err := f.err(); err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	st, err := s.Events.Commands.UpdateEvent(ctx, commands.NewMsg(), cmd)
	if err != nil {
		return err
	}
	return c.JSON(eventFromState(&st))
}

type cancelEventRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) deleteEvent(c *fiber.Ctx) error {
	id, err := pathID(c, "event")
	if err != nil {
		return err
	}
	var req cancelEventRequest
	if len(c.Body()) > 0 {
		if err := decode(c, &req); err != nil {
			return err
		}
	}
	if req.Reason == "" {
		req.Reason = "cancelled_by_organiser"
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	st, err := s.Events.Commands.CancelEvent(ctx, commands.NewMsg(), commands.CancelEvent{EventID: id, Reason: req.Reason})
	if err != nil {
		return err
	}
	return accepted(c, "/events/"+id.String(), eventFromState(&st))
}

func (s *Server) getEvent(c *fiber.Ctx) error {
	id, err := pathID(c, "event")
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	var v readmodels.EventView
	err = s.fresh(ctx, func() (err error) {
		v, err = s.Events.Reads.Event(ctx, id)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(eventFromView(&v))
}
