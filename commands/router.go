package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ticketd/ticketing/domain/es"
)

// Command is a request from one service to another. Its type name is a
// stable constant "<service>.<verb>"; the service part names the service
// (and, on Kafka, the command topic) that handles it.
type Command interface {
	CommandType() string
}

// Names of the commands that cross service boundaries.
const (
	TypeHoldSeats     = "events.hold_seats"
	TypeSellSeats     = "events.sell_seats"
	TypeReleaseSeats  = "events.release_seats"
	TypeRefundPayment = "payments.refund_payment"
	TypeRejectBooking = "bookings.reject_booking"
)

func (HoldSeats) CommandType() string     { return TypeHoldSeats }
func (SellSeats) CommandType() string     { return TypeSellSeats }
func (ReleaseSeats) CommandType() string  { return TypeReleaseSeats }
func (RefundPayment) CommandType() string { return TypeRefundPayment }
func (RejectBooking) CommandType() string { return TypeRejectBooking }

// Service returns the service that handles commands named typ.
func Service(typ string) string {
	svc, _, _ := strings.Cut(typ, ".")
	return svc
}

// Sender sends a command to the service that handles it. The process
// managers send through it; it is the bus port's command half.
type Sender interface {
	Send(ctx context.Context, msg Msg, cmd Command) error
}

// Router dispatches commands to the handlers this process runs. In-process
// it is the Sender itself (a call is delivered once it returns, and the
// sender's own checkpoint makes that at-least-once); on Kafka, the command
// topics' consumers dispatch through it.
type Router struct {
	mu       sync.RWMutex
	handlers map[string]func(context.Context, Msg, Command) error
}

// NewRouter returns a router with no handlers.
func NewRouter() *Router {
	return &Router{handlers: map[string]func(context.Context, Msg, Command) error{}}
}

// Handle routes commands named typ to fn.
func (r *Router) Handle(typ string, fn func(context.Context, Msg, Command) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handlers[typ] = fn
}

// Handles reports whether this process handles commands named typ.
func (r *Router) Handles(typ string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.handlers[typ]
	return ok
}

// Send dispatches cmd to its handler and returns the handler's error.
func (r *Router) Send(ctx context.Context, msg Msg, cmd Command) error {
	r.mu.RLock()
	fn, ok := r.handlers[cmd.CommandType()]
	r.mu.RUnlock()
	if !ok {
		return fmt.Errorf("commands: no handler for %s in this process", cmd.CommandType())
	}
	return fn(ctx, msg, cmd)
}

// RouteEvents routes the events service's commands to desk. A hold for an
// event that does not exist has no stream to record its refusal on, so the
// events service answers it with a command to the bookings service
// (through replies) to reject the booking.
func (r *Router) RouteEvents(desk *EventDesk, replies Sender) {
	r.Handle(TypeHoldSeats, func(ctx context.Context, m Msg, c Command) error {
		hold := c.(HoldSeats)
		err := desk.HoldSeats(ctx, m, hold)
		if errors.Is(err, ErrEventNotFound) {
			reply := Msg{ID: es.DeriveID(m.ID, "reject-unknown-event"), CorrelationID: m.CorrelationID, Meta: m.Meta}
			return replies.Send(ctx, reply, RejectBooking{BookingID: hold.BookingID, Reason: ReasonEventNotFound})
		}
		return err
	})
	r.Handle(TypeSellSeats, func(ctx context.Context, m Msg, c Command) error { return desk.SellSeats(ctx, m, c.(SellSeats)) })
	r.Handle(TypeReleaseSeats, func(ctx context.Context, m Msg, c Command) error { return desk.ReleaseSeats(ctx, m, c.(ReleaseSeats)) })
}

// RouteBookings routes the bookings service's commands to b.
func (r *Router) RouteBookings(b *Bookings) {
	r.Handle(TypeRejectBooking, func(ctx context.Context, m Msg, c Command) error { return b.RejectBooking(ctx, m, c.(RejectBooking)) })
}

// RoutePayments routes the payments service's commands to p.
func (r *Router) RoutePayments(p *Payments) {
	r.Handle(TypeRefundPayment, func(ctx context.Context, m Msg, c Command) error { return p.Refund(ctx, m, c.(RefundPayment)) })
}

var commandDecoders = map[string]func([]byte) (Command, error){
	TypeHoldSeats:     decodeAs[HoldSeats],
	TypeSellSeats:     decodeAs[SellSeats],
	TypeReleaseSeats:  decodeAs[ReleaseSeats],
	TypeRefundPayment: decodeAs[RefundPayment],
	TypeRejectBooking: decodeAs[RejectBooking],
}

func decodeAs[T Command](data []byte) (Command, error) {
	var c T
	err := json.Unmarshal(data, &c)
	return c, err
}

// DecodeCommand decodes a command of type typ from JSON, the form in which
// commands travel between processes.
func DecodeCommand(typ string, data []byte) (Command, error) {
	decode, ok := commandDecoders[typ]
	if !ok {
		return nil, fmt.Errorf("commands: unknown command type %q", typ)
	}
	cmd, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("commands: decode %s: %w", typ, err)
	}
	return cmd, nil
}
