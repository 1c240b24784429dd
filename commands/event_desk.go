package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/fault"
)

// ErrEventNotFound refuses a decision about an event that does not exist.
var ErrEventNotFound = fmt.Errorf("commands: event not found: %w", fault.ErrNotFound)

// EventDesk is the single writer of every Event aggregate in this process.
//
// A flash sale sends thousands of holds per second at one event. Deciding
// each with its own load/append/retry cycle would collapse to one commit
// round trip per booking, with most attempts lost to conflicts. Instead each
// event gets one goroutine that keeps the aggregate in memory, takes every
// command queued for it, decides them one after another against the
// in-memory state, and appends all the resulting events as one batch under
// one expected revision (and the store group-commits batches of different
// events into one fsync). A conflict means another process wrote the
// stream: the writer reloads and decides the batch again, which is safe
// because deciding is pure.
type EventDesk struct {
	repo      *Repository
	snapshots SnapshotStore
	log       *slog.Logger

	// SnapshotEvery is how many events may accumulate on a stream after
	// its latest snapshot before a new one is taken.
	SnapshotEvery int64
	// MaxBatch bounds how many commands one append carries.
	MaxBatch int
	// IdleAfter is how long a writer with nothing to do keeps its
	// aggregate in memory.
	IdleAfter time.Duration

	mu      sync.Mutex
	writers map[uuid.UUID]*eventWriter
	wg      sync.WaitGroup
}

// NewEventDesk returns a desk storing through repo. snapshots may be nil.
func NewEventDesk(repo *Repository, snapshots SnapshotStore, log *slog.Logger) *EventDesk {
	return &EventDesk{
		repo: repo, snapshots: snapshots, log: log,
		SnapshotEvery: 1000, MaxBatch: 1024, IdleAfter: 2 * time.Minute,
		writers: map[uuid.UUID]*eventWriter{},
	}
}

// decision is one command for one event: decide runs on the writer's
// goroutine against the current state and may record events.
type decision struct {
	ctx    context.Context
	msg    Msg
	decide func(e *event.Event, now time.Time) error
	done   chan error
}

type eventWriter struct {
	desk  *EventDesk
	id    uuid.UUID
	queue chan *decision
	agg   *event.Event
	// snapshotAt is the version of the latest snapshot taken or loaded,
	// and snapshotSize how many bookings it listed.
	snapshotAt   int64
	snapshotSize int
	// snapshotting is set while a snapshot is being saved.
	snapshotting atomic.Bool
}

