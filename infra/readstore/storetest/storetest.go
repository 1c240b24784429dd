// Package storetest is the contract every read model store passes: what
// the projectors commit is read back by the queries, atomically, with its
// checkpoint, through the indexes the queries rely on. Each adapter runs
// it against itself:
//
//	func TestContract(t *testing.T) { storetest.Run(t, openStore) }
//
// It also holds the benchmarks every store runs, so that the stores are
// measured by the same code:
//
//	func BenchmarkListEvents(b *testing.B) { storetest.BenchmarkListEvents(b, openBench) }
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/domain/user"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

// Views are one store's read models, each both the reader port of its
// queries and the store port of its projector.
type Views struct {
	Events interface {
		readmodels.EventReader
		projections.EventsStore
	}
	Bookings interface {
		readmodels.BookingReader
		projections.BookingsStore
	}
	Payments interface {
		readmodels.PaymentReader
		projections.PaymentsStore
	}
	Profiles interface {
		readmodels.ProfileReader
		projections.ProfilesStore
	}
}

// Run runs the contract; open returns empty read models, cleaned up by
// the test.
func Run(t *testing.T, open func(t *testing.T) Views) {
	tests := []struct {
		name string
		test func(t *testing.T, v Views)
	}{
		{"views read back as committed", testRoundTrip},
		{"a commit from a stale checkpoint changes nothing", testCheckpointConflict},
		{"seat holds are kept and released", testSeatHolds},
		{"the listing pages through every scheduled event once, in order", testListingPages},
		{"the listing follows cancellations and moved starts", testListingFollowsChanges},
		{"the listing finds text in name or venue", testListingText},
		{"the listing bounds starts_at", testListingRange},
		{"a user lists only their own bookings, newest first", testUserBookings},
		{"due holds are the expired bookings awaiting payment", testDueHolds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, open(t)) })
	}
}

var base = time.Date(2030, 6, 1, 18, 0, 0, 0, time.UTC)

func newEvent(name, venue string, startsAt time.Time) readmodels.EventView {
	return readmodels.EventView{
		ID: uuid.New(), Name: name, Description: "d", Venue: venue,
		StartsAt: startsAt, EndsAt: startsAt.Add(2 * time.Hour), Currency: "IDR", MaxPerBooking: 10,
		Status:      event.Scheduled,
		TicketTypes: []readmodels.TicketTypeView{{Name: "A", Price: 100, Capacity: 10, Held: 2, Sold: 3, Available: 5}},
		CreatedAt:   base, UpdatedAt: base, Position: 1,
	}
}

func commitEvents(t *testing.T, v Views, events ...readmodels.EventView) {
	t.Helper()
	ctx := context.Background()
	cp, err := v.Events.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Events.Commit(ctx, projections.EventsCommit{From: cp, To: cp + 1, Events: events}); err != nil {
		t.Fatal(err)
	}
}

func commitBookings(t *testing.T, v Views, bookings ...readmodels.BookingView) {
	t.Helper()
	ctx := context.Background()
	cp, err := v.Bookings.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Bookings.Commit(ctx, projections.BookingsCommit{From: cp, To: cp + 1, Bookings: bookings}); err != nil {
		t.Fatal(err)
	}
}

