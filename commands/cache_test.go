package commands_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/fault"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/infra/eventstore/memory"
)

// sent records the commands a saga sends.
type sent struct {
	mu   sync.Mutex
	cmds []commands.Command
}

func (s *sent) Send(_ context.Context, _ commands.Msg, cmd commands.Command) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmds = append(s.cmds, cmd)
	return nil
}

func (s *sent) refunds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.cmds {
		if _, ok := c.(commands.RefundPayment); ok {
			n++
		}
	}
	return n
}

// Two handler instances over one store, as two processes sharing a store
// would be: each caches the bookings it wrote, so each may hold a stale
// state of a booking the other changed. No decision may be taken on it.
func TestCachedBookingsNeverDecideOnAStaleState(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	reg := commands.NewRegistry()
	clk := &clock{now: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	a := commands.NewBookings(commands.NewRepository(store, reg, clk.Now), 10*time.Minute)
	b := commands.NewBookings(commands.NewRepository(store, reg, clk.Now), 10*time.Minute)
	sentA := &sent{}
	sagaA := commands.NewBookingSaga(a, sentA, slog.New(slog.DiscardHandler))
	sagaB := commands.NewBookingSaga(b, &sent{}, slog.New(slog.DiscardHandler))

	place := func(h *commands.Bookings) (uuid.UUID, uuid.UUID) {
		t.Helper()
		id, user := uuid.New(), uuid.New()
		if _, err := h.Place(ctx, commands.NewMsg(), commands.PlaceBooking{BookingID: id, UserID: user, EventID: uuid.New(), TicketType: "regular", Quantity: 1}); err != nil {
			t.Fatal(err)
		}
		return id, user
	}
	react := func(s *commands.BookingSaga, rec *es.Record, p es.Payload) {
		t.Helper()
		if err := s.React(ctx, rec, p); err != nil {
			t.Fatal(err)
		}
	}
	held := func(s *commands.BookingSaga, id uuid.UUID) {
		t.Helper()
		react(s, &es.Record{ID: uuid.New(), AggregateID: uuid.New(), Type: event.TypeSeatsHeld},
			event.SeatsHeld{BookingID: id, TicketType: "regular", Quantity: 1, UnitPrice: 100, Currency: "IDR", At: clk.Now()})
	}
	paidRecord := func(id uuid.UUID) (*es.Record, es.Payload) {
		return &es.Record{ID: uuid.New(), AggregateID: uuid.New(), Type: payment.TypeSucceeded},
			payment.Settled{BookingID: id, GatewayRef: "ref", At: clk.Now()}
	}
	cancel := func(h *commands.Bookings, id, user uuid.UUID) (commands.BookingState, error) {
		return h.Cancel(ctx, commands.NewMsg(), commands.CancelBooking{BookingID: id, CallerID: user})
	}
	status := func(id uuid.UUID) booking.Status {
		t.Helper()
		s, err := b.Booking(ctx, id, uuid.Nil, true)
		if err != nil {
			t.Fatal(err)
		}
		return s.Status
	}

	t.Run("a recorded decision on a stale state conflicts and is decided again", func(t *testing.T) {
		id, user := place(a)
		held(sagaA, id) // a caches awaiting_payment
		if _, err := cancel(b, id, user); err != nil {
			t.Fatal(err)
		}
		refunds := sentA.refunds()
		rec, p := paidRecord(id)
		react(sagaA, rec, p) // a would confirm, but the booking is cancelled: refund
		if sentA.refunds() != refunds+1 || status(id) != booking.StatusCancelled {
			t.Fatalf("a payment for a booking cancelled elsewhere: %d refunds, status %s", sentA.refunds()-refunds, status(id))
		}
	})

	t.Run("a no-op on a stale state is checked against the store", func(t *testing.T) {
		id, user := place(a)
		held(sagaA, id)
		rec, p := paidRecord(id)
		react(sagaA, rec, p) // a caches confirmed
		if _, err := cancel(b, id, user); err != nil {
			t.Fatal(err)
		}
		// Redelivered, the payment is a no-op on a's cached state
		// (confirmed by this very payment) but refused by the stored one:
		// the booking was cancelled, and its payment must go back.
		refunds := sentA.refunds()
		react(sagaA, rec, p)
		if sentA.refunds() != refunds+1 {
			t.Fatal("a redelivered payment was taken as confirmed on a stale state")
		}
	})

	t.Run("a refusal on a stale state is checked against the store", func(t *testing.T) {
		id, user := place(a) // a caches pending, which cannot be cancelled
		held(sagaB, id)      // awaiting payment, which can
		st, err := cancel(a, id, user)
		if err != nil || st.Status != booking.StatusCancelled {
			t.Fatalf("cancel = %s, %v; want cancelled", st.Status, err)
		}
		if _, err := cancel(a, id, user); !errors.Is(err, fault.ErrConflict) {
			t.Fatalf("cancelling twice: %v, want a conflict", err)
		}
	})
}
