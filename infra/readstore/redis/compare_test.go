package redis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/infra/readstore/embedded"
	"github.com/ticketd/ticketing/infra/readstore/storetest"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

// The Redis store must answer every query exactly as the embedded one
// does for the same data: same views, same pages, same cursors.

func openEmbedded(t testing.TB) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func viewsOfEmbedded(s *embedded.Store) storetest.Views {
	return storetest.Views{Events: s.Events(), Bookings: s.Bookings(), Payments: s.Payments(), Profiles: s.Profiles()}
}

func viewsOf(s *Store) storetest.Views {
	return storetest.Views{Events: s.Events(), Bookings: s.Bookings(), Payments: s.Payments(), Profiles: s.Profiles()}
}

// listingRequests are the listing requests compared: every page size,
// searches, ranges.
var listingRequests = []readmodels.EventListRequest{
	{},
	{ListRequest: readmodels.ListRequest{Limit: "1"}},
	{ListRequest: readmodels.ListRequest{Limit: "7"}},
	{ListRequest: readmodels.ListRequest{Limit: "100"}},
	{ListRequest: readmodels.ListRequest{Limit: "3"}, Q: "jazz"},
	{ListRequest: readmodels.ListRequest{Limit: "2"}, Q: "ÜNÏ"},
	{ListRequest: readmodels.ListRequest{Limit: "5"}, Q: "kemayoran"},
	{Q: "nothing like it"},
	{ListRequest: readmodels.ListRequest{Limit: "4"}, From: "2030-03-02T16:00:00Z"},
	{ListRequest: readmodels.ListRequest{Limit: "4"}, To: "2030-03-02T16:00:00Z"},
	{ListRequest: readmodels.ListRequest{Limit: "3"}, From: "2030-03-02", To: "2030-03-02", Q: "concert"},
}

// pages returns every page of the listing for req, following the cursors.
func pages(t *testing.T, v storetest.Views, req readmodels.EventListRequest) []readmodels.EventPage {
	t.Helper()
	q := readmodels.NewEventQueries(v.Events)
	var out []readmodels.EventPage
	for {
		page, err := q.ListEvents(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		// A listing version names a state within one store only (the
		// embedded store counts its commits; Redis names none): the pages
		// are compared, not their labels.
		page.Version = readmodels.ListingVersion{}
		out = append(out, page)
		if page.NextCursor == "" || len(out) > 1000 {
			return out
		}
		req.Cursor = page.NextCursor
	}
}

func userPages(t *testing.T, v storetest.Views, user uuid.UUID, limit string) []readmodels.BookingPage {
	t.Helper()
	q := readmodels.NewBookingQueries(v.Bookings)
	var out []readmodels.BookingPage
	req := readmodels.ListRequest{Limit: limit}
	for {
		page, err := q.ListUserBookings(context.Background(), user, req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page)
		if page.NextCursor == "" || len(out) > 1000 {
			return out
		}
		req.Cursor = page.NextCursor
	}
}

// compareListings checks that both stores answer every listing request
// alike, page by page.
func compareListings(t *testing.T, got, want storetest.Views) {
	t.Helper()
	for _, req := range listingRequests {
		equal(t, fmt.Sprintf("listing %+v", req), pages(t, got, req), pages(t, want, req))
	}
}

func TestProjectionsMatchTheEmbeddedStore(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t, seed)
			// Small batches, redelivered, so that views are loaded back
			// from the store between batches.
			w.log.BatchSize = 9
			w.log.Redeliver = true
			r, e := newStore(t), openEmbedded(t)
			for _, s := range []storetest.Views{viewsOf(r), viewsOfEmbedded(e)} {
				catchUp(t, w.log, projections.NewEvents(w.log, w.reg, s.Events, nil))
				catchUp(t, w.log, projections.NewBookings(w.log, w.reg, s.Bookings, nil))
				catchUp(t, w.log, projections.NewPayments(w.log, w.reg, s.Payments, nil, nil))
				catchUp(t, w.log, projections.NewProfiles(w.log, w.reg, s.Profiles, nil))
			}
			got, want := viewsOf(r), viewsOfEmbedded(e)

			for name, cps := range map[string][2]func(context.Context) (uint64, error){
				"events": {got.Events.Checkpoint, want.Events.Checkpoint}, "bookings": {got.Bookings.Checkpoint, want.Bookings.Checkpoint},
				"payments": {got.Payments.Checkpoint, want.Payments.Checkpoint}, "profiles": {got.Profiles.Checkpoint, want.Profiles.Checkpoint},
			} {
				g, err1 := cps[0](ctx)
				x, err2 := cps[1](ctx)
				if err1 != nil || err2 != nil || g != x || g == 0 {
					t.Errorf("%s checkpoint %d (%v), want %d (%v)", name, g, err1, x, err2)
				}
			}
			for _, id := range w.events {
				g, ok1, err1 := got.Events.Event(ctx, id)
				x, ok2, err2 := want.Events.Event(ctx, id)
				if err1 != nil || err2 != nil || !ok1 || !ok2 {
					t.Fatalf("event %s: %v %v %v %v", id, ok1, err1, ok2, err2)
				}
				equal(t, "event", g, x)
			}
			for _, id := range w.bookings {
				g, ok1, err1 := got.Bookings.Booking(ctx, id)
				x, ok2, err2 := want.Bookings.Booking(ctx, id)
				if err1 != nil || err2 != nil || !ok1 || !ok2 {
					t.Fatalf("booking %s: %v %v %v %v", id, ok1, err1, ok2, err2)
				}
				equal(t, "booking", g, x)
				gh, ok1, err1 := got.Events.SeatHold(ctx, id)
				xh, ok2, err2 := want.Events.SeatHold(ctx, id)
				if err1 != nil || err2 != nil || ok1 != ok2 {
					t.Fatalf("hold %s: %v %v %v %v", id, ok1, err1, ok2, err2)
				}
				equal(t, "seat hold", gh, xh)
			}
			for _, id := range w.payments {
				g, ok1, _ := got.Payments.Payment(ctx, id)
				x, ok2, _ := want.Payments.Payment(ctx, id)
				if !ok1 || !ok2 {
					t.Fatalf("payment %s: %v %v", id, ok1, ok2)
				}
				equal(t, "payment", g, x)
			}
			for _, id := range w.users {
				g, ok1, _ := got.Profiles.Profile(ctx, id)
				x, ok2, _ := want.Profiles.Profile(ctx, id)
				if !ok1 || !ok2 {
					t.Fatalf("profile %s: %v %v", id, ok1, ok2)
				}
				equal(t, "profile", g, x)
				for _, limit := range []string{"1", "4", ""} {
					equal(t, "bookings of a user, limit "+limit, userPages(t, got, id, limit), userPages(t, want, id, limit))
				}
			}
			compareListings(t, got, want)
			for _, minutes := range []int{0, 30, 60, 90, 200} {
				for _, limit := range []int{1, 5, 1000} {
					now := t0.Add(time.Duration(minutes) * time.Minute)
					g, err1 := got.Bookings.DueHolds(ctx, now, limit)
					x, err2 := want.Bookings.DueHolds(ctx, now, limit)
					if err1 != nil || err2 != nil {
						t.Fatal(err1, err2)
					}
					equal(t, fmt.Sprintf("due holds at +%dm, limit %d", minutes, limit), g, x)
				}
			}
		})
	}
}

