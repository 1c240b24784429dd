package projections_test

import (
	"context"
	"errors"
	"reflect"
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
)

func assertEqual[V any](t *testing.T, what string, got, want V) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// manyHolds appends one event and n holds of one seat each on it.
func manyHolds(e *env, n int) []uuid.UUID {
	big := created
	big.TicketTypes = []event.TicketType{{Name: "A", Price: 100, Capacity: 1_000_000}}
	payloads := []es.Payload{big}
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
		payloads = append(payloads, held(ids[i], "A", 1))
	}
	e.log.Append(event.Stream(evID), evID, payloads...)
	return ids
}

func TestEventsProjectionCoalescesABatchIntoOneWritePerEvent(t *testing.T) {
	e := newEnv(t)
	e.log.BatchSize = 10_000
	manyHolds(e, 1000)
	e.catchUp(e.events())

	if n := len(e.store.eventCommits); n != 1 {
		t.Fatalf("1001 records in one batch made %d commits, want 1", n)
	}
	c := e.store.eventCommits[0]
	if len(c.Events) != 1 || len(c.Holds) != 1000 || c.From != 0 || c.To != 1001 {
		t.Fatalf("commit has %d events, %d holds, checkpoint %d->%d; want 1 event, 1000 holds, 0->1001",
			len(c.Events), len(c.Holds), c.From, c.To)
	}
	if got := c.Events[0].TicketTypes[0]; got.Held != 1000 || got.Available != 999_000 {
		t.Fatalf("ticket type after the batch: %+v", got)
	}
}

func TestEventsProjectionCommitsBatchByBatch(t *testing.T) {
	e := newEnv(t)
	e.log.BatchSize = 10
	manyHolds(e, 95)
	e.catchUp(e.events())

	if n := len(e.store.eventCommits); n != 10 {
		t.Fatalf("96 records in batches of 10 made %d commits, want 10", n)
	}
	for i, c := range e.store.eventCommits {
		if len(c.Events) != 1 {
			t.Fatalf("commit %d wrote the event %d times", i, len(c.Events))
		}
		if i > 0 && c.From != e.store.eventCommits[i-1].To {
			t.Fatalf("commit %d starts at %d, the one before ended at %d", i, c.From, e.store.eventCommits[i-1].To)
		}
	}
	if got := e.store.events[evID].TicketTypes[0].Held; got != 95 {
		t.Fatalf("held = %d, want 95", got)
	}
}

func TestEventsProjectionHoldHeldAndReleasedInOneBatchWritesNoHold(t *testing.T) {
	e := newEnv(t)
	e.log.Append(event.Stream(evID), evID, created, held(bk1, "A", 2), released(bk1, "A", 2))
	e.catchUp(e.events())
	c := e.store.eventCommits[0]
	if len(c.Holds) != 0 || len(c.Released) != 0 {
		t.Fatalf("commit writes holds %v and releases %v, want neither", c.Holds, c.Released)
	}
}

func TestProjectorAppliesRedeliveredRecordsOnce(t *testing.T) {
	e := newEnv(t)
	e.log.BatchSize = 3
	e.log.Redeliver = true
	manyHolds(e, 20)
	e.catchUp(e.events())
	if got := e.store.events[evID].TicketTypes[0].Held; got != 20 {
		t.Fatalf("held = %d after redeliveries, want 20", got)
	}
}

func TestProjectorResumesFromItsCheckpoint(t *testing.T) {
	e := newEnv(t)
	manyHolds(e, 10)
	e.catchUp(e.events())
	first := len(e.store.eventCommits)

	for range 5 {
		e.log.Append(event.Stream(evID), evID, held(uuid.New(), "A", 1))
	}
	// A new projector, as after a restart, on the same store.
	e.catchUp(e.events())
	if got := e.store.events[evID].TicketTypes[0].Held; got != 15 {
		t.Fatalf("held = %d after restart, want 15", got)
	}
	resumed := e.store.eventCommits[first]
	if resumed.From != 11 {
		t.Fatalf("the restarted projector's first commit starts at %d, want 11", resumed.From)
	}
}

