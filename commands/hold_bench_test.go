package commands_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/infra/eventstore/embedded"
	"github.com/ticketd/ticketing/infra/eventstore/memory"
)

// BenchmarkHoldPath measures seat decisions on ONE event: concurrent
// callers send HoldSeats for distinct bookings to the event's writer,
// which decides them against its in-memory state and appends each batch
// under one expected revision. On the embedded store every append is
// fsynced. It reports decisions/s; capacity is large enough that every
// hold succeeds, so each decision is a full hold.
func BenchmarkHoldPath(b *testing.B) {
	for _, store := range []string{"embedded-fsync", "memory"} {
		for _, clients := range []int{1, 16, 128} {
			b.Run(store+"/clients="+strconv.Itoa(clients), func(b *testing.B) {
				benchHolds(b, store, clients)
			})
		}
	}
}

func benchHolds(b *testing.B, storeKind string, clients int) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var st interface {
		commands.EventStore
		commands.SnapshotStore
	}
	switch storeKind {
	case "memory":
		m := memory.New()
		b.Cleanup(func() { m.Close() })
		st = m
	default:
		e, err := embedded.Open(b.TempDir(), embedded.Options{Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { e.Close() })
		st = e
	}
	repo := commands.NewRepository(st, commands.NewRegistry(), time.Now)
	desk := commands.NewEventDesk(repo, st, log)
	ctx := context.Background()
	ev := uuid.New()
	_, err := desk.CreateEvent(ctx, commands.NewMsg(), commands.CreateEvent{
		EventID:     ev,
		Details:     event.Details{Name: "Flash sale", StartsAt: time.Now().Add(24 * time.Hour), MaxPerBooking: 10},
		Currency:    "IDR",
		TicketTypes: []event.TicketType{{Name: "general", Price: 1, Capacity: event.MaxCapacity}},
	})
	if err != nil {
		b.Fatal(err)
	}
	rate := concurrently(b, clients, func() error {
		id := uuid.New()
		return desk.HoldSeats(ctx, commands.Msg{ID: id, CorrelationID: id}, commands.HoldSeats{EventID: ev, BookingID: id, TicketType: "general", Quantity: 1})
	})
	b.ReportMetric(rate, "decisions/s")
	b.StopTimer()
	held, err := desk.EventState(ctx, ev)
	if err != nil {
		b.Fatal(err)
	}
	if got := held.TicketTypes[0].Held; got != b.N {
		b.Fatalf("held %d seats after %d holds", got, b.N)
	}
}

// concurrently runs op b.N times in all, from clients goroutines at once,
// with the timer reset at the start, and returns the operations per
// second. An error fails the benchmark and stops its goroutine.
func concurrently(b *testing.B, clients int, op func() error) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(b.N) / time.Since(start).Seconds()
}
