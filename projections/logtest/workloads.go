package logtest

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/event"
)

// The logs the projection benchmarks of every read store replay, so that
// their figures compare the stores on the same records.

var workloadTime = time.Date(2030, 3, 1, 10, 0, 0, 0, time.UTC)

// HotEvent is a flash sale as the events projector sees it: one event
// created with room for everyone, then n seats held on it one booking at
// a time (n+1 records). reg must know the Event aggregate's events.
func HotEvent(tb testing.TB, reg *es.Registry, n, batchSize int) (*Log, uuid.UUID) {
	log := New(tb, reg)
	log.BatchSize = batchSize
	ev := uuid.New()
	payloads := []es.Payload{event.Created{
		EventID: ev, Currency: "IDR", At: workloadTime,
		Details:     event.Details{Name: "Hot", StartsAt: workloadTime.Add(time.Hour), MaxPerBooking: 10},
		TicketTypes: []event.TicketType{{Name: "A", Price: 1, Capacity: 10_000_000}},
	}}
	for range n {
		payloads = append(payloads, event.SeatsHeld{BookingID: uuid.New(), TicketType: "A", Quantity: 1, At: workloadTime})
	}
	log.Append(event.Stream(ev), ev, payloads...)
	return log, ev
}

// BookingsAwaitingPayment is n bookings placed, then each moved to
// awaiting payment (2n records): the second half changes views stored by
// the first. reg must know the Booking aggregate's events.
func BookingsAwaitingPayment(tb testing.TB, reg *es.Registry, n, batchSize int) (*Log, []uuid.UUID) {
	log := New(tb, reg)
	log.BatchSize = batchSize
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
		log.Append(booking.Stream(ids[i]), ids[i], booking.Placed{BookingID: ids[i], UserID: uuid.New(), EventID: uuid.New(), TicketType: "A", Quantity: 1, At: workloadTime})
	}
	for _, id := range ids {
		log.Append(booking.Stream(id), id, booking.AwaitingPayment{UnitPrice: 1, Amount: 1, Currency: "IDR", ExpiresAt: workloadTime.Add(time.Minute), At: workloadTime})
	}
	return log, ids
}