func equal[V any](t *testing.T, what string, got, want V) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testRoundTrip(t *testing.T, v Views) {
	ctx := context.Background()
	ev := newEvent("Jazz", "Hall", base)
	commitEvents(t, v, ev)
	got, ok, err := v.Events.Event(ctx, ev.ID)
	if err != nil || !ok {
		t.Fatalf("event: %v %v", ok, err)
	}
	equal(t, "event", got, ev)

	bk := readmodels.BookingView{
		ID: uuid.New(), UserID: uuid.New(), EventID: ev.ID, TicketType: "A", Quantity: 2,
		UnitPrice: 100, Amount: 200, Currency: "IDR", Status: booking.StatusAwaitingPayment,
		ExpiresAt: base.Add(10 * time.Minute), PaymentID: uuid.New(), CreatedAt: base, UpdatedAt: base, Position: 3,
	}
	commitBookings(t, v, bk)
	gotBk, ok, err := v.Bookings.Booking(ctx, bk.ID)
	if err != nil || !ok {
		t.Fatalf("booking: %v %v", ok, err)
	}
	equal(t, "booking", gotBk, bk)

	pay := readmodels.PaymentView{
		ID: uuid.New(), BookingID: bk.ID, UserID: bk.UserID, Amount: 200, Currency: "IDR",
		Status: payment.Failed, FailureReason: "declined", CreatedAt: base, UpdatedAt: base.Add(time.Second), Position: 4,
	}
	if err := v.Payments.Commit(ctx, projections.PaymentsCommit{From: 0, To: 4, Payments: []readmodels.PaymentView{pay}}); err != nil {
		t.Fatal(err)
	}
	gotPay, ok, err := v.Payments.Payment(ctx, pay.ID)
	if err != nil || !ok {
		t.Fatalf("payment: %v %v", ok, err)
	}
	equal(t, "payment", gotPay, pay)

	prof := readmodels.ProfileView{
		ID: uuid.New(), Email: "ana@example.com", Name: "Ana", Phone: "+62 812", Role: user.Admin,
		CreatedAt: base, UpdatedAt: base, Position: 5,
	}
	if err := v.Profiles.Commit(ctx, projections.ProfilesCommit{From: 0, To: 5, Profiles: []readmodels.ProfileView{prof}}); err != nil {
		t.Fatal(err)
	}
	gotProf, ok, err := v.Profiles.Profile(ctx, prof.ID)
	if err != nil || !ok {
		t.Fatalf("profile: %v %v", ok, err)
	}
	equal(t, "profile", gotProf, prof)

	for name, cp := range map[string]func(context.Context) (uint64, error){
		"events": v.Events.Checkpoint, "bookings": v.Bookings.Checkpoint,
		"payments": v.Payments.Checkpoint, "profiles": v.Profiles.Checkpoint,
	} {
		want := map[string]uint64{"events": 1, "bookings": 1, "payments": 4, "profiles": 5}[name]
		if got, err := cp(ctx); err != nil || got != want {
			t.Errorf("%s checkpoint = %d, %v; want %d", name, got, err, want)
		}
	}
	if _, ok, _ := v.Events.Event(ctx, uuid.New()); ok {
		t.Error("an unknown event was found")
	}
}

