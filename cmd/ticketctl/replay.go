package main

import (
	"context"
	"sync/atomic"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/projections"
)

var _ projections.EventLog = (*replayLog)(nil)

// replayLog is the log as one rebuilding projector sees it. It does two
// things a plain subscription does not:
//
//   - It reads every record, not only the projection's, so that it knows
//     how far through the log the projector is. A projection's checkpoint
//     stops at the last record it reads (profiles read only user records),
//     so the checkpoint cannot tell progress, nor when the projector has
//     reached the head.
//   - It reads ahead on its own goroutine and hands the projector up to
//     batch records at a time, so that reading the log overlaps applying
//     it, and a commit (one synced write, or one Redis script) covers
//     many of the store's small subscription batches.
//
// Applied tells how far the projector has got: every record up to it is
// committed to the version being built.
type replayLog struct {
	projections.EventLog
	batch int

	applied atomic.Uint64 // every record up to this position is applied
	records atomic.Uint64 // records handed to the projector and applied
}

func newReplayLog(log projections.EventLog, batch int) *replayLog {
	return &replayLog{EventLog: log, batch: max(batch, 1)}
}

// Applied is the position up to which the projector has applied the log.
func (l *replayLog) Applied() uint64 { return l.applied.Load() }

// Records is how many records the projector has applied.
func (l *replayLog) Records() uint64 { return l.records.Load() }

// SubscribeAll delivers what the underlying log delivers after from that
// passes filter, in batches of up to l.batch records, and notes after
// each batch is handled how far the log is applied.
func (l *replayLog) SubscribeAll(ctx context.Context, from uint64, filter es.Filter, handle func(batch []es.Record) error) error {
	ctx, cancel := context.WithCancel(ctx)
	batches := make(chan []es.Record, 16)
	ended := make(chan error, 1)
	go func() {
		ended <- l.EventLog.SubscribeAll(ctx, from, es.Filter{}, func(b []es.Record) error {
			select {
			case batches <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	readerDone := false
	defer func() {
		cancel()
		if !readerDone {
			<-ended
		}
	}()

	var sel []es.Record
	var last uint64
	take := func(b []es.Record) {
		for i := range b {
			if filter.Match(&b[i]) {
				sel = append(sel, b[i])
			}
		}
		last = max(last, b[len(b)-1].Position)
	}
	for {
		select {
		case b := <-batches:
			if len(b) == 0 {
				continue
			}
			// The projector may keep references into what it is handed
			// while it applies it, so each batch gets its own slice.
			sel = make([]es.Record, 0, l.batch)
			take(b)
		case err := <-ended:
			readerDone = true
			return err
		}
	drain:
		for len(sel) < l.batch {
			select {
			case b := <-batches:
				if len(b) > 0 {
					take(b)
				}
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
