// Package inproc is the in-process bus: it feeds the process managers
// (the booking saga, the payment processor) from the event store's
// subscription, with durable checkpoints, and delivers commands between
// services by direct dispatch through commands.Router.
//
// Delivery is at least once. Records are handled concurrently by a fixed
// set of workers; all records of one key (a booking, say) go to the same
// worker, so they are handled in order. The checkpoint only ever moves past
// records that are done, so a crash redelivers what was in flight, never
// skips it.
package inproc

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
)

// Reactor is a process manager fed by the bus.
type Reactor interface {
	// Name identifies the subscriber and its checkpoint.
	Name() string
	// Filter selects the records it reacts to.
	Filter() es.Filter
	// React handles one record; an error means "try again".
	React(ctx context.Context, rec *es.Record, p es.Payload) error
}

// Keyer is implemented by reactors that need records of one key handled in
// order even when they belong to different aggregates (a booking's records
// and the seats held for it, say). Others are keyed by aggregate id.
type Keyer interface {
	Key(rec *es.Record, p es.Payload) uuid.UUID
}

// Compensator is implemented by reactors that can undo the business effect
// of a record they are giving up on (reject the booking whose seats could
// not be held, say), so that a dead letter never leaves a flow half done.
// It is called once, before the record is dead-lettered.
type Compensator interface {
	GiveUp(ctx context.Context, rec *es.Record, p es.Payload, cause error) error
}

// Log is the part of the event store the runner reads.
type Log interface {
	SubscribeAll(ctx context.Context, from uint64, filter es.Filter, handle func(batch []es.Record) error) error
}

// Appender records dead letters in the event store.
type Appender interface {
	Append(ctx context.Context, stream string, expected es.ExpectedRevision, records []es.Record) (es.AppendResult, error)
}

// Checkpoints stores each subscriber's checkpoint durably.
type Checkpoints interface {
	Load(ctx context.Context, name string) (uint64, error)
	Save(ctx context.Context, name string, pos uint64) error
}

// Observer is told what the runner does, for metrics. Any method may be
// called concurrently.
type Observer interface {
	Handled(subscriber, recordType string, took time.Duration, err error)
	DeadLettered(subscriber, recordType string)
	Checkpointed(subscriber string, pos uint64)
}

// Runner runs reactors.
type Runner struct {
	log         Log
	reg         *es.Registry
	checkpoints Checkpoints
	dead        Appender
	logger      *slog.Logger
	observer    Observer

	// Workers is how many records a reactor handles at once.
	Workers int
	// MaxAttempts is how often a failing record is tried before it is
	// dead-lettered so that it stops holding up its key.
	MaxAttempts int
	// Backoff is the first pause between attempts; it doubles up to
	// MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// SaveEvery is how often the checkpoint is saved while records flow.
	SaveEvery time.Duration
}

// NewRunner returns a runner over log. dead and observer may be nil.
func NewRunner(log Log, reg *es.Registry, checkpoints Checkpoints, dead Appender, logger *slog.Logger, observer Observer) *Runner {
	return &Runner{
		log: log, reg: reg, checkpoints: checkpoints, dead: dead, logger: logger, observer: observer,
		Workers: 256, MaxAttempts: 10, Backoff: 20 * time.Millisecond, MaxBackoff: 5 * time.Second,
		SaveEvery: 100 * time.Millisecond,
	}
}

type job struct {
	rec *es.Record
	p   es.Payload
}

