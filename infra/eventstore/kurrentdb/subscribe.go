package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/ticketd/ticketing/domain/es"
)

// serverFilter is the part of f that KurrentDB applies before sending
// events. A server filter works on stream names or on event types, by
// prefix, not both: stream prefixes are sent when there are any (a
// projector's prefixes are the more selective), event types otherwise
// (as prefixes: the exact match is checked here). With neither,
// KurrentDB's own events are left out at the source. Whatever the server
// filters, wanted checks all of f again.
func serverFilter(f es.Filter) *esdb.SubscriptionFilter {
	if prefixes := nonEmpty(f.StreamPrefixes); len(prefixes) == len(f.StreamPrefixes) && len(prefixes) > 0 {
		return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: prefixes}
	}
	// An empty prefix matches every stream; the types may still narrow.
	if types := nonEmpty(f.Types); len(types) == len(f.Types) && len(types) > 0 {
		return &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: types}
	}
	return esdb.ExcludeSystemEventsFilter()
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// wanted reports whether a record read from $all is delivered to a
// subscriber with filter f.
func wanted(rec *es.Record, f es.Filter) bool {
	return isRecord(rec.Stream, rec.Type) && f.Match(rec)
}

// Resubscription backoff: a drop is retried at once after progress, and
// ever more slowly while the server stays away.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// SubscribeAll delivers, in global order and in batches, every record
// after position from that passes filter: first the stored ones, then new
// ones as KurrentDB commits them. The filter goes to the server as far as
// KurrentDB can express it (see serverFilter) and is checked in full
// here; KurrentDB's own events and snapshots are never delivered.
//
// Records that arrive within Options.BatchWindow of each other are
// handed over together, up to Options.MaxBatch. When the subscription
// drops (the server restarts, a leader changes, the connection breaks),
// it resumes after the last record it has passed on, so that the handler
// sees no gap and no repeat.
//
// It returns ctx.Err() when ctx ends, handle's error when handle fails,
// an error matching es.ErrClosed when the store closes, and an error when
// the server refuses the subscription (credentials, permissions).
func (s *Store) SubscribeAll(ctx context.Context, from uint64, filter es.Filter, handle func(batch []es.Record) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("kurrentdb: subscribe from %d: %w", from, err)
	}
	defer o.done()

	sub := &subscriber{
		after:  from,
		filter: filter,
		handle: handle,
		window: s.opts.BatchWindow,
		max:    s.opts.MaxBatch,
	}
	start, err := s.startAfter(o, from)
	if err != nil {
		return s.subscribeError(ctx, o, from, err)
	}
	server := serverFilter(filter)
	backoff := minBackoff
	for {
		sub.progressed = false
		client := s.current()
		in, stop, err := s.subscribe(o.ctx, client, start, server)
		if err == nil {
			err = sub.run(o.ctx, in)
			stop()
		}
		if herr, ok := errors.AsType[*handlerError](err); ok {
			return herr.err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if s.life.Err() != nil || permanent(err) {
			return s.subscribeError(ctx, o, from, err)
		}
		if hasCode(err, esdb.ErrorCodeConnectionClosed) {
			s.renew(client)
		}
		if sub.resume > 0 {
			start = esdb.Position{Commit: sub.resume, Prepare: sub.resume}
		}
		if sub.progressed {
			backoff = minBackoff
		}
		s.log.Warn("kurrentdb: subscription dropped; resuming", "after", sub.after, "retry_in", backoff, "err", err)
		select {
		case <-o.ctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("kurrentdb: subscribe from %d: %w", from, es.ErrClosed)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (s *Store) subscribeError(ctx context.Context, o op, from uint64, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return s.fail(ctx, o, fmt.Sprintf("subscribe from %d", from), err)
}

// delivery is what the pump passes on: an event, or why the subscription
// ended.
type delivery struct {
	ev  *esdb.ResolvedEvent
	err error
}

var errDropped = errors.New("subscription dropped")

// subscribe starts a subscription to $all after start and a goroutine
// that pumps its events into the returned channel. stop ends both.
func (s *Store) subscribe(ctx context.Context, client *esdb.Client, start esdb.AllPosition, filter *esdb.SubscriptionFilter) (<-chan delivery, func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	sub, err := client.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: start, Filter: filter})
	if err != nil {
		cancel()
		return nil, nil, err
	}
	out := make(chan delivery, s.opts.MaxBatch)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pump(ctx, sub, out)
	}()
	return out, func() {
		cancel()
		_ = sub.Close()
		<-done
	}, nil
}

