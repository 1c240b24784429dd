package commands_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/fault"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/infra/bus/inproc"
)

var general = event.TicketType{Name: "general", Price: 150_000, Capacity: 100}

func TestSagaConfirmsAPaidBooking(t *testing.T) {
	s := newSystem(t)
	user := uuid.New()
	ev := s.createEvent(general)
	id := s.place(user, ev, "general", 2)

	b := s.waitStatus(id, booking.StatusAwaitingPayment)
	if b.Amount != 300_000 || b.Currency != "IDR" {
		t.Fatalf("amount = %d %s, want 300000 IDR", b.Amount, b.Currency)
	}
	if want := s.clock.Now().Add(holdTTL); !b.ExpiresAt.Equal(want) {
		t.Fatalf("expires_at = %v, want %v", b.ExpiresAt, want)
	}
	if got := s.seats(ev, "general"); got.Held != 2 || got.Available != 98 {
		t.Fatalf("seats after hold = %+v", got)
	}

	p := s.pay(id, user, "tok_success")
	if p.Status != payment.Processing || p.Amount != 300_000 {
		t.Fatalf("payment = %+v", p)
	}
	eventually(t, "the gateway is charged", func() bool { c, _ := s.gateway.counts(p.ID); return c > 0 })
	s.settle(p.ID, true)

	b = s.waitStatus(id, booking.StatusConfirmed)
	if b.PaymentID != p.ID {
		t.Fatalf("confirmed with payment %s, want %s", b.PaymentID, p.ID)
	}
	eventually(t, "the seats are sold", func() bool { return s.seats(ev, "general").Sold == 2 })
	if got := s.seats(ev, "general"); got.Held != 0 || got.Available != 98 {
		t.Fatalf("seats after sale = %+v", got)
	}
}

func TestSagaRejectsWhatCannotBeHeld(t *testing.T) {
	cases := []struct {
		name       string
		ticketType string
		quantity   int
		capacity   int
		reason     string
	}{
		{"sold out", "general", 3, 2, event.ReasonSoldOut},
		{"unknown ticket type", "vip", 1, 10, event.ReasonUnknownTicketType},
		{"over the per-booking limit", "general", 11, 100, event.ReasonOverLimit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSystem(t)
			ev := s.createEvent(event.TicketType{Name: "general", Price: 10, Capacity: tc.capacity})
			id := s.place(uuid.New(), ev, tc.ticketType, tc.quantity)
			b := s.waitStatus(id, booking.StatusRejected)
			if b.Reason != tc.reason {
				t.Fatalf("reason = %q, want %q", b.Reason, tc.reason)
			}
			if got := s.seats(ev, "general"); got.Held != 0 || got.Available != tc.capacity {
				t.Fatalf("seats = %+v, want none taken", got)
			}
		})
	}
}

func TestSagaLetsADeclinedPaymentBeRetried(t *testing.T) {
	t.Run("store says what it wrote", func(t *testing.T) { testSagaLetsADeclinedPaymentBeRetried(t, newSystem(t)) })
	t.Run("store never says", func(t *testing.T) { testSagaLetsADeclinedPaymentBeRetried(t, newSystemOn(t, asKurrentDB)) })
}

func testSagaLetsADeclinedPaymentBeRetried(t *testing.T, s *system) {
	user := uuid.New()
	ev := s.createEvent(general)
	id := s.place(user, ev, "general", 1)
	s.waitStatus(id, booking.StatusAwaitingPayment)

	first := s.pay(id, user, "tok_decline")
	s.settle(first.ID, false)
	if got := s.payment(first.ID); got.Status != payment.Failed || got.FailureReason != "card_declined" {
		t.Fatalf("first payment = %+v", got)
	}
	if got := s.booking(id); got.Status != booking.StatusAwaitingPayment {
		t.Fatalf("after a decline the booking is %s, want still awaiting payment", got.Status)
	}

	second := s.pay(id, user, "tok_success")
	if second.ID == first.ID {
		t.Fatal("the retry reused the failed payment")
	}
	s.settle(second.ID, true)
	s.waitStatus(id, booking.StatusConfirmed)
}