// Run feeds r from its checkpoint until ctx is done. On return every
// record handed to a worker has finished or been abandoned, and the
// checkpoint is saved.
func (rn *Runner) Run(ctx context.Context, r Reactor) error {
	name := r.Name()
	from, err := rn.checkpoints.Load(ctx, name)
	if err != nil {
		return err
	}
	tr := newTracker(from)
	keyer, _ := r.(Keyer)
	seed := maphash.MakeSeed()

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	queues := make([]chan job, max(1, rn.Workers))
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan job, 64)
		wg.Add(1)
		go func(q chan job) {
			defer wg.Done()
			for j := range q {
				rn.handle(workCtx, ctx, r, j, tr)
			}
		}(queues[i])
	}

	saved := from
	save := func(saveCtx context.Context) {
		if cp := tr.checkpoint(); cp != saved {
			if err := rn.checkpoints.Save(saveCtx, name, cp); err != nil {
				rn.logger.Warn("saving checkpoint", "subscriber", name, "err", err)
				return
			}
			saved = cp
			if rn.observer != nil {
				rn.observer.Checkpointed(name, cp)
			}
		}
	}
	saverDone := make(chan struct{})
	go func() {
		defer close(saverDone)
		t := time.NewTicker(rn.SaveEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				save(ctx)
			}
		}
	}()

	err = rn.log.SubscribeAll(ctx, from, r.Filter(), func(batch []es.Record) error {
		for i := range batch {
			rec := &batch[i]
			p, err := rn.reg.Decode(rec)
			if err != nil {
				// Undecodable is a bug, not bad luck: park it where an
				// operator will see it rather than wedge every booking.
				rn.deadLetter(ctx, name, rec, err)
				continue
			}
			key := rec.AggregateID
			if keyer != nil {
				key = keyer.Key(rec, p)
			}
			tr.dispatched(rec.Position)
			select {
			case queues[maphash.Bytes(seed, key[:])%uint64(len(queues))] <- job{rec: rec, p: p}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	<-saverDone
	save(context.WithoutCancel(ctx))
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// handle runs one record to success or to the dead-letter stream. It gives
// up early only when the runner is stopping (the record is then left
// undone and redelivered after a restart).
func (rn *Runner) handle(ctx, stop context.Context, r Reactor, j job, tr *tracker) {
	name := r.Name()
	backoff := rn.Backoff
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := r.React(ctx, j.rec, j.p)
		if rn.observer != nil {
			rn.observer.Handled(name, j.rec.Type, time.Since(start), err)
		}
		if err == nil {
			tr.completed(j.rec.Position)
			return
		}
		if stop.Err() != nil {
			return
		}
		if attempt >= rn.MaxAttempts {
			if c, ok := r.(Compensator); ok {
				if cerr := c.GiveUp(ctx, j.rec, j.p, err); cerr != nil {
					rn.logger.Error("compensation failed", "subscriber", name, "type", j.rec.Type, "stream", j.rec.Stream, "err", cerr)
				}
			}
			rn.deadLetter(ctx, name, j.rec, err)
			tr.completed(j.rec.Position)
			return
		}
		rn.logger.Warn("reaction failed, retrying", "subscriber", name, "type", j.rec.Type, "stream", j.rec.Stream, "attempt", attempt, "err", err)
		select {
		case <-time.After(backoff):
		case <-stop.Done():
			return
		}
		backoff = min(2*backoff, rn.MaxBackoff)
	}
}

// DeadLetterType is the type of the records that park a message its
// subscriber gave up on, in the stream "deadletter-<subscriber>".
const DeadLetterType = "bus.dead_lettered"

func (rn *Runner) deadLetter(ctx context.Context, name string, rec *es.Record, cause error) {
	rn.logger.Error("giving up on a record: dead-lettered", "subscriber", name, "type", rec.Type, "stream", rec.Stream, "position", rec.Position, "err", cause)
	if rn.observer != nil {
		rn.observer.DeadLettered(name, rec.Type)
	}
	if rn.dead == nil {
		return
	}
	parked := *rec
	parked.ID = es.DeriveID(rec.ID, "dead-letter:"+name)
	parked.Stream = "deadletter-" + name
	parked.Type = DeadLetterType
	parked.CausationID = rec.ID
	parked.Meta = map[string]string{
		"original_stream":   rec.Stream,
		"original_type":     rec.Type,
		"original_position": fmt.Sprint(rec.Position),
		"error":             cause.Error(),
	}
	if _, err := rn.dead.Append(context.WithoutCancel(ctx), parked.Stream, es.Any, []es.Record{parked}); err != nil {
		rn.logger.Error("recording dead letter", "subscriber", name, "err", err)
	}
}