func TestProjectorStopsAtAnUndecodableRecord(t *testing.T) {
	e := newEnv(t)
	e.log.BatchSize = 1
	e.log.Append(event.Stream(evID), evID, created)
	e.log.AppendRecords(es.Record{
		ID: uuid.New(), Stream: event.Stream(evID), Type: event.TypeSeatsHeld, SchemaVersion: 1,
		AggregateID: evID, Data: []byte(`{"Quantity":"many"}`),
	})
	e.log.Append(event.Stream(evID), evID, held(bk1, "A", 1))
	p := e.events()
	err := e.tryCatchUp(p)
	if err == nil || !strings.Contains(err.Error(), "position 2") || !strings.Contains(err.Error(), "decode") {
		t.Fatalf("err = %v, want a decode failure at position 2", err)
	}
	if cp := p.Checkpoint(); cp != 1 {
		t.Fatalf("checkpoint = %d, want 1: the record before is applied, the ones from it on are not", cp)
	}
	if got := e.store.events[evID].TicketTypes[0].Held; got != 0 {
		t.Fatalf("held = %d: a record after the bad one was applied", got)
	}
}

func TestProjectorStopsAtAContradictingRecord(t *testing.T) {
	other := uuid.New()
	tests := []struct {
		name      string
		projector func(*env) *projections.Projector
		stream    string
		id        uuid.UUID
		given     []es.Payload
	}{
		{"seats sold that no booking holds", (*env).events, event.Stream(evID), evID, []es.Payload{created, sold(bk1)}},
		{"seats released twice", (*env).events, event.Stream(evID), evID, []es.Payload{created, held(bk1, "A", 1), released(bk1, "A", 1), released(bk1, "A", 1)}},
		{"seats held of an unknown ticket type", (*env).events, event.Stream(evID), evID, []es.Payload{created, held(bk1, "Z", 1)}},
		{"seats held twice for one booking", (*env).events, event.Stream(evID), evID, []es.Payload{created, held(bk1, "A", 1), held(bk1, "A", 1)}},
		{"update of an event never created", (*env).events, event.Stream(other), other, []es.Payload{event.Updated{Details: details, At: t0}}},
		{"booking held before placed", (*env).bookings, booking.Stream(other), other, []es.Payload{booking.AwaitingPayment{At: t0}}},
		{"payment requested for an unknown booking", (*env).bookings, payment.Stream(payID), payID, []es.Payload{payment.Requested{PaymentID: payID, BookingID: other, At: t0}}},
		{"payment settled before requested", func(e *env) *projections.Projector { return e.payments(nil) }, payment.Stream(other), other, []es.Payload{payment.Settled{At: t0}}},
		{"profile of a user never registered", (*env).profiles, user.Stream(other), other, []es.Payload{user.ProfileUpdated{Name: "x", At: t0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.log.Append(tt.stream, tt.id, tt.given...)
			err := e.tryCatchUp(tt.projector(e))
			if !errors.Is(err, projections.ErrInconsistent) {
				t.Fatalf("err = %v, want ErrInconsistent", err)
			}
		})
	}
}

func TestProjectorStopsWhenTheCheckpointMovesUnderIt(t *testing.T) {
	e := newEnv(t)
	e.log.Append(event.Stream(evID), evID, created)
	p := e.events()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	if err := p.WaitFor(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Another writer (or a promoted rebuild) moved the checkpoint.
	e.store.mu.Lock()
	e.store.checkpoints[projections.NameEvents] = 7
	e.store.mu.Unlock()
	e.log.Append(event.Stream(evID), evID, held(bk1, "A", 1))
	if err := <-done; !errors.Is(err, projections.ErrCheckpointConflict) {
		t.Fatalf("Run = %v, want ErrCheckpointConflict", err)
	}
}

func TestProjectorRuns(t *testing.T) {
	t.Run("until ctx is done, with ctx's error", func(t *testing.T) {
		e := newEnv(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		p := e.events()
		go func() { done <- p.Run(ctx) }()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	})
	t.Run("once at a time", func(t *testing.T) {
		e := newEnv(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := e.events()
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		e.log.Append(event.Stream(evID), evID, created)
		if err := p.WaitFor(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := p.Run(ctx); !errors.Is(err, projections.ErrRunning) {
			t.Fatalf("second Run = %v, want ErrRunning", err)
		}
		cancel()
		<-done
	})
	t.Run("only with a registry that knows its events", func(t *testing.T) {
		e := newEnv(t)
		reg := es.NewRegistry()
		user.Register(reg)
		p := projections.NewEvents(e.log, reg, memEvents{e.store}, nil)
		if err := p.Run(context.Background()); err == nil || !strings.Contains(err.Error(), event.TypeCreated) {
			t.Fatalf("Run = %v, want a complaint about %s", err, event.TypeCreated)
		}
	})
}

func TestWaitFor(t *testing.T) {
	tests := []struct {
		name string
		// then appends records after the event's creation and returns the
		// position to wait for.
		then func(e *env) uint64
	}{
		{"a record the projection reads", func(e *env) uint64 {
			return e.log.Append(event.Stream(evID), evID, held(bk1, "A", 1))
		}},
		{"a record it does not read, after one it reads", func(e *env) uint64 {
			e.log.Append(event.Stream(evID), evID, held(bk1, "A", 1))
			return e.log.Append(user.Stream(usrID), usrID, user.Registered{UserID: usrID, Email: "a@example.com", Name: "A", Role: user.Customer, At: t0})
		}},
		{"the head, far past the last record it reads", func(e *env) uint64 {
			var head uint64
			for range 600 {
				head = e.log.Append(user.Stream(usrID), usrID, user.RoleChanged{Role: user.Admin, At: t0})
			}
			return head
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.log.Append(event.Stream(evID), evID, created)
			p := e.events()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			pos := tt.then(e)
			if err := p.WaitFor(ctx, pos); err != nil {
				t.Fatalf("WaitFor(%d) = %v", pos, err)
			}
			if v := e.store.events[evID]; v.Position == 0 {
				t.Fatal("WaitFor returned before the event was projected")
			}
			cancel()
			<-done
		})
	}
}

func TestWaitForGivesUpWithItsContext(t *testing.T) {
	e := newEnv(t)
	pos := e.log.Append(event.Stream(evID), evID, created)
	p := e.events() // not running
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.WaitFor(ctx, pos); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor = %v, want DeadlineExceeded", err)
	}
}

func TestCatchUpStopsAtTheTarget(t *testing.T) {
	e := newEnv(t)
	manyHolds(e, 50)
	target := e.log.Append(user.Stream(usrID), usrID, user.RoleChanged{Role: user.Admin, At: t0})
	e.log.Append(event.Stream(evID), evID, held(bk1, "A", 1)) // after the target
	p := e.events()
	if err := p.CatchUp(context.Background(), target); err != nil {
		t.Fatal(err)
	}
	if cp := p.Checkpoint(); cp < 51 || cp > target+1 {
		t.Fatalf("checkpoint = %d, want between 51 and %d", cp, target+1)
	}
	if got := e.store.events[evID].TicketTypes[0].Held; got != 50 && got != 51 {
		t.Fatalf("held = %d", got)
	}
}

// BenchmarkEventsProjector measures how many records per second the
// events projector decodes and applies, on a hot event receiving one
// SeatsHeld after another, against an in-memory store.
func BenchmarkEventsProjector(b *testing.B) {
	reg := registry()
	const n = 20_000
	lg := logtest.New(b, reg)
	big := created
	big.TicketTypes = []event.TicketType{{Name: "A", Price: 100, Capacity: 10_000_000}}
	payloads := []es.Payload{big}
	for range n {
		payloads = append(payloads, held(uuid.New(), "A", 1))
	}
	lg.Append(event.Stream(evID), evID, payloads...)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		p := projections.NewEvents(lg, reg, memEvents{newMemStore()}, nil)
		if err := p.CatchUp(context.Background(), n+1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*(n+1))/time.Since(start).Seconds(), "records/s")
}