func testCheckpointConflict(t *testing.T, v Views) {
	ctx := context.Background()
	ev := newEvent("Jazz", "Hall", base)
	commitEvents(t, v, ev) // checkpoint 0 -> 1
	changed := ev
	changed.Name = "Changed"
	tests := []struct {
		name   string
		commit func() error
	}{
		{"events", func() error {
			return v.Events.Commit(ctx, projections.EventsCommit{From: 0, To: 9, Events: []readmodels.EventView{changed},
				Holds: []projections.SeatHold{{BookingID: uuid.New(), EventID: ev.ID, TicketType: "A", Quantity: 1}}})
		}},
		{"bookings", func() error {
			return v.Bookings.Commit(ctx, projections.BookingsCommit{From: 3, To: 9, Bookings: []readmodels.BookingView{{ID: uuid.New()}}})
		}},
		{"payments", func() error {
			return v.Payments.Commit(ctx, projections.PaymentsCommit{From: 3, To: 9, Payments: []readmodels.PaymentView{{ID: uuid.New()}}})
		}},
		{"profiles", func() error {
			return v.Profiles.Commit(ctx, projections.ProfilesCommit{From: 3, To: 9, Profiles: []readmodels.ProfileView{{ID: uuid.New()}}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.commit(); !errors.Is(err, projections.ErrCheckpointConflict) {
				t.Fatalf("commit = %v, want ErrCheckpointConflict", err)
			}
		})
	}
	got, _, _ := v.Events.Event(ctx, ev.ID)
	if got.Name != "Jazz" {
		t.Errorf("a refused commit changed the event to %q", got.Name)
	}
	if cp, _ := v.Events.Checkpoint(ctx); cp != 1 {
		t.Errorf("a refused commit moved the checkpoint to %d", cp)
	}
	for name, cp := range map[string]func(context.Context) (uint64, error){
		"bookings": v.Bookings.Checkpoint, "payments": v.Payments.Checkpoint, "profiles": v.Profiles.Checkpoint,
	} {
		if got, _ := cp(ctx); got != 0 {
			t.Errorf("a refused commit moved the %s checkpoint to %d", name, got)
		}
	}
}

func testSeatHolds(t *testing.T, v Views) {
	ctx := context.Background()
	ev := newEvent("Jazz", "Hall", base)
	h1 := projections.SeatHold{BookingID: uuid.New(), EventID: ev.ID, TicketType: "A", Quantity: 2}
	h2 := projections.SeatHold{BookingID: uuid.New(), EventID: ev.ID, TicketType: "A", Quantity: 1, Sold: true}
	if err := v.Events.Commit(ctx, projections.EventsCommit{From: 0, To: 1, Events: []readmodels.EventView{ev}, Holds: []projections.SeatHold{h1, h2}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []projections.SeatHold{h1, h2} {
		got, ok, err := v.Events.SeatHold(ctx, want.BookingID)
		if err != nil || !ok {
			t.Fatalf("hold of %s: %v %v", want.BookingID, ok, err)
		}
		equal(t, "hold", got, want)
	}
	if err := v.Events.Commit(ctx, projections.EventsCommit{From: 1, To: 2, Released: []uuid.UUID{h1.BookingID}}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := v.Events.SeatHold(ctx, h1.BookingID); ok || err != nil {
		t.Fatalf("released hold still there (%v, %v)", ok, err)
	}
	if _, ok, _ := v.Events.SeatHold(ctx, h2.BookingID); !ok {
		t.Fatal("the other hold went too")
	}
}

// listAll pages through the listing with limit, returning the ids seen.
func listAll(t *testing.T, q *readmodels.EventQueries, req readmodels.EventListRequest) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("the listing does not end")
		}
		page, err := q.ListEvents(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Items {
			ids = append(ids, e.ID)
		}
		if page.NextCursor == "" {
			return ids
		}
		req.Cursor = page.NextCursor
	}
}

func idsOf(events []readmodels.EventView) []uuid.UUID {
	ids := make([]uuid.UUID, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	return ids
}

func testListingPages(t *testing.T, v Views) {
	rng := rand.New(rand.NewPCG(1, 2))
	var scheduled []readmodels.EventView
	var batch []readmodels.EventView
	for i := range 250 {
		// Few distinct start times, so that many events tie on starts_at
		// and the id must break the tie.
		e := newEvent(fmt.Sprintf("Event %d", i), "Hall", base.Add(time.Duration(rng.IntN(40))*time.Hour))
		scheduled = append(scheduled, e)
		batch = append(batch, e)
	}
	cancelled := newEvent("Cancelled", "Hall", base)
	cancelled.Status = event.StatusCancelled
	batch = append(batch, cancelled)
	// Several commits, as a projector would make.
	for len(batch) > 0 {
		n := min(len(batch), 60)
		commitEvents(t, v, batch[:n]...)
		batch = batch[n:]
	}
	slices.SortFunc(scheduled, func(a, b readmodels.EventView) int { return a.Key().Compare(b.Key()) })
	want := idsOf(scheduled)

	q := readmodels.NewEventQueries(v.Events)
	for _, limit := range []string{"1", "7", "20", "100", ""} {
		t.Run("limit "+limit, func(t *testing.T) {
			got := listAll(t, q, readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: limit}})
			if !slices.Equal(got, want) {
				t.Fatalf("paging saw %d events, want each of the %d scheduled once, by starts_at then id", len(got), len(want))
			}
		})
	}
	t.Run("a full page shows each event whole", func(t *testing.T) {
		page, err := q.ListEvents(context.Background(), readmodels.EventListRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != readmodels.DefaultLimit {
			t.Fatalf("%d items, want the default %d", len(page.Items), readmodels.DefaultLimit)
		}
		equal(t, "first item", page.Items[0], scheduled[0])
	})
}

func testListingFollowsChanges(t *testing.T, v Views) {
	ctx := context.Background()
	q := readmodels.NewEventQueries(v.Events)
	a := newEvent("A", "Hall", base)
	b := newEvent("B", "Hall", base.Add(time.Hour))
	c := newEvent("C", "Hall", base.Add(2*time.Hour))
	commitEvents(t, v, a, b, c)
	equal(t, "listing", listAll(t, q, readmodels.EventListRequest{}), idsOf([]readmodels.EventView{a, b, c}))

	a.StartsAt = base.Add(3 * time.Hour)
	b.Status = event.StatusCancelled
	commitEvents(t, v, a, b)
	equal(t, "listing after a moved and b cancelled", listAll(t, q, readmodels.EventListRequest{}), idsOf([]readmodels.EventView{c, a}))
	if got, err := q.Event(ctx, b.ID); err != nil || got.Status != event.StatusCancelled {
		t.Fatalf("a cancelled event stays readable by id: %+v, %v", got, err)
	}
}

func testListingText(t *testing.T, v Views) {
	jazz := newEvent("Jakarta JAZZ Festival", "JIExpo", base)
	rock := newEvent("Rock Night", "Jazz Club Kemang", base.Add(time.Hour))
	opera := newEvent("Opera", "Gedung Kesenian", base.Add(2*time.Hour))
	unicode := newEvent("Ünïcode Fest", "Bandung", base.Add(3*time.Hour))
	commitEvents(t, v, jazz, rock, opera, unicode)
	q := readmodels.NewEventQueries(v.Events)
	tests := []struct {
		q    string
		want []readmodels.EventView
	}{
		{"jazz", []readmodels.EventView{jazz, rock}},
		{"JAZZ", []readmodels.EventView{jazz, rock}},
		{"  kesenian ", []readmodels.EventView{opera}},
		{"night", []readmodels.EventView{rock}},
		{"ünï", []readmodels.EventView{unicode}},
		{"ÜNÏ", []readmodels.EventView{unicode}},
		{"nothing like it", nil},
		{"", []readmodels.EventView{jazz, rock, opera, unicode}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("q=%q", tt.q), func(t *testing.T) {
			got := listAll(t, q, readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "1"}, Q: tt.q})
			if !slices.Equal(got, idsOf(tt.want)) {
				t.Fatalf("found %d events, want %d", len(got), len(tt.want))
			}
		})
	}
}

func testListingRange(t *testing.T, v Views) {
	var events []readmodels.EventView
	for d := range 5 { // one event a day, June 1 to June 5, 18:00
		events = append(events, newEvent(fmt.Sprintf("Day %d", d+1), "Hall", base.AddDate(0, 0, d)))
	}
	commitEvents(t, v, events...)
	q := readmodels.NewEventQueries(v.Events)
	tests := []struct {
		name     string
		from, to string
		want     []readmodels.EventView
	}{
		{"from a date", "2030-06-03", "", events[2:]},
		{"to a date, through that day", "", "2030-06-03", events[:3]},
		{"from and to", "2030-06-02", "2030-06-04", events[1:4]},
		{"one day", "2030-06-04", "2030-06-04", events[3:4]},
		{"from is inclusive to the nanosecond", "2030-06-02T18:00:00Z", "", events[1:]},
		{"to is exclusive to the nanosecond", "", "2030-06-02T18:00:00Z", events[:1]},
		{"an offset is honoured", "2030-06-04T01:00:00+07:00", "", events[2:]},
		{"nothing in range", "2031-01-01", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listAll(t, q, readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "2"}, From: tt.from, To: tt.to})
			if !slices.Equal(got, idsOf(tt.want)) {
				t.Fatalf("listed %d events, want %d", len(got), len(tt.want))
			}
		})
	}
}

