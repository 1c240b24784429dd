package embedded

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/projections/logtest"
	"github.com/ticketd/ticketing/readmodels"
)

// BenchmarkListEvents measures GET /events' query over 1,000 scheduled
// events: the first page, a page deep in the listing (from a cursor), a
// text search, and the first page from every core at once.
func BenchmarkListEvents(b *testing.B) {
	s := open(b, b.TempDir(), Options{})
	base := time.Date(2030, 1, 1, 19, 0, 0, 0, time.UTC)
	events := make([]readmodels.EventView, 1000)
	for i := range events {
		events[i] = readmodels.EventView{
			ID: uuid.New(), Name: fmt.Sprintf("Concert %d", i), Description: "An evening of music",
			Venue:    []string{"Istora Senayan", "JIExpo", "Teater Jakarta", "Gedung Kesenian"}[i%4],
			StartsAt: base.Add(time.Duration(i) * time.Hour), Currency: "IDR", MaxPerBooking: 10,
			Status: event.Scheduled,
			TicketTypes: []readmodels.TicketTypeView{
				{Name: "VIP", Price: 1_500_000, Capacity: 100, Available: 100},
				{Name: "Regular", Price: 500_000, Capacity: 1000, Available: 1000},
			},
			CreatedAt: base, UpdatedAt: base, Position: uint64(i + 1),
		}
	}
	if err := s.Events().Commit(context.Background(), projections.EventsCommit{From: 0, To: 1000, Events: events}); err != nil {
		b.Fatal(err)
	}
	q := readmodels.NewEventQueries(s.Events())
	ctx := context.Background()
	first, err := q.ListEvents(ctx, readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "100"}})
	if err != nil {
		b.Fatal(err)
	}
	deep := first.NextCursor
	for range 8 {
		page, _ := q.ListEvents(ctx, readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "100", Cursor: deep}})
		deep = page.NextCursor
	}

	cases := []struct {
		name string
		req  readmodels.EventListRequest
		want int
	}{
		{"first page", readmodels.EventListRequest{}, 20},
		{"page 10 of 100", readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "100", Cursor: deep}}, 100},
		{"search", readmodels.EventListRequest{Q: "jiexpo"}, 20},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			start := time.Now()
			for range b.N {
				page, err := q.ListEvents(ctx, c.req)
				if err != nil || len(page.Items) != c.want {
					b.Fatalf("%d items, %v", len(page.Items), err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
	b.Run("first page, parallel", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := q.ListEvents(ctx, readmodels.EventListRequest{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	})
}

// BenchmarkProjectorApply measures projectors committing into the
// embedded store (each commit an fsync), batch by batch as the
// subscription delivers them. "hot event" is the events projector on one
// event taking one SeatsHeld after another (one view and one commit per
// batch). "bookings" is the bookings projector moving 5,000 bookings,
// placed earlier, to awaiting payment: a view per record, and the user and
// deadline indexes kept in step. The Redis adapter runs the same cases.
func BenchmarkProjectorApply(b *testing.B) {
	for _, batch := range []int{64, 512} {
		b.Run(fmt.Sprintf("hot event, batches of %d", batch), func(b *testing.B) {
			reg := registry()
			const n = 20_000
			log, ev := logtest.HotEvent(b, reg, n, batch)
			benchProjector(b, n+1, func(s *Store) *projections.Projector {
				return projections.NewEvents(log, reg, s.Events(), nil)
			}, func(s *Store) {
				v, ok, err := s.Events().Event(context.Background(), ev)
				if err != nil || !ok || v.TicketTypes[0].Available != 10_000_000-n {
					b.Fatalf("after the run: %+v, %v, %v", v.TicketTypes, ok, err)
				}
			})
		})
		b.Run(fmt.Sprintf("bookings, batches of %d", batch), func(b *testing.B) {
			reg := registry()
			const n = 5_000
			log, ids := logtest.BookingsAwaitingPayment(b, reg, n, batch)
			benchProjector(b, 2*n, func(s *Store) *projections.Projector {
				return projections.NewBookings(log, reg, s.Bookings(), nil)
			}, func(s *Store) {
				v, ok, err := s.Bookings().Booking(context.Background(), ids[n-1])
				if err != nil || !ok || v.Status != booking.StatusAwaitingPayment {
					b.Fatalf("after the run: %+v, %v, %v", v, ok, err)
				}
			})
		})
	}
}

// benchProjector times a fresh projector catching up with records records
// into a fresh store, b.N times, and checks the result with verify.
func benchProjector(b *testing.B, records int, newProjector func(*Store) *projections.Projector, verify func(*Store)) {
	b.ReportAllocs()
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		s := open(b, b.TempDir(), Options{})
		p := newProjector(s)
		b.StartTimer()
		start := time.Now()
		if err := p.CatchUp(context.Background(), uint64(records)); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		b.StopTimer()
		verify(s)
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*records)/elapsed.Seconds(), "records/s")
}
