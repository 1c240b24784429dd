package storetest

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/projections/logtest"
	"github.com/ticketd/ticketing/readmodels"
)

// The benchmarks below are run by every read model store against itself,
// so that the stores are measured by the same code. open returns an empty
// store's read models and the store itself: benchmarks that open a store
// per iteration close it when done with it, so closing it again (as the
// opener's cleanup does) must be harmless.

// ListCase is one timed request of BenchmarkListEvents, and the number of
// events its page must hold.
type ListCase struct {
	Name string
	Req  readmodels.EventListRequest
	Want int
}

// BenchmarkListEvents measures GET /events' query over 1,000 scheduled
// events ("Concert 0" to "Concert 999", at four venues, an hour apart):
// the first page, a page deep in the listing (from a cursor), a text
// search, then the store's extra cases, and last the first page from
// every core at once.
func BenchmarkListEvents(b *testing.B, open func(b *testing.B) (Views, io.Closer), extra ...ListCase) {
	v, _ := open(b)
	ctx := context.Background()
	at := time.Date(2030, 1, 1, 19, 0, 0, 0, time.UTC)
	events := make([]readmodels.EventView, 1000)
	for i := range events {
		events[i] = readmodels.EventView{
			ID: uuid.New(), Name: fmt.Sprintf("Concert %d", i), Description: "An evening of music",
			Venue:    []string{"Istora Senayan", "JIExpo", "Teater Jakarta", "Gedung Kesenian"}[i%4],
			StartsAt: at.Add(time.Duration(i) * time.Hour), Currency: "IDR", MaxPerBooking: 10,
			Status: event.Scheduled,
			TicketTypes: []readmodels.TicketTypeView{
				{Name: "VIP", Price: 1_500_000, Capacity: 100, Available: 100},
				{Name: "Regular", Price: 500_000, Capacity: 1000, Available: 1000},
			},
			CreatedAt: at, UpdatedAt: at, Position: uint64(i + 1),
		}
	}
	if err := v.Events.Commit(ctx, projections.EventsCommit{From: 0, To: 1000, Events: events}); err != nil {
		b.Fatal(err)
	}
	q := readmodels.NewEventQueries(v.Events)
	var deep string
	for range 9 {
		page, err := q.ListEvents(ctx, readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "100", Cursor: deep}})
		if err != nil {
			b.Fatal(err)
		}
		deep = page.NextCursor
	}

	cases := append([]ListCase{
		{"first page", readmodels.EventListRequest{}, 20},
		{"page 10 of 100", readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "100", Cursor: deep}}, 100},
		{"search", readmodels.EventListRequest{Q: "jiexpo"}, 20},
	}, extra...)
	for _, c := range cases {
		b.Run(c.Name, func(b *testing.B) {
			b.ReportAllocs()
			start := time.Now()
			for range b.N {
				page, err := q.ListEvents(ctx, c.Req)
				if err != nil || len(page.Items) != c.Want {
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

// BenchmarkProjectorApply measures projectors committing into the store,
// batch by batch as the subscription delivers them (projections/logtest's
// workloads). "hot event" is the events projector on one event taking one
// SeatsHeld after another: one view and one commit per batch. "bookings"
// is the bookings projector moving 5,000 bookings, placed earlier, to
// awaiting payment: a view per record, and the user and deadline indexes
// kept in step. A store whose bookings read many views in one round trip
// (projections.BookingsBulkReader) runs the bookings cases twice, to be
// compared in the same run: "bulk reads", and "one view at a time" with
// the bulk reads hidden from the projection. Every iteration catches a
// fresh projector up into a fresh store; opening it, and checking what
// the projector left in it, are not timed.
func BenchmarkProjectorApply(b *testing.B, open func(b *testing.B) (Views, io.Closer)) {
	v, s := open(b)
	_, bulk := v.Bookings.(projections.BookingsBulkReader)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	for _, batch := range []int{64, 512} {
		b.Run(fmt.Sprintf("hot event, batches of %d", batch), func(b *testing.B) {
			benchHotEvent(b, open, batch)
		})
		if !bulk {
			b.Run(fmt.Sprintf("bookings, batches of %d", batch), func(b *testing.B) {
				benchBookings(b, open, batch, false)
			})
			continue
		}
		b.Run(fmt.Sprintf("bookings, batches of %d, bulk reads", batch), func(b *testing.B) {
			benchBookings(b, open, batch, false)
		})
		b.Run(fmt.Sprintf("bookings, batches of %d, one view at a time", batch), func(b *testing.B) {
			benchBookings(b, open, batch, true)
		})
	}
}

func benchHotEvent(b *testing.B, open func(b *testing.B) (Views, io.Closer), batch int) {
	reg := commands.NewRegistry()
	const n = 20_000
	log, ev := logtest.HotEvent(b, reg, n, batch)
	benchProjector(b, open, n+1, func(v Views) *projections.Projector {
		return projections.NewEvents(log, reg, v.Events, nil)
	}, func(v Views) {
		got, ok, err := v.Events.Event(context.Background(), ev)
		if err != nil || !ok || got.TicketTypes[0].Available != 10_000_000-n {
			b.Fatalf("after the run: %+v, %v, %v", got.TicketTypes, ok, err)
		}
	})
}

// oneAtATime hides a store's bulk reads from the projection.
type oneAtATime struct{ projections.BookingsStore }

func benchBookings(b *testing.B, open func(b *testing.B) (Views, io.Closer), batch int, hideBulk bool) {
	reg := commands.NewRegistry()
	const n = 5_000
	log, ids := logtest.BookingsAwaitingPayment(b, reg, n, batch)
	benchProjector(b, open, 2*n, func(v Views) *projections.Projector {
		if hideBulk {
			return projections.NewBookings(log, reg, oneAtATime{v.Bookings}, nil)
		}
		return projections.NewBookings(log, reg, v.Bookings, nil)
	}, func(v Views) {
		got, ok, err := v.Bookings.Booking(context.Background(), ids[n-1])
		if err != nil || !ok || got.Status != booking.StatusAwaitingPayment {
			b.Fatalf("after the run: %+v, %v, %v", got, ok, err)
		}
	})
}

// benchProjector times a fresh projector catching up with records records
// into a fresh store, b.N times, and checks each store with verify.
func benchProjector(b *testing.B, open func(b *testing.B) (Views, io.Closer), records int, newProjector func(Views) *projections.Projector, verify func(Views)) {
	b.ReportAllocs()
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		v, s := open(b)
		p := newProjector(v)
		b.StartTimer()
		start := time.Now()
		if err := p.CatchUp(context.Background(), uint64(records)); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		b.StopTimer()
		verify(v)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*records)/elapsed.Seconds(), "records/s")
}
