package projections_test

import (
	"context"
	"fmt"
	"strings"
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
	"github.com/ticketd/ticketing/readmodels"
)

var t0 = time.Date(2030, 3, 1, 10, 0, 0, 0, time.UTC)

func registry() *es.Registry {
	r := es.NewRegistry()
	booking.Register(r)
	event.Register(r)
	payment.Register(r)
	user.Register(r)
	return r
}

// env is a log and a store for projectors under test.
type env struct {
	t     *testing.T
	log   *logtest.Log
	store *memStore
	reg   *es.Registry
}

func newEnv(t *testing.T) *env {
	reg := registry()
	return &env{t: t, log: logtest.New(t, reg), store: newMemStore(), reg: reg}
}

func (e *env) events() *projections.Projector {
	return projections.NewEvents(e.log, e.reg, memEvents{e.store}, nil)
}
func (e *env) bookings() *projections.Projector {
	return projections.NewBookings(e.log, e.reg, memBookings{e.store}, nil)
}
func (e *env) payments(pub projections.PaymentPublisher) *projections.Projector {
	return projections.NewPayments(e.log, e.reg, memPayments{e.store}, pub, nil)
}
func (e *env) profiles() *projections.Projector {
	return projections.NewProfiles(e.log, e.reg, memProfiles{e.store}, nil)
}

// catchUp runs p until it has applied the whole log.
func (e *env) catchUp(p *projections.Projector) {
	e.t.Helper()
	if err := e.tryCatchUp(p); err != nil {
		e.t.Fatalf("catch up %s: %v", p.Name(), err)
	}
}

func (e *env) tryCatchUp(p *projections.Projector) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	head, _ := e.log.HeadPosition(ctx)
	return p.CatchUp(ctx, head)
}

// A ticketed event with two ticket types, and what can happen to it.
var (
	evID  = uuid.MustParse("00000000-0000-4000-8000-0000000000e1")
	bk1   = uuid.MustParse("00000000-0000-4000-8000-0000000000b1")
	bk2   = uuid.MustParse("00000000-0000-4000-8000-0000000000b2")
	usrID = uuid.MustParse("00000000-0000-4000-8000-0000000000a1")
	payID = uuid.MustParse("00000000-0000-4000-8000-0000000000f1")

	details = event.Details{
		Name: "Jazz Night", Description: "Trio and guests", Venue: "Teater Besar",
		StartsAt: t0.Add(30 * 24 * time.Hour), EndsAt: t0.Add(30*24*time.Hour + 3*time.Hour), MaxPerBooking: 10,
	}
	created = event.Created{
		EventID: evID, Details: details, Currency: "IDR",
		TicketTypes: []event.TicketType{{Name: "A", Price: 100, Capacity: 10}, {Name: "B", Price: 250, Capacity: 5}},
		At:          t0,
	}
)

func held(b uuid.UUID, tt string, n int) event.SeatsHeld {
	return event.SeatsHeld{BookingID: b, TicketType: tt, Quantity: n, UnitPrice: 100, Currency: "IDR", At: t0.Add(time.Minute)}
}
func sold(b uuid.UUID) event.SeatsSold {
	return event.SeatsSold{BookingID: b, At: t0.Add(2 * time.Minute)}
}
func released(b uuid.UUID, tt string, n int) event.SeatsReleased {
	return event.SeatsReleased{BookingID: b, TicketType: tt, Quantity: n, At: t0.Add(3 * time.Minute)}
}

// seats summarises an event's status and ticket types as
// "status name:price cap/held/sold avail ...".
func seats(v readmodels.EventView) string {
	var b strings.Builder
	b.WriteString(string(v.Status))
	for _, t := range v.TicketTypes {
		fmt.Fprintf(&b, " %s:%d %d/%d/%d %d", t.Name, t.Price, t.Capacity, t.Held, t.Sold, t.Available)
	}
	return b.String()
}

