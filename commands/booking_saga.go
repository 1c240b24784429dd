package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/fault"
	"github.com/ticketd/ticketing/domain/payment"
)

// ReasonEventNotFound rejects a booking for an event that does not exist.
const ReasonEventNotFound = "event_not_found"

// BookingSaga is the process manager that carries a booking across the
// services: it reacts to facts on the log and sends the commands that come
// next, and compensates when a step cannot be taken.
//
//	booking placed            → events: hold seats (an unknown event answers
//	                            with bookings: reject booking)
//	seats held                → booking awaits payment (or, if the booking
//	                            already ended, events: release seats)
//	seats refused             → booking rejected
//	payment succeeded         → booking confirmed (or, if the booking can no
//	                            longer be confirmed, payments: refund)
//	booking confirmed         → events: sell seats
//	booking expired           → events: release seats
//	booking cancelled         → events: release seats, and payments: refund
//	                            when it was confirmed
//	event cancelled           → every live booking on it cancelled
//
// It is owned by the bookings service. Delivery is at least once; every
// reaction derives its message ids from the record it reacts to, and every
// decision it asks for is idempotent, so a redelivered record changes
// nothing.
type BookingSaga struct {
	bookings *Bookings
	send     Sender
	log      *slog.Logger
	// FanOut bounds how many bookings of a cancelled event are cancelled
	// at once.
	FanOut int
}

// NewBookingSaga returns the saga acting on bookings and sending commands
// to the other services through send.
func NewBookingSaga(bookings *Bookings, send Sender, log *slog.Logger) *BookingSaga {
	return &BookingSaga{bookings: bookings, send: send, log: log, FanOut: 32}
}

// Name identifies the saga's subscription (and its checkpoint).
func (s *BookingSaga) Name() string { return "booking-saga" }

// Filter selects the records the saga reacts to.
func (s *BookingSaga) Filter() es.Filter {
	return es.Filter{Types: []string{
		booking.TypePlaced, booking.TypeConfirmed, booking.TypeExpired, booking.TypeCancelled,
		event.TypeSeatsHeld, event.TypeSeatsRefused, event.TypeCancelled,
		payment.TypeSucceeded,
	}}
}

// React handles one record.
func (s *BookingSaga) React(ctx context.Context, rec *es.Record, p es.Payload) error {
	switch e := p.(type) {
	case booking.Placed:
		return s.send.Send(ctx, Caused(rec, "hold-seats"), HoldSeats{EventID: e.EventID, BookingID: e.BookingID, TicketType: e.TicketType, Quantity: e.Quantity})
	case event.SeatsHeld:
		return s.seatsHeld(ctx, rec, e)
	case event.SeatsRefused:
		_, err := s.bookings.change(ctx, e.BookingID, Caused(rec, "reject"), func(b *booking.Booking, now time.Time) error {
			return b.Reject(e.Reason, now)
		})
		if errors.Is(err, fault.ErrConflict) {
			return nil // the booking ended some other way; nothing was held
		}
		return err
	case payment.Settled:
		return s.paymentSucceeded(ctx, rec, e)
	case booking.Confirmed:
		// Only the booking's event is read, which never changes.
		b, _, err := s.bookings.cached(ctx, rec.AggregateID)
		if err != nil {
			return err
		}
		return s.send.Send(ctx, Caused(rec, "sell-seats"), SellSeats{EventID: b.EventID(), BookingID: b.ID()})
	case booking.Expired:
		return s.release(ctx, rec, rec.AggregateID)
	case booking.Cancelled:
		if err := s.release(ctx, rec, rec.AggregateID); err != nil {
			return err
		}
		if e.Refund {
			return s.send.Send(ctx, Caused(rec, "refund"), RefundPayment{PaymentID: e.PaymentID, BookingID: rec.AggregateID, Reason: "booking cancelled: " + e.Reason})
		}
		return nil
	case event.Cancelled:
		return s.eventCancelled(ctx, rec, e)
	}
	return nil
}

func (s *BookingSaga) seatsHeld(ctx context.Context, rec *es.Record, e event.SeatsHeld) error {
	_, err := s.bookings.change(ctx, e.BookingID, Caused(rec, "await-payment"), func(b *booking.Booking, now time.Time) error {
		return b.AwaitPayment(e.UnitPrice, e.Currency, now.Add(s.bookings.holdTTL), now)
	})
	if errors.Is(err, fault.ErrConflict) || errors.Is(err, ErrBookingNotFound) {
		// The booking ended before its seats were held (its event was
		// cancelled meanwhile, say): give the seats back.
		return s.send.Send(ctx, Caused(rec, "release-unwanted"), ReleaseSeats{EventID: rec.AggregateID, BookingID: e.BookingID})
	}
	return err
}