func TestPaymentIsRefusedWhileAnotherIsInFlight(t *testing.T) {
	t.Run("store says what it wrote", func(t *testing.T) { testPaymentIsRefusedWhileAnotherIsInFlight(t, newSystem(t)) })
	t.Run("store never says", func(t *testing.T) { testPaymentIsRefusedWhileAnotherIsInFlight(t, newSystemOn(t, asKurrentDB)) })
}

func testPaymentIsRefusedWhileAnotherIsInFlight(t *testing.T, s *system) {
	user := uuid.New()
	ev := s.createEvent(general)
	id := s.place(user, ev, "general", 1)
	s.waitStatus(id, booking.StatusAwaitingPayment)

	msg := commands.NewMsg()
	first, err := s.payments.Process(context.Background(), msg, commands.ProcessPayment{BookingID: id, UserID: user, Token: "tok_success"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.payments.Process(context.Background(), msg, commands.ProcessPayment{BookingID: id, UserID: user, Token: "tok_success"})
	if err != nil || again.ID != first.ID {
		t.Fatalf("retry of the same request = %v, %v; want the same payment", again.ID, err)
	}
	_, err = s.payments.Process(context.Background(), msg, commands.ProcessPayment{BookingID: id, UserID: user, Token: "tok_other"})
	if !errors.Is(err, commands.ErrIdempotencyMismatch) {
		t.Fatalf("same key, other body: err = %v, want ErrIdempotencyMismatch", err)
	}
	_, err = s.payments.Process(context.Background(), commands.NewMsg(), commands.ProcessPayment{BookingID: id, UserID: user, Token: "tok_success"})
	if !errors.Is(err, fault.ErrConflict) {
		t.Fatalf("second payment while one processes: err = %v, want a conflict", err)
	}
	_, err = s.payments.Process(context.Background(), commands.NewMsg(), commands.ProcessPayment{BookingID: id, UserID: uuid.New(), Token: "tok_success"})
	if !errors.Is(err, commands.ErrBookingNotFound) {
		t.Fatalf("another user's booking: err = %v, want not found", err)
	}
}

func TestPaymentRacesStartOneAttempt(t *testing.T) {
	t.Run("store says what it wrote", func(t *testing.T) { testPaymentRacesStartOneAttempt(t, newSystem(t)) })
	t.Run("store never says", func(t *testing.T) { testPaymentRacesStartOneAttempt(t, newSystemOn(t, asKurrentDB)) })
}

func testPaymentRacesStartOneAttempt(t *testing.T, s *system) {
	user := uuid.New()
	ev := s.createEvent(general)
	id := s.place(user, ev, "general", 1)
	s.waitStatus(id, booking.StatusAwaitingPayment)

	var wg sync.WaitGroup
	var mu sync.Mutex
	started := map[uuid.UUID]bool{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := s.payments.Process(context.Background(), commands.NewMsg(), commands.ProcessPayment{BookingID: id, UserID: user, Token: "tok_success"})
			if err == nil {
				mu.Lock()
				started[p.ID] = true
				mu.Unlock()
			} else if !errors.Is(err, fault.ErrConflict) {
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	if len(started) != 1 {
		t.Fatalf("%d payments started, want exactly 1", len(started))
	}
}

func TestSagaExpiresUnpaidHoldsAndReleasesSeats(t *testing.T) {
	s := newSystem(t)
	ev := s.createEvent(general)
	id := s.place(uuid.New(), ev, "general", 4)
	s.waitStatus(id, booking.StatusAwaitingPayment)

	if n, err := s.expirer.ExpireDue(context.Background()); err != nil || n != 0 {
		t.Fatalf("before the deadline: expired %d, err %v", n, err)
	}
	s.clock.Advance(holdTTL)
	if _, err := s.expirer.ExpireDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := s.waitStatus(id, booking.StatusExpired)
	if b.Reason != booking.ReasonHoldExpired {
		t.Fatalf("reason = %q", b.Reason)
	}
	eventually(t, "the seats are released", func() bool { return s.seats(ev, "general").Available == 100 })
}

func TestHoldsThatRanOutWhileDownExpireOnRestart(t *testing.T) {
	s := newSystem(t)
	ev := s.createEvent(general)
	id := s.place(uuid.New(), ev, "general", 1)
	s.waitStatus(id, booking.StatusAwaitingPayment)

	s.halt()
	s.clock.Advance(holdTTL + time.Hour)
	s.start()

	if _, err := s.expirer.ExpireDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.waitStatus(id, booking.StatusExpired)
	eventually(t, "the seats are released", func() bool { return s.seats(ev, "general").Available == 100 })
}

func TestCancellingReleasesSeatsAndRefundsWhatWasPaid(t *testing.T) {
	t.Run("awaiting payment", func(t *testing.T) {
		s := newSystem(t)
		user := uuid.New()
		ev := s.createEvent(general)
		id := s.place(user, ev, "general", 3)
		s.waitStatus(id, booking.StatusAwaitingPayment)

		b, err := s.bookings.Cancel(context.Background(), commands.NewMsg(), commands.CancelBooking{BookingID: id, CallerID: user, Reason: "changed my mind"})
		if err != nil || b.Status != booking.StatusCancelled || b.Reason != "changed my mind" {
			t.Fatalf("cancel = %+v, %v", b, err)
		}
		eventually(t, "the seats are released", func() bool { return s.seats(ev, "general").Available == 100 })
	})
	t.Run("confirmed", func(t *testing.T) {
		s := newSystem(t)
		user := uuid.New()
		ev := s.createEvent(general)
		id := s.place(user, ev, "general", 3)
		s.waitStatus(id, booking.StatusAwaitingPayment)
		p := s.pay(id, user, "tok_success")
		s.settle(p.ID, true)
		s.waitStatus(id, booking.StatusConfirmed)
		eventually(t, "the seats are sold", func() bool { return s.seats(ev, "general").Sold == 3 })

		if _, err := s.bookings.Cancel(context.Background(), commands.NewMsg(), commands.CancelBooking{BookingID: id, CallerID: user}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the payment is refunded", func() bool { return s.payment(p.ID).Status == payment.Refunded })
		eventually(t, "the seats are released", func() bool { return s.seats(ev, "general").Available == 100 })
		if _, refunds := s.gateway.counts(p.ID); refunds < 1 {
			t.Fatal("the gateway was never asked to refund")
		}
	})
	t.Run("refusals", func(t *testing.T) {
		s := newSystem(t)
		user := uuid.New()
		ev := s.createEvent(event.TicketType{Name: "general", Price: 1, Capacity: 0})
		id := s.place(user, ev, "general", 1)
		s.waitStatus(id, booking.StatusRejected)
		_, err := s.bookings.Cancel(context.Background(), commands.NewMsg(), commands.CancelBooking{BookingID: id, CallerID: user})
		if !errors.Is(err, fault.ErrConflict) {
			t.Fatalf("cancelling a rejected booking: err = %v, want a conflict", err)
		}
		_, err = s.bookings.Cancel(context.Background(), commands.NewMsg(), commands.CancelBooking{BookingID: id, CallerID: uuid.New()})
		if !errors.Is(err, commands.ErrBookingNotFound) {
			t.Fatalf("cancelling another user's booking: err = %v, want not found", err)
		}
	})
}

func TestLatePaymentsAreRefunded(t *testing.T) {
	for _, end := range []string{"expired", "cancelled"} {
		t.Run("after the booking "+end, func(t *testing.T) {
			s := newSystem(t)
			user := uuid.New()
			ev := s.createEvent(general)
			id := s.place(user, ev, "general", 1)
			s.waitStatus(id, booking.StatusAwaitingPayment)
			p := s.pay(id, user, "tok_delayed")

			if end == "expired" {
				s.clock.Advance(holdTTL)
				if _, err := s.expirer.ExpireDue(context.Background()); err != nil {
					t.Fatal(err)
				}
				s.waitStatus(id, booking.StatusExpired)
			} else {
				if _, err := s.bookings.Cancel(context.Background(), commands.NewMsg(), commands.CancelBooking{BookingID: id, CallerID: user}); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, "the seats are released", func() bool { return s.seats(ev, "general").Available == 100 })

			s.settle(p.ID, true)
			eventually(t, "the late payment is refunded", func() bool { return s.payment(p.ID).Status == payment.Refunded })
			if got := s.booking(id); string(got.Status) != end {
				t.Fatalf("booking became %s, want it to stay %s", got.Status, end)
			}
			if got := s.seats(ev, "general"); got.Sold != 0 || got.Available != 100 {
				t.Fatalf("seats = %+v, want nothing sold", got)
			}
		})
	}
}

func TestHoldsPaidInTimeAreNotExpiredBeforeTheSagaConfirms(t *testing.T) {
	for _, c := range []struct {
		name       string
		settleLate bool
		want       booking.Status
		payment    payment.Status
	}{
		{"paid by the deadline: confirmed when the saga is back", false, booking.StatusConfirmed, payment.Succeeded},
		{"paid after the deadline: expired and refunded", true, booking.StatusExpired, payment.Refunded},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSystem(t)
			user := uuid.New()
			ev := s.createEvent(general)
			id := s.place(user, ev, "general", 2)
			s.waitStatus(id, booking.StatusAwaitingPayment)
			p := s.pay(id, user, "tok_delayed")

			// The saga is down (its process died, or its consumer group is
			// rebalancing) when the provider's verdict arrives.
			s.halt()
			if c.settleLate {
				s.clock.Advance(holdTTL + time.Second)
			}
			s.settle(p.ID, true)
			s.clock.Advance(holdTTL + time.Hour)
			if _, err := s.expirer.ExpireDue(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !c.settleLate {
				if got := s.booking(id); got.Status != booking.StatusAwaitingPayment {
					t.Fatalf("booking paid in time is %s before the saga saw the payment, want still awaiting_payment", got.Status)
				}
			}

			s.start()
			s.waitStatus(id, c.want)
			eventually(t, "the payment is "+string(c.payment), func() bool { return s.payment(p.ID).Status == c.payment })
			wantSold, wantAvailable := 2, 98
			if c.want == booking.StatusExpired {
				wantSold, wantAvailable = 0, 100
			}
			eventually(t, "the seats are settled", func() bool {
				got := s.seats(ev, "general")
				return got.Sold == wantSold && got.Available == wantAvailable
			})
			// A later pass changes nothing.
			if _, err := s.expirer.ExpireDue(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := s.booking(id); got.Status != c.want {
				t.Fatalf("booking became %s after another expiry pass, want %s", got.Status, c.want)
			}
		})
	}
}

func TestCancellingAnEventEndsEveryBookingOnIt(t *testing.T) {
	s := newSystem(t)
	ev := s.createEvent(general)
	payer, waiter := uuid.New(), uuid.New()
	paid := s.place(payer, ev, "general", 2)
	waiting := s.place(waiter, ev, "general", 1)
	s.waitStatus(paid, booking.StatusAwaitingPayment)
	s.waitStatus(waiting, booking.StatusAwaitingPayment)
	p := s.pay(paid, payer, "tok_success")
	s.settle(p.ID, true)
	s.waitStatus(paid, booking.StatusConfirmed)

	st, err := s.desk.CancelEvent(context.Background(), commands.NewMsg(), commands.CancelEvent{EventID: ev, Reason: "storm"})
	if err != nil || st.Status != event.StatusCancelled {
		t.Fatalf("cancel event = %+v, %v", st, err)
	}
	for _, id := range []uuid.UUID{paid, waiting} {
		if b := s.waitStatus(id, booking.StatusCancelled); b.Reason != booking.ReasonEventCancelled {
			t.Fatalf("booking %s reason = %q", id, b.Reason)
		}
	}
	eventually(t, "the paid booking is refunded", func() bool { return s.payment(p.ID).Status == payment.Refunded })
	eventually(t, "every seat is released", func() bool { return s.seats(ev, "general").Available == 100 })

	late := s.place(uuid.New(), ev, "general", 1)
	if b := s.waitStatus(late, booking.StatusRejected); b.Reason != event.ReasonEventCancelled {
		t.Fatalf("booking after cancellation: reason = %q", b.Reason)
	}
	name := "renamed"
	if _, err := s.desk.UpdateEvent(context.Background(), commands.NewMsg(), commands.UpdateEvent{EventID: ev, Name: &name}); !errors.Is(err, fault.ErrConflict) {
		t.Fatalf("updating a cancelled event: err = %v, want a conflict", err)
	}
}

func TestRacingBookingsNeverOversell(t *testing.T) {
	s := newSystem(t)
	const seats, requests = 50, 300
	ev := s.createEvent(event.TicketType{Name: "general", Price: 1, Capacity: seats})
	ids := make([]uuid.UUID, requests)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ids[i] = uuid.New()
			_, err := s.bookings.Place(context.Background(), commands.Msg{ID: ids[i], CorrelationID: ids[i]}, commands.PlaceBooking{
				BookingID: ids[i], UserID: uuid.New(), EventID: ev, TicketType: "general", Quantity: 1,
			})
			if err != nil {
				t.Errorf("place: %v", err)
			}
		}(i)
	}
	wg.Wait()
	held, rejected := 0, 0
	eventually(t, "every booking is decided", func() bool {
		held, rejected = 0, 0
		for _, id := range ids {
			switch s.booking(id).Status {
			case booking.StatusAwaitingPayment:
				held++
			case booking.StatusRejected:
				rejected++
			}
		}
		return held+rejected == requests
	})
	if held != seats || rejected != requests-seats {
		t.Fatalf("held %d, rejected %d; want %d and %d", held, rejected, seats, requests-seats)
	}
	if got := s.seats(ev, "general"); got.Held != seats || got.Available != 0 {
		t.Fatalf("seats = %+v", got)
	}
}

func TestSagaRejectsBookingsForUnknownEvents(t *testing.T) {
	s := newSystem(t)
	id := s.place(uuid.New(), uuid.New(), "general", 1)
	if b := s.waitStatus(id, booking.StatusRejected); b.Reason != commands.ReasonEventNotFound {
		t.Fatalf("reason = %q", b.Reason)
	}
}

func TestUpdatingAnEventMergesTheChange(t *testing.T) {
	s := newSystem(t)
	ev := s.createEvent(general)
	id := s.place(uuid.New(), ev, "general", 2)
	s.waitStatus(id, booking.StatusAwaitingPayment)
	ctx := context.Background()

	price, capacity, venue := int64(200_000), 50, "Stadium"
	st, err := s.desk.UpdateEvent(ctx, commands.NewMsg(), commands.UpdateEvent{
		EventID: ev, Venue: &venue,
		TicketTypes: []commands.TicketTypeChange{{Name: "general", Price: &price, Capacity: &capacity}, {Name: "vip", Price: &price, Capacity: &capacity}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Details.Venue != "Stadium" || st.Details.Name != "Concert" || len(st.TicketTypes) != 2 {
		t.Fatalf("state after update = %+v", st)
	}
	if g := st.TicketTypes[0]; g.Price != price || g.Capacity != 50 || g.Held != 2 || g.Available != 48 {
		t.Fatalf("general after update = %+v", g)
	}
	if b := s.booking(id); b.Amount != 2*general.Price {
		t.Fatalf("existing booking's amount changed to %d", b.Amount)
	}

	one := 1
	_, err = s.desk.UpdateEvent(ctx, commands.NewMsg(), commands.UpdateEvent{EventID: ev, TicketTypes: []commands.TicketTypeChange{{Name: "general", Capacity: &one}}})
	if !errors.Is(err, fault.ErrConflict) {
		t.Fatalf("capacity below held seats: err = %v, want a conflict", err)
	}
	_, err = s.desk.UpdateEvent(ctx, commands.NewMsg(), commands.UpdateEvent{EventID: ev, TicketTypes: []commands.TicketTypeChange{{Name: "balcony", Capacity: &one}}})
	var in *fault.Input
	if !errors.As(err, &in) || in.Fields[0].Field != "ticket_types[0].price" {
		t.Fatalf("new type without price: err = %v", err)
	}
	_, err = s.desk.UpdateEvent(ctx, commands.NewMsg(), commands.UpdateEvent{EventID: uuid.New(), Venue: &venue})
	if !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("unknown event: err = %v, want not found", err)
	}
}

func TestPlacingAgainWithTheSameIDIsIdempotent(t *testing.T) {
	t.Run("store says what it wrote", func(t *testing.T) { testPlacingAgainWithTheSameIDIsIdempotent(t, newSystem(t)) })
	t.Run("store never says", func(t *testing.T) { testPlacingAgainWithTheSameIDIsIdempotent(t, newSystemOn(t, asKurrentDB)) })
}

func testPlacingAgainWithTheSameIDIsIdempotent(t *testing.T, s *system) {
	ev := s.createEvent(general)
	user := uuid.New()
	id := uuid.New()
	cmd := commands.PlaceBooking{BookingID: id, UserID: user, EventID: ev, TicketType: "general", Quantity: 2}
	ctx := context.Background()
	firstMsg := commands.Msg{ID: uuid.New(), CorrelationID: id}
	placed, err := s.bookings.Place(ctx, firstMsg, cmd)
	if err != nil || placed.Status != booking.StatusPending {
		t.Fatalf("place = %+v, %v; want pending", placed, err)
	}
	s.waitStatus(id, booking.StatusAwaitingPayment)
	// The same message again (a retry: the store finds its own records)
	// and another message with the same request both answer with the
	// booking as it is now, not as it was placed.
	for name, msg := range map[string]commands.Msg{"retry": firstMsg, "other message": {ID: uuid.New(), CorrelationID: id}} {
		again, err := s.bookings.Place(ctx, msg, cmd)
		if err != nil || again.Status != booking.StatusAwaitingPayment {
			t.Fatalf("%s = %+v, %v; want the booking as it is now", name, again, err)
		}
	}
	cmd.Quantity = 3
	if _, err := s.bookings.Place(ctx, commands.Msg{ID: uuid.New(), CorrelationID: id}, cmd); !errors.Is(err, commands.ErrIdempotencyMismatch) {
		t.Fatalf("same id, other request: err = %v, want ErrIdempotencyMismatch", err)
	}
	if got := s.seats(ev, "general"); got.Held != 2 {
		t.Fatalf("seats held = %d, want 2: the repeat must not book again", got.Held)
	}
}

// failingSender refuses every hold, as an events service that keeps
// failing would; everything else goes through.
type failingSender struct{ next commands.Sender }

func (f failingSender) Send(ctx context.Context, msg commands.Msg, cmd commands.Command) error {
	if _, ok := cmd.(commands.HoldSeats); ok {
		return errors.New("events service unavailable")
	}
	return f.next.Send(ctx, msg, cmd)
}

func TestABookingWhoseHoldKeepsFailingIsRejectedNotLeftPending(t *testing.T) {
	s := newSystem(t)
	s.halt()
	router := commands.NewRouter()
	router.RouteEvents(s.desk, router)
	router.RouteBookings(s.bookings)
	router.RoutePayments(s.payments)
	s.runner.MaxAttempts, s.runner.Backoff = 3, time.Millisecond
	s.reactors = []inproc.Reactor{commands.NewBookingSaga(s.bookings, failingSender{router}, discardLog())}
	s.start()

	ev := s.createEvent(general)
	id := s.place(uuid.New(), ev, "general", 1)
	if b := s.waitStatus(id, booking.StatusRejected); b.Reason != commands.ReasonNotProcessed {
		t.Fatalf("reason = %q", b.Reason)
	}
	if got := s.seats(ev, "general"); got.Held != 0 {
		t.Fatalf("seats held = %d", got.Held)
	}
}