// pump passes sub's events to out until the subscription drops or ctx
// ends. The channel is bounded: a slow handler holds the pump back, and
// gRPC flow control holds the server back.
func pump(ctx context.Context, sub *esdb.Subscription, out chan<- delivery) {
	for {
		e := sub.Recv()
		var d delivery
		switch {
		case e.EventAppeared != nil:
			d.ev = e.EventAppeared
		case e.SubscriptionDropped != nil:
			d.err = e.SubscriptionDropped.Error
			if d.err == nil {
				d.err = errDropped
			}
		default: // checkpoints, caught up, fell behind
			continue
		}
		select {
		case out <- d:
		case <-ctx.Done():
			return
		}
		if d.err != nil {
			return
		}
	}
}

// handlerError carries the handler's error out of run, so that it is
// told apart from the subscription's.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }
func (e *handlerError) Unwrap() error { return e.err }

// subscriber turns the events of one subscription after another into
// handler calls.
type subscriber struct {
	// after is the position records must pass to be delivered: from, and
	// then every record handled.
	after  uint64
	filter es.Filter
	handle func([]es.Record) error
	window time.Duration
	max    int

	// resume is the position of the last event delivered or passed over
	// with nothing pending before it, where a new subscription starts (0
	// if none yet). progressed tells whether this run moved it.
	resume     uint64
	progressed bool
}

// run delivers the events of in in batches. It returns ctx.Err() when
// ctx ends, a *handlerError when the handler fails, and the reason the
// subscription ended when it does, after delivering what came before.
func (s *subscriber) run(ctx context.Context, in <-chan delivery) error {
	for {
		batch, seen, err := s.collect(ctx, in)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(batch) > 0 {
			if herr := s.handle(batch); herr != nil {
				return &handlerError{herr}
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		s.pass(seen)
		if err != nil {
			return err
		}
	}
}

// pass notes that every event up to pos is delivered or passed over.
func (s *subscriber) pass(pos uint64) {
	if pos > s.resume {
		s.resume = pos
		s.after = max(s.after, pos)
		s.progressed = true
	}
}

// collect waits for a record to deliver, then gathers those that follow
// within the batch window, up to the batch size. It returns the batch,
// the position of the last event it took from in (delivered or not), and
// the reason in ended, if it did.
func (s *subscriber) collect(ctx context.Context, in <-chan delivery) (batch []es.Record, seen uint64, err error) {
	var deadline <-chan time.Time
	for len(batch) < s.max {
		var d delivery
		select {
		case d = <-in:
		case <-deadline:
			return batch, seen, nil
		case <-ctx.Done():
			return nil, seen, ctx.Err()
		}
		if d.err != nil {
			return batch, seen, d.err
		}
		ev := d.ev.OriginalEvent()
		pos := position(ev.Position)
		if pos <= s.after {
			// Already delivered: the server repeats the event it was asked
			// to start after, or from before a dropped subscription.
			continue
		}
		seen = max(seen, pos)
		// Stream and type decide; the metadata is decoded only for
		// records that are delivered.
		if !wanted(&es.Record{Stream: ev.StreamID, Type: ev.EventType}, s.filter) {
			if len(batch) == 0 {
				s.pass(pos)
			}
			continue
		}
		batch = append(batch, fromRecorded(ev))
		if deadline == nil {
			t := time.NewTimer(s.window)
			defer t.Stop()
			deadline = t.C
		}
	}
	return batch, seen, nil
}