func TestEventsProjection(t *testing.T) {
	tests := []struct {
		name  string
		given []es.Payload
		want  string
		// applied is how many of the given records change the view (its
		// Position is the last of them).
		applied int
	}{
		{
			name:  "created shows every seat available",
			given: []es.Payload{created},
			want:  "scheduled A:100 10/0/0 10 B:250 5/0/0 5", applied: 1,
		},
		{
			name:  "held seats are not available",
			given: []es.Payload{created, held(bk1, "A", 3)},
			want:  "scheduled A:100 10/3/0 7 B:250 5/0/0 5", applied: 2,
		},
		{
			name:  "sold seats move from held to sold",
			given: []es.Payload{created, held(bk1, "A", 3), sold(bk1)},
			want:  "scheduled A:100 10/0/3 7 B:250 5/0/0 5", applied: 3,
		},
		{
			name:  "released held seats are available again",
			given: []es.Payload{created, held(bk1, "A", 3), released(bk1, "A", 3)},
			want:  "scheduled A:100 10/0/0 10 B:250 5/0/0 5", applied: 3,
		},
		{
			name:  "released sold seats are available again",
			given: []es.Payload{created, held(bk1, "B", 2), sold(bk1), released(bk1, "B", 2)},
			want:  "scheduled A:100 10/0/0 10 B:250 5/0/0 5", applied: 4,
		},
		{
			name: "refused seats change nothing",
			given: []es.Payload{created, event.SeatsRefused{
				BookingID: bk1, TicketType: "A", Quantity: 50, Reason: event.ReasonSoldOut, At: t0,
			}},
			want: "scheduled A:100 10/0/0 10 B:250 5/0/0 5", applied: 1,
		},
		{
			name: "update replaces types and keeps held and sold by name",
			given: []es.Payload{created, held(bk1, "A", 3), held(bk2, "B", 2), sold(bk1), event.Updated{
				Details:     details,
				TicketTypes: []event.TicketType{{Name: "A", Price: 150, Capacity: 20}, {Name: "B", Price: 250, Capacity: 5}, {Name: "C", Price: 50, Capacity: 7}},
				At:          t0.Add(time.Hour),
			}},
			want: "scheduled A:150 20/0/3 17 B:250 5/2/0 3 C:50 7/0/0 7", applied: 5,
		},
		{
			name: "available never goes below zero",
			given: []es.Payload{created, held(bk1, "A", 8), event.Updated{
				Details:     details,
				TicketTypes: []event.TicketType{{Name: "A", Price: 100, Capacity: 5}, {Name: "B", Price: 250, Capacity: 5}},
				At:          t0.Add(time.Hour),
			}},
			want: "scheduled A:100 5/8/0 0 B:250 5/0/0 5", applied: 3,
		},
		{
			name:  "cancelled keeps the seats as they were",
			given: []es.Payload{created, held(bk1, "A", 2), event.Cancelled{Reason: "storm", Bookings: []uuid.UUID{bk1}, At: t0.Add(time.Hour)}},
			want:  "cancelled A:100 10/2/0 8 B:250 5/0/0 5", applied: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.log.Append(event.Stream(evID), evID, tt.given...)
			e.catchUp(e.events())
			v, ok := e.store.events[evID]
			if !ok {
				t.Fatal("no event view")
			}
			if got := seats(v); got != tt.want {
				t.Errorf("seats\n got %s\nwant %s", got, tt.want)
			}
			if v.Position != uint64(tt.applied) {
				t.Errorf("position = %d, want %d", v.Position, tt.applied)
			}
		})
	}
}

