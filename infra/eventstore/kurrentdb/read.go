package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/ticketd/ticketing/domain/es"
)

// streamRead is how one es.ReadOptions is asked of KurrentDB.
type streamRead struct {
	opts  esdb.ReadStreamOptions
	count uint64
	// pastEnd is set for a backward read from a revision: KurrentDB
	// answers it with nothing when the revision is past the end (it
	// reads the window [From-count+1, From]), where the port starts at
	// the last record.
	pastEnd bool
}

// planRead maps the port's read options to KurrentDB's. Forward reads
// with FromEnd return the last record, as the embedded store does.
func planRead(o es.ReadOptions) streamRead {
	count := uint64(math.MaxInt64) // no cap; the server reads in pages
	if o.Limit > 0 {
		count = uint64(o.Limit)
	}
	// Revisions past MaxInt64 cannot exist; the server would read them
	// as negative numbers.
	from := min(o.From, math.MaxInt64)
	switch {
	case o.Direction == es.Forward && o.FromEnd:
		return streamRead{opts: esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}, ResolveLinkTos: true}, count: 1}
	case o.Direction == es.Forward:
		return streamRead{opts: esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(from), ResolveLinkTos: true}, count: count}
	case o.FromEnd || o.From >= math.MaxInt64:
		return streamRead{opts: esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}, ResolveLinkTos: true}, count: count}
	default:
		return streamRead{opts: esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Revision(from), ResolveLinkTos: true}, count: count, pastEnd: true}
	}
}

// ReadStream returns a slice of stream, forward or backward, as selected
// by opts; see es.ReadOptions. A From past the end reads nothing forward
// and starts at the last record backward. Links (which only KurrentDB's
// own projections write) are followed to the events they point at, and
// links to deleted events are left out. It returns an error matching
// es.ErrStreamNotFound if the stream has no records, including a stream
// deleted in KurrentDB.
func (s *Store) ReadStream(ctx context.Context, stream string, opts es.ReadOptions) ([]es.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kurrentdb: read %s: %w", stream, err)
	}
	if opts.Limit < 0 {
		return nil, fmt.Errorf("kurrentdb: read %s: negative limit %d", stream, opts.Limit)
	}
	if stream == "" {
		return nil, errors.New("kurrentdb: read: empty stream name")
	}
	o, err := s.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: read %s: %w", stream, err)
	}
	defer o.done()

	plan := planRead(opts)
	recs, err := s.readStream(o, stream, plan)
	if err == nil && len(recs) == 0 && plan.pastEnd {
		var h head
		if h, err = s.streamHead(o, stream); err == nil && h.exists && h.rev < opts.From {
			plan.opts.From = esdb.End{}
			recs, err = s.readStream(o, stream, plan)
		}
	}
	if err != nil {
		if serr := streamError(err); serr != nil {
			return nil, fmt.Errorf("kurrentdb: read %s: %w", stream, serr)
		}
		return nil, s.fail(ctx, o, "read "+stream, err)
	}
	return recs, nil
}

func (s *Store) readStream(o op, stream string, plan streamRead) ([]es.Record, error) {
	rs, err := o.client.ReadStream(o.ctx, stream, plan.opts, plan.count)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	recs := []es.Record{}
	for {
		re, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		if err != nil {
			return nil, err
		}
		if rec, ok := fromResolved(re); ok {
			recs = append(recs, rec)
		}
	}
}

// Page sizes of reads of $all: forward pages are at least this large so
// that KurrentDB's own events, which ReadAll skips, cost few round trips;
// backward scans look for one event and usually find it at once.
const (
	minForwardPage = 64
	maxForwardPage = 4096
	backwardPage   = 256
)

// ReadAll returns up to limit records with a position greater than from,
// in global order, leaving out KurrentDB's own events and snapshots.
// limit must be positive: the log is unbounded.
//
// From is 0 or, normally, a position the store handed out, where an
// event starts. Any other position (say, a record's position minus one,
// to read from that record on) is not one KurrentDB can read from: the
// store then reads from the next byte or, failing that, looks for the
// last event at or before from, backward from the head of the log.
func (s *Store) ReadAll(ctx context.Context, from uint64, limit int) ([]es.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kurrentdb: read all: %w", err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("kurrentdb: read all: limit must be positive, got %d", limit)
	}
	o, err := s.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: read all: %w", err)
	}
	defer o.done()

	recs, err := s.readAll(o, startAt(from), from, limit)
	if err != nil && from > 0 && o.ctx.Err() == nil && mayBeBadPosition(err) {
		// "from" is not where an event starts. A record's position minus
		// one is the usual case, and then the next byte is.
		recs, err = s.readAll(o, startAt(from+1), from, limit)
		if err != nil && o.ctx.Err() == nil && mayBeBadPosition(err) {
			var start esdb.AllPosition
			if start, err = s.floor(o, from); err == nil {
				recs, err = s.readAll(o, start, from, limit)
			}
		}
	}
	if err != nil {
		return nil, s.fail(ctx, o, fmt.Sprintf("read all after %d", from), err)
	}
	return recs, nil
}

