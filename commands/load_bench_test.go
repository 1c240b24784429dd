package commands_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/infra/eventstore/embedded"
)

// BenchmarkEventLoad measures what a restart, or a conflict with another
// process, costs the writer of a hot event: loading the Event aggregate
// from the embedded store. The stream holds 10,500 events (the event and
// 10,499 holds). "replay" decodes and applies every one of them;
// "snapshot" reads the latest snapshot, taken at 10,001 events, and
// replays the 499 after it, half the shortest interval between snapshots
// (SnapshotEvery, 1,000). The snapshot carries every booking's seats, so
// it is not small: snapshot-bytes reports its size.
func BenchmarkEventLoad(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := embedded.Open(b.TempDir(), embedded.Options{Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	repo := commands.NewRepository(st, commands.NewRegistry(), time.Now)
	ctx := context.Background()
	ev := uuid.New()
	const events, tail = 10_500, 499

	// The history is written without snapshots. Then one hold on a desk
	// that snapshots (and has never taken one) takes the snapshot, and the
	// tail follows on a desk that loads it, which takes no other snapshot
	// before 1,000 more events. A desk's Wait returns once its writers are
	// idle and the snapshots they started are stored.
	build := commands.NewEventDesk(repo, nil, log)
	if _, err := build.CreateEvent(ctx, commands.NewMsg(), commands.CreateEvent{
		EventID:     ev,
		Details:     event.Details{Name: "Flash sale", StartsAt: time.Now().Add(24 * time.Hour), MaxPerBooking: 10},
		Currency:    "IDR",
		TicketTypes: []event.TicketType{{Name: "general", Price: 1, Capacity: event.MaxCapacity}},
	}); err != nil {
		b.Fatal(err)
	}
	holds(b, build, ev, events-1-tail-1)
	for _, n := range []int{1, tail} {
		desk := commands.NewEventDesk(repo, st, log)
		desk.IdleAfter = time.Millisecond
		holds(b, desk, ev, n)
		desk.Wait()
	}
	version, snapshot, ok, err := st.LoadSnapshot(ctx, event.Stream(ev))
	if err != nil || !ok || version != events-tail-1 {
		b.Fatalf("snapshot at version %d (found %v, %v), want %d", version, ok, err, events-tail-1)
	}

	for _, c := range []struct {
		name      string
		snapshots commands.SnapshotStore
	}{{"replay", nil}, {"snapshot", st}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var elapsed time.Duration
			for range b.N {
				// A new desk has nothing in memory: its first command loads.
				desk := commands.NewEventDesk(repo, c.snapshots, log)
				desk.IdleAfter = time.Millisecond
				start := time.Now()
				state, err := desk.EventState(ctx, ev)
				elapsed += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				if held := state.TicketTypes[0].Held; held != events-1 {
					b.Fatalf("loaded %d held seats, want %d", held, events-1)
				}
				b.StopTimer()
				desk.Wait() // its writer leaves when idle
				b.StartTimer()
			}
			if c.snapshots == nil {
				b.ReportMetric(float64(b.N*events)/elapsed.Seconds(), "events/s")
			} else {
				b.ReportMetric(float64(len(snapshot)), "snapshot-bytes")
			}
		})
	}
}

// holds places n one-seat holds for new bookings on event ev, from 64
// callers so that the desk batches them.
func holds(b *testing.B, desk *commands.EventDesk, ev uuid.UUID, n int) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				id := uuid.New()
				err := desk.HoldSeats(context.Background(), commands.Msg{ID: id, CorrelationID: id},
					commands.HoldSeats{EventID: ev, BookingID: id, TicketType: "general", Quantity: 1})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