// do queues a decision for event id and waits until its effect is stored
// (or refused).
func (d *EventDesk) do(ctx context.Context, id uuid.UUID, msg Msg, decide func(*event.Event, time.Time) error) error {
	op := &decision{ctx: ctx, msg: msg, decide: decide, done: make(chan error, 1)}
	d.mu.Lock()
	w, ok := d.writers[id]
	if !ok {
		w = &eventWriter{desk: d, id: id, queue: make(chan *decision, 4096), snapshotAt: -1}
		d.writers[id] = w
		d.wg.Add(1)
		go w.run()
	}
	// A writer leaves, when idle, only under d.mu and with an empty queue,
	// so an op put in the queue under the lock is never left behind. A
	// full queue means a busy writer, which will not leave: wait outside.
	select {
	case w.queue <- op:
		d.mu.Unlock()
	default:
		d.mu.Unlock()
		select {
		case w.queue <- op:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		// The decision may still be stored; a retry of the same message is
		// recognised by the aggregate and changes nothing.
		return ctx.Err()
	}
}

// Wait blocks until every writer has stopped (they stop when idle).
func (d *EventDesk) Wait() { d.wg.Wait() }

func (w *eventWriter) run() {
	defer w.desk.wg.Done()
	batch := make([]*decision, 0, w.desk.MaxBatch)
	idle := time.NewTimer(w.desk.IdleAfter)
	defer idle.Stop()
	for {
		select {
		case op := <-w.queue:
			batch = append(batch[:0], op)
		drain:
			for len(batch) < w.desk.MaxBatch {
				select {
				case op := <-w.queue:
					batch = append(batch, op)
				default:
					break drain
				}
			}
			w.process(batch)
			clear(batch)
			idle.Reset(w.desk.IdleAfter)
		case <-idle.C:
			w.desk.mu.Lock()
			if len(w.queue) > 0 {
				w.desk.mu.Unlock()
				idle.Reset(w.desk.IdleAfter)
				continue
			}
			delete(w.desk.writers, w.id)
			w.desk.mu.Unlock()
			return
		}
	}
}

// process decides and stores one batch, retrying on conflicts.
func (w *eventWriter) process(batch []*decision) {
	stream := event.Stream(w.id)
	results := make([]error, len(batch))
	var err error
	for attempt := 0; attempt < maxConflictRetries; attempt++ {
		err = w.attempt(stream, batch, results)
		if !errors.Is(err, es.ErrConflict) {
			break
		}
		w.agg = nil
	}
	for i, op := range batch {
		if err != nil {
			op.done <- err
		} else {
			op.done <- results[i]
		}
	}
}

func (w *eventWriter) attempt(stream string, batch []*decision, results []error) error {
	ctx := context.Background() // the batch outlives any one caller's context
	if w.agg == nil {
		if err := w.load(ctx, stream); err != nil {
			return err
		}
	}
	if !w.agg.Exists() {
		// Do not cache a missing event: it may be created at any moment.
		w.agg = nil
		for i := range results {
			results[i] = ErrEventNotFound
		}
		return nil
	}
	now := w.desk.repo.clock()
	var recs []es.Record
	for i, op := range batch {
		if op.ctx.Err() != nil {
			results[i] = op.ctx.Err()
			continue
		}
		before := len(w.agg.Pending())
		results[i] = op.decide(w.agg, now)
		produced := w.agg.Pending()[before:]
		if len(produced) == 0 {
			continue
		}
		var err error
		if recs, err = w.desk.repo.appendRecords(recs, stream, w.id, produced, op.msg, 0); err != nil {
			w.agg = nil
			return err
		}
	}
	if len(recs) == 0 {
		return nil
	}
	_, err := w.desk.repo.store.Append(ctx, stream, es.ExpectVersion(w.agg.Version()), recs)
	if err != nil {
		w.agg = nil // the in-memory state has decisions that were not stored
		return fmt.Errorf("commands: append %s: %w", stream, err)
	}
	w.agg.Stored()
	w.maybeSnapshot(ctx, stream)
	return nil
}

// snapshotSchema versions the stored snapshot shape; a snapshot of another
// schema is ignored and the stream replayed in full.
const snapshotSchema = 1

type storedSnapshot struct {
	Schema int
	State  event.Snapshot
}

func (w *eventWriter) load(ctx context.Context, stream string) error {
	agg := &event.Event{}
	from := uint64(0)
	if w.desk.snapshots != nil {
		version, data, ok, err := w.desk.snapshots.LoadSnapshot(ctx, stream)
		if err != nil {
			w.desk.log.Warn("event snapshot unreadable, replaying the stream", "stream", stream, "err", err)
		}
		var snap storedSnapshot
		if ok && err == nil && json.Unmarshal(data, &snap) == nil && snap.Schema == snapshotSchema {
			agg = event.Restore(snap.State, version)
			from = uint64(version + 1)
			w.snapshotAt, w.snapshotSize = version, len(snap.State.Bookings)
		}
	}
	if err := w.desk.repo.loadFrom(ctx, stream, from, agg); err != nil {
		return err
	}
	w.agg = agg
	return nil
}

// maybeSnapshot takes a snapshot when enough events have accumulated since
// the last one: SnapshotEvery, or a quarter of the bookings the last one
// listed if that is more. A snapshot's size grows with the bookings the
// event decided, so a fixed interval made snapshotting quadratic over a
// flash sale; this keeps it linear, and a load never replays more than a
// quarter of what the snapshot holds.
//
// The state is copied on the writer's goroutine (cheap), but encoded and
// saved on another: late in a flash sale the snapshot lists tens of
// thousands of bookings, and encoding it stalled every hold queued behind
// the writer for milliseconds. One snapshot is saved at a time, so they
// are stored in version order.
func (w *eventWriter) maybeSnapshot(ctx context.Context, stream string) {
	every := max(w.desk.SnapshotEvery, int64(w.snapshotSize/4))
	if w.desk.snapshots == nil || w.agg.Version()-w.snapshotAt < every || !w.snapshotting.CompareAndSwap(false, true) {
		return
	}
	version := w.agg.Version()
	state := w.agg.Snapshot()
	// Counted as taken now: a failure is logged and the next one comes
	// later (a snapshot is a cache, and costs only load time when
	// missing).
	w.snapshotAt, w.snapshotSize = version, len(state.Bookings)
	w.desk.wg.Add(1)
	go func() {
		defer w.desk.wg.Done()
		defer w.snapshotting.Store(false)
		data, err := json.Marshal(storedSnapshot{Schema: snapshotSchema, State: state})
		if err == nil {
			err = w.desk.snapshots.SaveSnapshot(ctx, stream, version, data)
		}
		if err != nil {
			w.desk.log.Warn("event snapshot not saved", "stream", stream, "version", version, "err", err)
		}
	}()
}