func TestEventsProjectionDetails(t *testing.T) {
	e := newEnv(t)
	newDetails := details
	newDetails.Name, newDetails.Venue, newDetails.MaxPerBooking = "Jazz Night II", "Gedung Kesenian", 4
	newDetails.EndsAt = time.Time{}
	e.log.Append(event.Stream(evID), evID, created, held(bk1, "A", 1))
	p := e.events()
	e.catchUp(p)
	v := e.store.events[evID]
	want := readmodels.EventView{
		ID: evID, Name: "Jazz Night", Description: "Trio and guests", Venue: "Teater Besar",
		StartsAt: details.StartsAt, EndsAt: details.EndsAt, Currency: "IDR", MaxPerBooking: 10,
		Status:      event.Scheduled,
		TicketTypes: []readmodels.TicketTypeView{{Name: "A", Price: 100, Capacity: 10, Held: 1, Available: 9}, {Name: "B", Price: 250, Capacity: 5, Available: 5}},
		CreatedAt:   t0, UpdatedAt: t0, Position: 2,
	}
	assertEqual(t, "after create and hold (a hold does not touch updated_at)", v, want)

	at := t0.Add(time.Hour)
	e.log.Append(event.Stream(evID), evID, event.Updated{Details: newDetails, TicketTypes: created.TicketTypes, At: at})
	e.catchUp(p)
	v = e.store.events[evID]
	want.Name, want.Venue, want.MaxPerBooking, want.EndsAt = "Jazz Night II", "Gedung Kesenian", 4, time.Time{}
	want.UpdatedAt, want.Position = at, 3
	assertEqual(t, "after update", v, want)
}

func TestEventsProjectionSeatHolds(t *testing.T) {
	tests := []struct {
		name  string
		given []es.Payload
		want  map[uuid.UUID]projections.SeatHold
	}{
		{"a hold is remembered", []es.Payload{created, held(bk1, "A", 3)},
			map[uuid.UUID]projections.SeatHold{bk1: {BookingID: bk1, EventID: evID, TicketType: "A", Quantity: 3}}},
		{"a sale marks the hold sold", []es.Payload{created, held(bk1, "A", 3), sold(bk1)},
			map[uuid.UUID]projections.SeatHold{bk1: {BookingID: bk1, EventID: evID, TicketType: "A", Quantity: 3, Sold: true}}},
		{"a release forgets the hold", []es.Payload{created, held(bk1, "A", 3), held(bk2, "B", 1), released(bk1, "A", 3)},
			map[uuid.UUID]projections.SeatHold{bk2: {BookingID: bk2, EventID: evID, TicketType: "B", Quantity: 1}}},
	}
	for _, tt := range tests {
		for _, batch := range []int{1, 100} {
			t.Run(fmt.Sprintf("%s/batch of %d", tt.name, batch), func(t *testing.T) {
				e := newEnv(t)
				e.log.BatchSize = batch
				e.log.Append(event.Stream(evID), evID, tt.given...)
				e.catchUp(e.events())
				assertEqual(t, "holds", e.store.holds, tt.want)
			})
		}
	}
}