// startAt is the $all position to read forward from, inclusive.
func startAt(pos uint64) esdb.AllPosition {
	if pos == 0 {
		return esdb.Start{}
	}
	return esdb.Position{Commit: pos, Prepare: pos}
}

// readAll reads $all forward from start (inclusive) and returns up to
// limit records positioned after after.
func (s *Store) readAll(o op, start esdb.AllPosition, after uint64, limit int) ([]es.Record, error) {
	recs := []es.Record{}
	for {
		page := min(max(limit-len(recs), minForwardPage), maxForwardPage)
		n, last, done, err := s.readAllPage(o, start, after, page, func(rec es.Record) bool {
			recs = append(recs, rec)
			return len(recs) < limit
		})
		if err != nil {
			return nil, err
		}
		if done || n < page {
			return recs, nil
		}
		// Read on from the last event seen; it is read again and skipped.
		start, after = startAt(last), max(after, last)
	}
}

// readAllPage reads up to page events of $all forward from start and
// passes the records positioned after after to take, until take returns
// false (done). It returns how many events it read and the position of
// the last.
func (s *Store) readAllPage(o op, start esdb.AllPosition, after uint64, page int, take func(es.Record) bool) (n int, last uint64, done bool, err error) {
	rs, err := o.client.ReadAll(o.ctx, esdb.ReadAllOptions{Direction: esdb.Forwards, From: start}, uint64(page))
	if err != nil {
		return 0, 0, false, err
	}
	defer rs.Close()
	for {
		re, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return n, last, false, nil
		}
		if err != nil {
			return n, last, false, err
		}
		n++
		ev := re.OriginalEvent()
		last = position(ev.Position)
		if last <= after || !isRecord(ev.StreamID, ev.EventType) {
			continue
		}
		if !take(fromRecorded(ev)) {
			return n, last, true, nil
		}
	}
}

// floor returns a position to read $all from (inclusive) or to subscribe
// after (exclusive) that misses no event after pos: the position of the
// last event at or before pos, or the start of the log. It scans backward
// from the head, so it costs in proportion to how far back pos is.
func (s *Store) floor(o op, pos uint64) (esdb.AllPosition, error) {
	ev, err := s.scanBack(o, backwardPage, func(ev *esdb.RecordedEvent) bool { return position(ev.Position) <= pos })
	if err != nil || ev == nil {
		return esdb.Start{}, err
	}
	p := position(ev.Position)
	return esdb.Position{Commit: p, Prepare: p}, nil
}

// scanBack reads $all backward from its head, page by page, and returns
// the first event that stop accepts, nil if none does.
func (s *Store) scanBack(o op, page int, stop func(*esdb.RecordedEvent) bool) (*esdb.RecordedEvent, error) {
	var from esdb.AllPosition = esdb.End{}
	for {
		rs, err := o.client.ReadAll(o.ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: from}, uint64(page))
		if err != nil {
			return nil, err
		}
		n, last := 0, uint64(0)
		for {
			re, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				return nil, err
			}
			n++
			ev := re.OriginalEvent()
			if stop(ev) {
				rs.Close()
				return ev, nil
			}
			last = position(ev.Position)
		}
		rs.Close()
		if n < page || last == 0 {
			return nil, nil
		}
		// Reading backward from an event's position returns the events
		// before it.
		from = esdb.Position{Commit: last, Prepare: last}
	}
}

// HeadPosition returns the position of the last record in $all (leaving
// out KurrentDB's own events and snapshots), 0 if there is none.
func (s *Store) HeadPosition(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("kurrentdb: head position: %w", err)
	}
	o, err := s.begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("kurrentdb: head position: %w", err)
	}
	defer o.done()
	ev, err := s.scanBack(o, 32, func(ev *esdb.RecordedEvent) bool { return isRecord(ev.StreamID, ev.EventType) })
	if err != nil {
		return 0, s.fail(ctx, o, "head position", err)
	}
	if ev == nil {
		return 0, nil
	}
	return position(ev.Position), nil
}

// startAfter returns where to subscribe to $all (exclusive) to get every
// event after from. The server refuses positions where no event starts,
// so from is tried first with a read of one event, and if the server
// refuses it, floor finds the last event before it.
func (s *Store) startAfter(o op, from uint64) (esdb.AllPosition, error) {
	if from == 0 {
		return esdb.Start{}, nil
	}
	_, _, _, err := s.readAllPage(o, startAt(from), math.MaxUint64, 1, func(es.Record) bool { return false })
	if err == nil {
		return esdb.Position{Commit: from, Prepare: from}, nil
	}
	if o.ctx.Err() != nil || !mayBeBadPosition(err) {
		return nil, err
	}
	return s.floor(o, from)
}