func testUserBookings(t *testing.T, v Views) {
	ctx := context.Background()
	ana, budi := uuid.New(), uuid.New()
	var anas []readmodels.BookingView
	var all []readmodels.BookingView
	for i := range 25 {
		// Pairs share created_at, so the id breaks the tie.
		at := base.Add(time.Duration(i/2) * time.Minute)
		a := readmodels.BookingView{ID: uuid.New(), UserID: ana, Status: booking.StatusPending, CreatedAt: at, UpdatedAt: at}
		b := readmodels.BookingView{ID: uuid.New(), UserID: budi, Status: booking.StatusPending, CreatedAt: at, UpdatedAt: at}
		anas = append(anas, a)
		all = append(all, a, b)
	}
	commitBookings(t, v, all[:20]...)
	commitBookings(t, v, all[20:]...)
	// A later change of a booking does not move it in the listing.
	anas[3].Status = booking.StatusRejected
	commitBookings(t, v, anas[3])

	slices.SortFunc(anas, func(a, b readmodels.BookingView) int { return b.Key().Compare(a.Key()) })
	q := readmodels.NewBookingQueries(v.Bookings)
	var got []readmodels.BookingView
	req := readmodels.ListRequest{Limit: "4"}
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("the listing does not end")
		}
		page, err := q.ListUserBookings(ctx, ana, req)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Items...)
		if page.NextCursor == "" {
			break
		}
		req.Cursor = page.NextCursor
	}
	equal(t, "ana's bookings, newest first", got, anas)

	page, err := q.ListUserBookings(ctx, uuid.New(), readmodels.ListRequest{})
	if err != nil || len(page.Items) != 0 || page.NextCursor != "" {
		t.Fatalf("a user without bookings: %+v, %v", page, err)
	}
}