func TestBookingsProjection(t *testing.T) {
	bkID := bk1
	placed := booking.Placed{BookingID: bkID, UserID: usrID, EventID: evID, TicketType: "A", Quantity: 2, At: t0}
	expires := t0.Add(10 * time.Minute)
	awaiting := booking.AwaitingPayment{UnitPrice: 100, Amount: 200, Currency: "IDR", ExpiresAt: expires, At: t0.Add(time.Second)}
	later := t0.Add(time.Minute)
	pending := readmodels.BookingView{
		ID: bkID, UserID: usrID, EventID: evID, TicketType: "A", Quantity: 2,
		Status: booking.StatusPending, CreatedAt: t0, UpdatedAt: t0, Position: 1,
	}
	held := pending
	held.Status, held.UnitPrice, held.Amount, held.Currency, held.ExpiresAt = booking.StatusAwaitingPayment, 100, 200, "IDR", expires
	held.UpdatedAt, held.Position = awaiting.At, 2
	with := func(v readmodels.BookingView, f func(*readmodels.BookingView)) readmodels.BookingView {
		f(&v)
		return v
	}
	pay2 := uuid.MustParse("00000000-0000-4000-8000-0000000000f2")

	tests := []struct {
		name     string
		given    []es.Payload
		payments []payment.Requested // appended after given, on their payment streams
		want     readmodels.BookingView
	}{
		{name: "placed is pending", given: []es.Payload{placed}, want: pending},
		{name: "awaiting payment has price and deadline", given: []es.Payload{placed, awaiting}, want: held},
		{name: "rejected says why", given: []es.Payload{placed, booking.Rejected{Reason: event.ReasonSoldOut, At: later}},
			want: with(pending, func(v *readmodels.BookingView) {
				v.Status, v.Reason, v.UpdatedAt, v.Position = booking.StatusRejected, event.ReasonSoldOut, later, 2
			})},
		{name: "confirmed names its payment", given: []es.Payload{placed, awaiting, booking.Confirmed{PaymentID: payID, At: later}},
			want: with(held, func(v *readmodels.BookingView) {
				v.Status, v.PaymentID, v.UpdatedAt, v.Position = booking.StatusConfirmed, payID, later, 3
			})},
		{name: "expired says why", given: []es.Payload{placed, awaiting, booking.Expired{Reason: booking.ReasonHoldExpired, At: later}},
			want: with(held, func(v *readmodels.BookingView) {
				v.Status, v.Reason, v.UpdatedAt, v.Position = booking.StatusExpired, booking.ReasonHoldExpired, later, 3
			})},
		{name: "cancelled says why", given: []es.Payload{placed, awaiting, booking.Cancelled{Reason: "changed my mind", From: booking.StatusAwaitingPayment, At: later}},
			want: with(held, func(v *readmodels.BookingView) {
				v.Status, v.Reason, v.UpdatedAt, v.Position = booking.StatusCancelled, "changed my mind", later, 3
			})},
		{name: "a payment request names the latest attempt", given: []es.Payload{placed, awaiting},
			payments: []payment.Requested{
				{PaymentID: payID, BookingID: bkID, UserID: usrID, Amount: 200, Currency: "IDR", Token: "tok_decline", At: later},
				{PaymentID: pay2, BookingID: bkID, UserID: usrID, Amount: 200, Currency: "IDR", Token: "tok_success", At: later},
			},
			want: with(held, func(v *readmodels.BookingView) { v.PaymentID, v.Position = pay2, 4 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.log.Append(booking.Stream(bkID), bkID, tt.given...)
			for _, r := range tt.payments {
				e.log.Append(payment.Stream(r.PaymentID), r.PaymentID, r)
			}
			e.catchUp(e.bookings())
			assertEqual(t, "booking", e.store.bookings[bkID], tt.want)
		})
	}
}

func TestPaymentsProjection(t *testing.T) {
	requested := payment.Requested{PaymentID: payID, BookingID: bk1, UserID: usrID, Amount: 200, Currency: "IDR", Token: "tok_success", At: t0}
	later := t0.Add(time.Minute)
	processing := readmodels.PaymentView{
		ID: payID, BookingID: bk1, UserID: usrID, Amount: 200, Currency: "IDR",
		Status: payment.Processing, CreatedAt: t0, UpdatedAt: t0, Position: 1,
	}
	with := func(f func(*readmodels.PaymentView)) readmodels.PaymentView { v := processing; f(&v); return v }
	tests := []struct {
		name  string
		given []es.Payload
		want  readmodels.PaymentView
	}{
		{"requested is processing", []es.Payload{requested}, processing},
		{"settled is succeeded", []es.Payload{requested, payment.Settled{BookingID: bk1, GatewayRef: "gw1", At: later}},
			with(func(v *readmodels.PaymentView) { v.Status, v.UpdatedAt, v.Position = payment.Succeeded, later, 2 })},
		{"declined is failed with the reason", []es.Payload{requested, payment.Declined{BookingID: bk1, GatewayRef: "gw1", Reason: "card declined", At: later}},
			with(func(v *readmodels.PaymentView) {
				v.Status, v.FailureReason, v.UpdatedAt, v.Position = payment.Failed, "card declined", later, 2
			})},
		{"refund requested is refund pending", []es.Payload{requested, payment.Settled{At: t0}, payment.RefundRequested{Reason: "cancelled", At: later}},
			with(func(v *readmodels.PaymentView) { v.Status, v.UpdatedAt, v.Position = payment.RefundPending, later, 3 })},
		{"refund completed is refunded", []es.Payload{requested, payment.Settled{At: t0}, payment.RefundRequested{At: t0}, payment.RefundCompleted{At: later}},
			with(func(v *readmodels.PaymentView) { v.Status, v.UpdatedAt, v.Position = payment.Refunded, later, 4 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			pub := &publisher{}
			e.log.Append(payment.Stream(payID), payID, tt.given...)
			e.catchUp(e.payments(pub))
			assertEqual(t, "payment", e.store.payments[payID], tt.want)
			// One batch, one publish of the latest state.
			assertEqual(t, "published", pub.all(), []readmodels.PaymentView{tt.want})
		})
	}
}

func TestPaymentsProjectionPublishesEveryCommit(t *testing.T) {
	e := newEnv(t)
	pub := &publisher{}
	e.log.BatchSize = 1
	e.log.Append(payment.Stream(payID), payID,
		payment.Requested{PaymentID: payID, BookingID: bk1, UserID: usrID, Amount: 200, Currency: "IDR", At: t0},
		payment.Settled{At: t0}, payment.RefundRequested{At: t0}, payment.RefundCompleted{At: t0})
	e.catchUp(e.payments(pub))
	var got []payment.Status
	for _, v := range pub.all() {
		got = append(got, v.Status)
	}
	assertEqual(t, "published statuses", got, []payment.Status{payment.Processing, payment.Succeeded, payment.RefundPending, payment.Refunded})
}

func TestProfilesProjection(t *testing.T) {
	registered := user.Registered{UserID: usrID, Email: "ana@example.com", Name: "Ana", PasswordHash: "hash", Role: user.Customer, At: t0}
	later := t0.Add(time.Minute)
	base := readmodels.ProfileView{ID: usrID, Email: "ana@example.com", Name: "Ana", Role: user.Customer, CreatedAt: t0, UpdatedAt: t0, Position: 1}
	with := func(f func(*readmodels.ProfileView)) readmodels.ProfileView { v := base; f(&v); return v }
	tests := []struct {
		name  string
		given []es.Payload
		want  readmodels.ProfileView
	}{
		{"registered", []es.Payload{registered}, base},
		{"profile updated", []es.Payload{registered, user.ProfileUpdated{Name: "Ana Putri", Phone: "+6281234567890", At: later}},
			with(func(v *readmodels.ProfileView) {
				v.Name, v.Phone, v.UpdatedAt, v.Position = "Ana Putri", "+6281234567890", later, 2
			})},
		{"role changed", []es.Payload{registered, user.RoleChanged{Role: user.Admin, At: later}},
			with(func(v *readmodels.ProfileView) { v.Role, v.UpdatedAt, v.Position = user.Admin, later, 2 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.log.Append(user.Stream(usrID), usrID, tt.given...)
			e.catchUp(e.profiles())
			assertEqual(t, "profile", e.store.profiles[usrID], tt.want)
		})
	}
}

func TestProfilesProjectionIgnoresEmailReservations(t *testing.T) {
	e := newEnv(t)
	e.log.Append(user.EmailStream("ana@example.com"), usrID, user.EmailReserved{Email: "ana@example.com", UserID: usrID, At: t0})
	p := e.profiles()
	e.catchUp(p)
	if len(e.store.profiles) != 0 || len(e.store.profileCommits) != 0 {
		t.Fatalf("a reservation made profiles %v in %d commits", e.store.profiles, len(e.store.profileCommits))
	}
}
