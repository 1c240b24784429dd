package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/projections"
)

// replay reads the log once for every projection being rebuilt and hands
// each its own copy of the stream (a replayLog). Every projection reads
// the whole log from the first record, so one reading instead of one per
// projection saves the reading and decoding of records (which, from
// Kafka, costs as much as applying them).
//
// The projections go at the pace of the slowest: a batch is handed on
// when every projection still running has taken the one before. A
// projection that stops (done or failed) no longer holds the others up.
type replay struct {
	log  projections.EventLog
	subs []*replayLog
	// head is the head of the log when the rebuild started; read counts
	// the records read up to it.
	head uint64
	read atomic.Uint64

	stop context.CancelFunc
	done chan struct{}
	err  error // why the reading ended; read after done is closed
}

func newReplay(log projections.EventLog, head uint64) *replay {
	return &replay{log: log, head: head, done: make(chan struct{})}
}

// Read is how many records, up to the head the rebuild started at, the
// replay has read: the number of events a rebuild replays, which log
// positions do not tell where they are offsets (KurrentDB) or leave gaps
// (Kafka's transaction markers).
func (r *replay) Read() uint64 { return r.read.Load() }

// add returns the log of one more projection; call it before Start.
func (r *replay) add(batch int) *replayLog {
	l := &replayLog{EventLog: r.log, replay: r, batch: max(batch, 1), feed: make(chan []es.Record, 16), left: make(chan struct{})}
	r.subs = append(r.subs, l)
	return l
}

// Start reads the log from the first record, live once at the head, until
// ctx is done, Stop is called, or every projection has left.
func (r *replay) Start(ctx context.Context) {
	ctx, r.stop = context.WithCancel(ctx)
	go func() {
		defer close(r.done)
		err := r.log.SubscribeAll(ctx, 0, es.Filter{}, func(b []es.Record) error {
			n := 0
			for n < len(b) && b[n].Position <= r.head {
				n++
			}
			r.read.Add(uint64(n))
			active := 0
			for _, l := range r.subs {
				select {
				case l.feed <- b:
					active++
				case <-l.left:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if active == 0 {
				return errEveryoneLeft
			}
			return nil
		})
		if errors.Is(err, errEveryoneLeft) {
			err = nil
		}
		r.err = err
		for _, l := range r.subs {
			close(l.feed)
		}
	}()
}

var errEveryoneLeft = errors.New("every projection left the replay")

// Stop stops reading and waits until the reading has ended.
func (r *replay) Stop() {
	if r.stop != nil {
		r.stop()
		<-r.done
	}
}

var _ projections.EventLog = (*replayLog)(nil)

// replayLog is the log as one rebuilding projector sees it. It does two
// things a plain subscription does not:
//
//   - It sees every record, not only the projection's, so that it knows
//     how far through the log the projector is. A projection's checkpoint
//     stops at the last record it reads (profiles read only user records),
//     so the checkpoint cannot tell progress, nor when the projector has
//     reached the head.
//   - It hands the projector up to batch records at a time, from the
//     batches read ahead, so that a commit (one synced write, or one Redis
//     script) covers many of the log's small batches, and reading the log
//     overlaps applying it.
//
// Applied tells how far the projector has got: every record up to it is
// committed to the version being built. A replayLog serves one
// subscription, from the first record; ReadAll and HeadPosition go to
// the log.
type replayLog struct {
	projections.EventLog
	replay *replay
	batch  int

	feed       chan []es.Record // batches of every record, in log order
	left       chan struct{}    // closed by leave
	leaveOnce  sync.Once
	subscribed atomic.Bool

	applied atomic.Uint64 // every record up to this position is applied
	records atomic.Uint64 // records handed to the projector and applied
}

// leave tells the replay that this projection takes no more batches.
func (l *replayLog) leave() { l.leaveOnce.Do(func() { close(l.left) }) }

// Applied is the position up to which the projector has applied the log.
func (l *replayLog) Applied() uint64 { return l.applied.Load() }

// Records is how many records the projector has applied.
func (l *replayLog) Records() uint64 { return l.records.Load() }

// SubscribeAll delivers the records after from that pass filter, in
// batches of up to l.batch records, and notes after each batch is handled
// how far the log is applied. It can be called once.
func (l *replayLog) SubscribeAll(ctx context.Context, from uint64, filter es.Filter, handle func(batch []es.Record) error) error {
	if !l.subscribed.CompareAndSwap(false, true) {
		return errors.New("ticketctl: a rebuild replays the log once; rerun the rebuild")
	}
	defer l.leave()

	var (
		sel  []es.Record
		last uint64
	)
	take := func(b []es.Record) {
		for i := range b {
			if b[i].Position > from && filter.Match(&b[i]) {
				sel = append(sel, b[i])
			}
		}
		if len(b) > 0 {
			last = max(last, b[len(b)-1].Position)
		}
	}
	ended := func() error {
		<-l.replay.done
		if l.replay.err != nil {
			return l.replay.err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return errors.New("ticketctl: the log replay stopped")
	}
	for {
		select {
		case b, ok := <-l.feed:
			if !ok {
				return ended()
			}
			// The projector may keep references into what it is handed
			// while it applies it, so each batch gets its own slice.
			sel = make([]es.Record, 0, l.batch)
			take(b)
		case <-ctx.Done():
			return ctx.Err()
		}
	drain:
		for len(sel) < l.batch {
			select {
			case b, ok := <-l.feed:
				if !ok {
					break drain
				}
				take(b)
			default:
				break drain
			}
		}
		if len(sel) > 0 {
			if err := handle(sel); err != nil {
				return err
			}
			l.records.Add(uint64(len(sel)))
		}
		l.applied.Store(last)
	}
}
