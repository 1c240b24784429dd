package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/projections/logtest"
	"github.com/ticketd/ticketing/readmodels"
)

// BenchmarkListEvents measures GET /events' query against Redis over
// 1,000 scheduled events: the first page, a page deep in the listing
// (from a cursor), a text search, and the first page from every core at
// once. Each is one script call, so the figures are dominated by the
// round trip and the decoding of the page's views.
func BenchmarkListEvents(b *testing.B) {
	s := newStore(b)
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
		{"search, rare match", readmodels.EventListRequest{Q: "concert 999"}, 1},
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

// BenchmarkProjectorApply measures projectors committing into Redis,
// batch by batch as the subscription delivers them. "hot event" is the
// events projector on one event taking one SeatsHeld after another (one
// view load and one commit script per batch). "bookings" is the bookings
// projector moving 5,000 bookings, placed earlier, to awaiting payment,
// with the views of a batch read in one round trip (the store's
// projections.BookingsBulkReader) and, for comparison in the same run,
// one view at a time.
func BenchmarkProjectorApply(b *testing.B) {
	for _, batch := range []int{64, 512} {
		b.Run(fmt.Sprintf("hot event, batches of %d", batch), func(b *testing.B) {
			reg := registry()
			const n = 20_000
			log, _ := logtest.HotEvent(b, reg, n, batch)
			benchProjector(b, log, n+1, func(s *Store) *projections.Projector {
				return projections.NewEvents(log, reg, s.Events(), nil)
			})
		})
		for _, bulk := range []bool{true, false} {
			name := fmt.Sprintf("bookings, batches of %d, bulk reads", batch)
			if !bulk {
				name = fmt.Sprintf("bookings, batches of %d, one view at a time", batch)
			}
			b.Run(name, func(b *testing.B) { benchBookings(b, batch, bulk) })
		}
	}
}

// oneAtATime hides a store's bulk reads from the projection.
type oneAtATime struct{ projections.BookingsStore }

func benchBookings(b *testing.B, batch int, bulk bool) {
	reg := registry()
	const n = 5_000
	log, _ := logtest.BookingsAwaitingPayment(b, reg, n, batch)
	benchProjector(b, log, 2*n, func(s *Store) *projections.Projector {
		if !bulk {
			return projections.NewBookings(log, reg, oneAtATime{s.Bookings()}, nil)
		}
		return projections.NewBookings(log, reg, s.Bookings(), nil)
	})
}

func benchProjector(b *testing.B, log *logtest.Log, records int, newProjector func(*Store) *projections.Projector) {
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		s := newStore(b)
		p := newProjector(s)
		b.StartTimer()
		start := time.Now()
		if err := p.CatchUp(context.Background(), uint64(records)); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(b.N*records)/elapsed.Seconds(), "records/s")
}