func (s *BookingSaga) paymentSucceeded(ctx context.Context, rec *es.Record, e payment.Settled) error {
	paymentID := rec.AggregateID
	_, err := s.bookings.change(ctx, e.BookingID, Caused(rec, "confirm"), func(b *booking.Booking, now time.Time) error {
		return b.Confirm(paymentID, now)
	})
	if errors.Is(err, fault.ErrConflict) || errors.Is(err, ErrBookingNotFound) {
		// Paid too late (expired or cancelled meanwhile) or twice: the money
		// goes back.
		return s.send.Send(ctx, Caused(rec, "refund-late"), RefundPayment{PaymentID: paymentID, BookingID: e.BookingID, Reason: "booking can no longer be confirmed"})
	}
	return err
}

func (s *BookingSaga) release(ctx context.Context, rec *es.Record, bookingID uuid.UUID) error {
	// Only the booking's event is read, which never changes.
	b, _, err := s.bookings.cached(ctx, bookingID)
	if err != nil {
		return err
	}
	return s.send.Send(ctx, Caused(rec, "release-seats"), ReleaseSeats{EventID: b.EventID(), BookingID: bookingID})
}

// eventCancelled ends every booking the event listed, a bounded number at a
// time. Bookings still pending when the event was cancelled are refused by
// the event when their hold arrives, and so are rejected without help.
func (s *BookingSaga) eventCancelled(ctx context.Context, rec *es.Record, e event.Cancelled) error {
	sem := make(chan struct{}, max(1, s.FanOut))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, id := range e.Bookings {
		sem <- struct{}{}
		wg.Add(1)
		go func(id uuid.UUID) {
			defer func() { <-sem; wg.Done() }()
			_, err := s.bookings.change(ctx, id, Caused(rec, "cancel-for-event/"+id.String()), func(b *booking.Booking, now time.Time) error {
				return b.CancelForEvent(now)
			})
			if err != nil && !errors.Is(err, ErrBookingNotFound) {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("cancel booking %s for event %s: %w", id, rec.AggregateID, err)
				}
				mu.Unlock()
			}
		}(id)
	}
	wg.Wait()
	return firstErr
}

// Key groups records by booking, so that the records of one booking are
// handled in order even when they come from the event's or the payment's
// stream.
func (s *BookingSaga) Key(rec *es.Record, p es.Payload) uuid.UUID {
	switch e := p.(type) {
	case event.SeatsHeld:
		return e.BookingID
	case event.SeatsRefused:
		return e.BookingID
	case payment.Settled:
		return e.BookingID
	}
	return rec.AggregateID
}

// ReasonNotProcessed rejects a booking whose placement could not be
// carried through after every retry.
const ReasonNotProcessed = "not_processed"

// GiveUp compensates for a record the bus gives up on after bounded
// retries, so that no booking stays pending and no seat stays held because
// of one bad message:
//
//	booking placed     → the booking is rejected (no seats were held)
//	seats held         → the booking is rejected and the seats released
//	payment succeeded  → the payment is refunded (the booking will expire)
//
// Other reactions have nothing to undo; their dead letter is for an
// operator.
func (s *BookingSaga) GiveUp(ctx context.Context, rec *es.Record, p es.Payload, cause error) error {
	s.log.Error("booking saga gives up on a record", "type", rec.Type, "stream", rec.Stream, "err", cause)
	reject := func(id uuid.UUID) error {
		_, err := s.bookings.change(ctx, id, Caused(rec, "give-up-reject"), func(b *booking.Booking, now time.Time) error {
			return b.Reject(ReasonNotProcessed, now)
		})
		if errors.Is(err, fault.ErrConflict) {
			return nil // it moved on by itself meanwhile
		}
		return err
	}
	switch e := p.(type) {
	case booking.Placed:
		return reject(e.BookingID)
	case event.SeatsHeld:
		if err := reject(e.BookingID); err != nil {
			return err
		}
		return s.send.Send(ctx, Caused(rec, "give-up-release"), ReleaseSeats{EventID: rec.AggregateID, BookingID: e.BookingID})
	case payment.Settled:
		return s.send.Send(ctx, Caused(rec, "give-up-refund"), RefundPayment{PaymentID: rec.AggregateID, BookingID: e.BookingID, Reason: "booking could not be confirmed"})
	}
	return nil
}
