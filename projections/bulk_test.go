package projections_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

// bulkBookings is a bookings store that reads many views at once, and
// counts how views were read.
type bulkBookings struct {
	memBookings
	single, bulk *atomic.Int64
}

func (s bulkBookings) Booking(ctx context.Context, id uuid.UUID) (readmodels.BookingView, bool, error) {
	s.single.Add(1)
	return s.memBookings.Booking(ctx, id)
}

func (s bulkBookings) Bookings(_ context.Context, ids []uuid.UUID) (map[uuid.UUID]readmodels.BookingView, error) {
	s.bulk.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	return those(s.bookings, ids), nil
}

type bulkPayments struct {
	memPayments
	single, bulk *atomic.Int64
}

func (s bulkPayments) Payment(ctx context.Context, id uuid.UUID) (readmodels.PaymentView, bool, error) {
	s.single.Add(1)
	return s.memPayments.Payment(ctx, id)
}

func (s bulkPayments) Payments(_ context.Context, ids []uuid.UUID) (map[uuid.UUID]readmodels.PaymentView, error) {
	s.bulk.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	return those(s.payments, ids), nil
}

// those returns the views of ids that views holds, as a bulk read does.
func those[V any](views map[uuid.UUID]V, ids []uuid.UUID) map[uuid.UUID]V {
	out := make(map[uuid.UUID]V, len(ids))
	for _, id := range ids {
		if v, ok := views[id]; ok {
			out[id] = v
		}
	}
	return out
}

// TestBulkReadsGiveTheSameViewsInOneRoundTrip feeds the same log to a
// store read view by view and to one read in bulk: the views are equal,
// and the bulk store is never asked for one view at a time.
func TestBulkReadsGiveTheSameViewsInOneRoundTrip(t *testing.T) {
	e := newEnv(t)
	var ids, pays []uuid.UUID
	for i := range 40 {
		id, pay := uuid.New(), uuid.New()
		ids, pays = append(ids, id), append(pays, pay)
		e.log.Append(booking.Stream(id), id, booking.Placed{BookingID: id, UserID: usrID, EventID: evID, TicketType: "A", Quantity: 1, At: t0})
		if i%2 == 0 {
			e.log.Append(payment.Stream(pay), pay, payment.Requested{PaymentID: pay, BookingID: id, UserID: usrID, Amount: 100, Currency: "IDR", Token: "tok_success", At: t0})
		}
	}
	plain := newMemStore()
	var single, bulk, paySingle, payBulk atomic.Int64
	bulkStore := newMemStore()
	run := func() {
		t.Helper()
		for _, p := range []*projections.Projector{
			projections.NewBookings(e.log, e.reg, memBookings{plain}, nil),
			projections.NewBookings(e.log, e.reg, bulkBookings{memBookings{bulkStore}, &single, &bulk}, nil),
			projections.NewPayments(e.log, e.reg, memPayments{plain}, nil, nil),
			projections.NewPayments(e.log, e.reg, bulkPayments{memPayments{bulkStore}, &paySingle, &payBulk}, nil, nil),
		} {
			e.catchUp(p)
		}
	}
	run()
	// A later stretch of the log changes views committed before it: these
	// are the ones read back.
	later := t0.Add(time.Minute)
	for i, id := range ids {
		var p es.Payload = booking.AwaitingPayment{UnitPrice: 100, Amount: 100, Currency: "IDR", ExpiresAt: later.Add(time.Hour), At: later}
		e.log.Append(booking.Stream(id), id, p)
		if i%2 == 0 {
			e.log.Append(payment.Stream(pays[i]), pays[i], payment.Settled{BookingID: id, GatewayRef: "gw", At: later})
			e.log.Append(booking.Stream(id), id, booking.Confirmed{PaymentID: pays[i], At: later})
		}
	}
	run()

	if single.Load() != 0 || paySingle.Load() != 0 {
		t.Errorf("bulk stores asked for %d bookings and %d payments one at a time, want none", single.Load(), paySingle.Load())
	}
	if bulk.Load() == 0 || payBulk.Load() == 0 {
		t.Errorf("bulk reads: %d of bookings, %d of payments; want the views changed by a later batch read in bulk", bulk.Load(), payBulk.Load())
	}
	assertEqual(t, "bookings", bulkStore.bookings, plain.bookings)
	assertEqual(t, "payments", bulkStore.payments, plain.payments)
	if v := bulkStore.bookings[ids[0]]; v.Status != booking.StatusConfirmed || v.PaymentID != pays[0] {
		t.Fatalf("booking %s = %+v, want confirmed with its payment", ids[0], v)
	}
	if v := bulkStore.payments[pays[0]]; v.Status != payment.Succeeded {
		t.Fatalf("payment %s = %+v, want succeeded", pays[0], v)
	}
}