func testDueHolds(t *testing.T, v Views) {
	ctx := context.Background()
	now := base
	holding := func(expires time.Time) readmodels.BookingView {
		return readmodels.BookingView{ID: uuid.New(), UserID: uuid.New(), Status: booking.StatusAwaitingPayment, ExpiresAt: expires, CreatedAt: base, UpdatedAt: base}
	}
	overdue := holding(now.Add(-time.Hour))
	dueNow := holding(now)
	justDue := holding(now.Add(-time.Nanosecond))
	notYet := holding(now.Add(time.Nanosecond))
	paid := holding(now.Add(-2 * time.Hour))
	commitBookings(t, v, overdue, dueNow, justDue, notYet, paid)
	paid.Status = booking.StatusConfirmed
	pending := readmodels.BookingView{ID: uuid.New(), Status: booking.StatusPending, CreatedAt: base}
	commitBookings(t, v, paid, pending)

	q := readmodels.NewBookingQueries(v.Bookings)
	tests := []struct {
		name  string
		now   time.Time
		limit int
		want  []uuid.UUID
	}{
		{"due at or before now, earliest first", now, 10, []uuid.UUID{overdue.ID, justDue.ID, dueNow.ID}},
		{"limited", now, 2, []uuid.UUID{overdue.ID, justDue.ID}},
		{"none due yet", now.Add(-2 * time.Hour), 10, nil},
		{"later, all that await payment", now.Add(time.Hour), 10, []uuid.UUID{overdue.ID, justDue.ID, dueNow.ID, notYet.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := q.DueHolds(ctx, tt.now, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("due %v, want %v", got, tt.want)
			}
		})
	}

	overdue.Status = booking.StatusExpired
	commitBookings(t, v, overdue)
	got, err := q.DueHolds(ctx, now, 10)
	if err != nil || !slices.Equal(got, []uuid.UUID{justDue.ID, dueNow.ID}) {
		t.Fatalf("after expiring one: %v, %v", got, err)
	}
}
