package redis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/domain/user"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/projections/logtest"
)

func registry() *es.Registry {
	r := es.NewRegistry()
	booking.Register(r)
	event.Register(r)
	payment.Register(r)
	user.Register(r)
	return r
}

// world is a log with something of every kind in it, drawn at random
// from seed: users who update their profiles, events that are updated,
// moved and cancelled, and bookings that go every way a booking can
// (rejected, left awaiting payment, paid, declined, expired, cancelled
// and refunded), their records interleaved.
type world struct {
	log                               *logtest.Log
	reg                               *es.Registry
	users, events, bookings, payments []uuid.UUID
}

var venues = []string{"Istora Senayan", "JIExpo Kemayoran", "Teater Jakarta", "Gedung Kesenian", "Ünïcode Hall"}

func newWorld(t testing.TB, seed uint64) *world {
	reg := registry()
	w := &world{log: logtest.New(t, reg), reg: reg}
	rng := rand.New(rand.NewPCG(seed, 42))
	l := w.log
	at := func(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }

	for i := range 6 {
		id := uuid.New()
		w.users = append(w.users, id)
		email := fmt.Sprintf("user%d@example.com", i)
		l.Append(user.EmailStream(email), id, user.EmailReserved{Email: email, UserID: id, At: t0})
		l.Append(user.Stream(id), id, user.Registered{UserID: id, Email: email, Name: fmt.Sprintf("User %d", i), PasswordHash: "h", Role: user.Customer, At: t0})
		if i%2 == 0 {
			l.Append(user.Stream(id), id, user.ProfileUpdated{Name: fmt.Sprintf("User %d Putri", i), Phone: "+62812", At: at(i)})
		}
		if i == 5 {
			l.Append(user.Stream(id), id, user.RoleChanged{Role: user.Admin, At: at(7)})
		}
	}
	types := func(capacity int) []event.TicketType {
		return []event.TicketType{{Name: "A", Price: 100, Capacity: capacity}, {Name: "B", Price: 250, Capacity: capacity / 2}}
	}
	details := func(i int) event.Details {
		return event.Details{
			Name: fmt.Sprintf("Concert %d JAZZ", i), Description: "music", Venue: venues[rng.IntN(len(venues))],
			// Few distinct start times, so that the id breaks ties.
			StartsAt: t0.Add(time.Duration(24+rng.IntN(5)*6) * time.Hour), MaxPerBooking: 10,
		}
	}
	for i := range 14 {
		id := uuid.New()
		w.events = append(w.events, id)
		l.Append(event.Stream(id), id, event.Created{EventID: id, Currency: "IDR", Details: details(i), TicketTypes: types(1000), At: t0})
	}

	// Each booking's records, and a few event updates, as queues that are
	// then interleaved.
	var queues [][]func()
	for range 160 {
		b, u, ev := uuid.New(), w.users[rng.IntN(len(w.users))], w.events[rng.IntN(len(w.events))]
		w.bookings = append(w.bookings, b)
		tt, qty, placed := []string{"A", "B"}[rng.IntN(2)], 1+rng.IntN(4), at(rng.IntN(60))
		bs := booking.Stream(b)
		q := []func(){func() {
			l.Append(bs, b, booking.Placed{BookingID: b, UserID: u, EventID: ev, TicketType: tt, Quantity: qty, At: placed})
		}}
		if rng.IntN(6) == 0 {
			q = append(q,
				func() {
					l.Append(event.Stream(ev), ev, event.SeatsRefused{BookingID: b, TicketType: tt, Quantity: qty, Reason: "sold_out", At: placed})
				},
				func() { l.Append(bs, b, booking.Rejected{Reason: "sold_out", At: placed.Add(time.Second)}) })
			queues = append(queues, q)
			continue
		}
		amount := int64(qty) * 100
		q = append(q,
			func() {
				l.Append(event.Stream(ev), ev, event.SeatsHeld{BookingID: b, TicketType: tt, Quantity: qty, UnitPrice: 100, Currency: "IDR", At: placed})
			},
			func() {
				l.Append(bs, b, booking.AwaitingPayment{UnitPrice: 100, Amount: amount, Currency: "IDR", ExpiresAt: at(10 + rng.IntN(120)), At: placed.Add(time.Second)})
			})
		release := func(reason string, cancel bool) []func() {
			return []func(){
				func() {
					if cancel {
						l.Append(bs, b, booking.Cancelled{Reason: reason, At: placed.Add(time.Hour)})
					} else {
						l.Append(bs, b, booking.Expired{Reason: reason, At: placed.Add(time.Hour)})
					}
				},
				func() {
					l.Append(event.Stream(ev), ev, event.SeatsReleased{BookingID: b, TicketType: tt, Quantity: qty, At: placed.Add(time.Hour)})
				},
			}
		}
		pay := func(succeed bool) []func() {
			p := uuid.New()
			w.payments = append(w.payments, p)
			ps := payment.Stream(p)
			steps := []func(){func() {
				l.Append(ps, p, payment.Requested{PaymentID: p, BookingID: b, UserID: u, Amount: amount, Currency: "IDR", Token: "tok", At: placed.Add(time.Minute)})
			}}
			if !succeed {
				return append(steps, func() {
					l.Append(ps, p, payment.Declined{BookingID: b, Reason: "declined", At: placed.Add(2 * time.Minute)})
				})
			}
			return append(steps,
				func() { l.Append(ps, p, payment.Settled{BookingID: b, At: placed.Add(2 * time.Minute)}) },
				func() { l.Append(bs, b, booking.Confirmed{PaymentID: p, At: placed.Add(2 * time.Minute)}) },
				func() { l.Append(event.Stream(ev), ev, event.SeatsSold{BookingID: b, At: placed.Add(2 * time.Minute)}) })
		}
		switch rng.IntN(5) {
		case 0: // left awaiting payment
		case 1: // declined, then left awaiting payment
			q = append(q, pay(false)...)
		case 2:
			q = append(q, pay(false)...)
			q = append(q, pay(true)...)
		case 3: // paid, then cancelled and refunded
			q = append(q, pay(true)...)
			q = append(q, release("changed my mind", true)...)
			p := w.payments[len(w.payments)-1]
			q = append(q,
				func() {
					l.Append(payment.Stream(p), p, payment.RefundRequested{BookingID: b, Reason: "cancelled", At: placed.Add(time.Hour)})
				},
				func() {
					l.Append(payment.Stream(p), p, payment.RefundCompleted{BookingID: b, At: placed.Add(time.Hour)})
				})
		case 4:
			q = append(q, release("hold ran out", false)...)
		}
		queues = append(queues, q)
	}
	for i, ev := range w.events[:6] {
		d := details(100 + i)
		queues = append(queues, []func(){func() {
			l.Append(event.Stream(ev), ev, event.Updated{Details: d, TicketTypes: types(500 + i), At: at(30)})
		}})
	}
	for len(queues) > 0 {
		i := rng.IntN(len(queues))
		queues[i][0]()
		if queues[i] = queues[i][1:]; len(queues[i]) == 0 {
			queues = append(queues[:i], queues[i+1:]...)
		}
	}
	for _, ev := range w.events[:3] {
		l.Append(event.Stream(ev), ev, event.Cancelled{Reason: "venue closed", At: at(200)})
	}
	return w
}

// catchUp runs p until it has applied the whole log.
func catchUp(t testing.TB, log *logtest.Log, p *projections.Projector) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	head, _ := log.HeadPosition(ctx)
	if err := p.CatchUp(ctx, head); err != nil {
		t.Fatalf("%s: %v", p.Name(), err)
	}
}