// TestListingPagesLikeTheEmbeddedStore commits 250 events, many tied on
// starts_at, then moves and cancels some, to both stores, and compares
// every page and cursor of every listing request.
func TestListingPagesLikeTheEmbeddedStore(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 8))
	r, e := newStore(t), openEmbedded(t)
	var events []readmodels.EventView
	for i := range 250 {
		start := t0.Add(time.Duration(24+rng.IntN(40)) * time.Hour)
		if i%17 == 0 {
			start = start.Add(time.Duration(rng.IntN(3)) * time.Nanosecond)
		}
		ev := scheduled(fmt.Sprintf("Event %d %s", i, []string{"Jazz", "Rock", "Opera"}[i%3]), venues[i%len(venues)], start)
		if i%11 == 0 {
			ev.Status = event.StatusCancelled
		}
		events = append(events, ev)
	}
	commit := func(events []readmodels.EventView) {
		for _, s := range []storetest.Views{viewsOf(r), viewsOfEmbedded(e)} {
			for i := 0; i < len(events); i += 60 {
				cp, _ := s.Events.Checkpoint(ctx)
				if err := s.Events.Commit(ctx, projections.EventsCommit{From: cp, To: cp + 1, Events: events[i:min(i+60, len(events))]}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	commit(events)
	compareListings(t, viewsOf(r), viewsOfEmbedded(e))

	var changed []readmodels.EventView
	for i := 0; i < len(events); i += 9 {
		ev := events[i]
		switch i % 3 {
		case 0:
			ev.StartsAt = ev.StartsAt.Add(-3 * time.Hour)
		case 1:
			ev.Status = event.StatusCancelled
		case 2:
			ev.Name, ev.Venue, ev.Status = "Renamed JAZZ", "JIExpo", event.Scheduled
		}
		changed = append(changed, ev)
	}
	commit(changed)
	compareListings(t, viewsOf(r), viewsOfEmbedded(e))
}
