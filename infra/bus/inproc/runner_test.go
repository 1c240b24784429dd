package inproc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/infra/checkpoint"
	"github.com/ticketd/ticketing/infra/eventstore/memory"
)

func TestTrackerOnlyPassesFinishedRecords(t *testing.T) {
	tr := newTracker(10)
	for _, p := range []uint64{11, 12, 13, 14} {
		tr.dispatched(p)
	}
	steps := []struct {
		done uint64
		want uint64
	}{
		{13, 10}, // 11 and 12 still running
		{11, 11},
		{14, 11}, // 12 still running
		{12, 14},
	}
	for _, s := range steps {
		tr.completed(s.done)
		if got := tr.checkpoint(); got != s.want {
			t.Fatalf("after %d completed: checkpoint %d, want %d", s.done, got, s.want)
		}
	}
	if tr.pending() != 0 {
		t.Fatalf("%d records still pending", tr.pending())
	}
}

type ping struct{ N int }

func (ping) EventType() string { return "test.ping" }

// reactor records what it handled and fails the records it is told to.
type reactor struct {
	mu      sync.Mutex
	handled map[int]int // N → times handled OK
	order   map[uuid.UUID][]int
	poison  int
	fail    map[int]int // N → failures left
}

func (r *reactor) Name() string      { return "test-reactor" }
func (r *reactor) Filter() es.Filter { return es.Filter{Types: []string{"test.ping"}} }
func (r *reactor) React(_ context.Context, rec *es.Record, p es.Payload) error {
	n := p.(ping).N
	r.mu.Lock()
	defer r.mu.Unlock()
	if n == r.poison {
		return errors.New("poison")
	}
	if r.fail[n] > 0 {
		r.fail[n]--
		return errors.New("transient")
	}
	r.handled[n]++
	r.order[rec.AggregateID] = append(r.order[rec.AggregateID], n)
	return nil
}

func TestRunnerDeliversInOrderPerKeyRetriesAndDeadLetters(t *testing.T) {
	store := memory.New()
	defer store.Close()
	reg := es.NewRegistry()
	reg.Register(ping{}, 1)
	keys := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	const n = 90
	for i := 1; i <= n; i++ {
		_, _, data, _ := reg.Encode(ping{N: i})
		key := keys[i%3]
		rec := es.Record{ID: uuid.New(), Type: "test.ping", SchemaVersion: 1, AggregateID: key, Data: data}
		if _, err := store.Append(context.Background(), "ping-"+key.String(), es.Any, []es.Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
	r := &reactor{handled: map[int]int{}, order: map[uuid.UUID][]int{}, poison: 42, fail: map[int]int{7: 2, 50: 1}}
	cps := checkpoint.NewMemory(map[string]uint64{})
	runner := NewRunner(store, reg, cps, store, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	runner.Workers, runner.MaxAttempts, runner.Backoff, runner.SaveEvery = 4, 3, time.Millisecond, 5*time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx, r) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cp, _ := cps.Load(ctx, r.Name())
		if cp == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint stuck at %d", cp)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}

	for i := 1; i <= n; i++ {
		want := 1
		if i == r.poison {
			want = 0
		}
		if r.handled[i] != want {
			t.Errorf("record %d handled %d times, want %d", i, r.handled[i], want)
		}
	}
	for key, got := range r.order {
		for j := 1; j < len(got); j++ {
			if got[j] < got[j-1] {
				t.Fatalf("key %s handled out of order: %v", key, got)
			}
		}
	}
	dead, err := store.ReadStream(context.Background(), "deadletter-test-reactor", es.ReadOptions{})
	if err != nil || len(dead) != 1 || dead[0].Meta["error"] != "poison" {
		t.Fatalf("dead letters = %+v, %v; want the poison record", dead, err)
	}
}

func TestRunnerResumesFromItsCheckpoint(t *testing.T) {
	store := memory.New()
	defer store.Close()
	reg := es.NewRegistry()
	reg.Register(ping{}, 1)
	for i := 1; i <= 10; i++ {
		_, _, data, _ := reg.Encode(ping{N: i})
		if _, err := store.Append(context.Background(), "ping-x", es.Any, []es.Record{{ID: uuid.New(), Type: "test.ping", SchemaVersion: 1, Data: data}}); err != nil {
			t.Fatal(err)
		}
	}
	cps := checkpoint.NewMemory(map[string]uint64{"test-reactor": 6})
	r := &reactor{handled: map[int]int{}, order: map[uuid.UUID][]int{}, fail: map[int]int{}}
	runner := NewRunner(store, reg, cps, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	runner.SaveEvery = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx, r) }()
	for cp, _ := cps.Load(ctx, "test-reactor"); cp != 10; cp, _ = cps.Load(ctx, "test-reactor") {
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	<-done
	for i := 1; i <= 10; i++ {
		want := 0
		if i > 6 {
			want = 1
		}
		if r.handled[i] != want {
			t.Fatalf("record %d handled %d times, want %d", i, r.handled[i], want)
		}
	}
}
