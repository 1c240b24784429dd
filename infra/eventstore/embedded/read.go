package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ticketd/ticketing/domain/es"
)

// subscribeBatch is how many log entries a subscription reads per batch:
// enough to amortise an iterator and a handler call, small enough that a
// subscriber far behind does not hold a large slice or delay cancellation.
const subscribeBatch = 512

// ReadStream returns a slice of stream, forward or backward, as selected by
// opts. FromEnd starts at the stream's last record in either direction. A
// From past the end reads nothing forward and starts at the last record
// backward. It returns an error matching es.ErrStreamNotFound if the
// stream has no records.
func (s *Store) ReadStream(ctx context.Context, stream string, opts es.ReadOptions) ([]es.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: read %s: %w", stream, err)
	}
	if opts.Limit < 0 {
		return nil, fmt.Errorf("embedded: read %s: negative limit %d", stream, opts.Limit)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, fmt.Errorf("embedded: read %s: %w", stream, es.ErrClosed)
	}
	recs, err := s.readStream(ctx, stream, opts, s.durable.Load())
	if err != nil {
		return nil, fmt.Errorf("embedded: read %s: %w", stream, err)
	}
	return recs, nil
}

func (s *Store) readStream(ctx context.Context, stream string, opts es.ReadOptions, head uint64) (recs []es.Record, err error) {
	prefix := streamPrefix(stream)
	idx, err := s.db.NewIter(&pebble.IterOptions{LowerBound: streamKey(prefix, 0), UpperBound: streamUpper(prefix)})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, idx.Close()) }()

	// Collect the positions first, then read the log in one pass.
	var positions []uint64
	var takeErr error
	take := func() bool {
		v, err := idx.ValueAndErr()
		if err == nil && len(v) != 8 {
			err = fmt.Errorf("%w: stream index entry %x", errCorrupt, idx.Key())
		}
		if err != nil {
			takeErr = err
			return false
		}
		// Records past the durable head are not acknowledged yet and may
		// not survive a crash; they are the newest of the stream.
		if pos := positionOf(v); pos <= head {
			positions = append(positions, pos)
		}
		return opts.Limit == 0 || len(positions) < opts.Limit
	}
	var ok bool
	switch {
	case opts.FromEnd && opts.Direction == es.Forward:
		ok = idx.Last()
	case opts.Direction == es.Forward:
		ok = idx.SeekGE(streamKey(prefix, opts.From))
	case opts.FromEnd || opts.From == math.MaxUint64:
		ok = idx.Last()
	default:
		ok = idx.SeekLT(streamKey(prefix, opts.From+1))
	}
	for ; ok && take(); ok = step(idx, opts.Direction) {
	}
	if err := errors.Join(takeErr, idx.Error()); err != nil {
		return nil, err
	}
	if len(positions) == 0 {
		// Empty slice or no stream? The stream exists if its first
		// record is durable.
		if !idx.First() {
			if err := idx.Error(); err != nil {
				return nil, err
			}
			return nil, es.ErrStreamNotFound
		}
		if v, err := idx.ValueAndErr(); err != nil {
			return nil, err
		} else if len(v) != 8 || positionOf(v) > head {
			return nil, es.ErrStreamNotFound
		}
		return []es.Record{}, nil
	}

	log, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagLog}, UpperBound: []byte{tagLog + 1}})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, log.Close()) }()
	recs = make([]es.Record, 0, len(positions))
	key := make([]byte, 9)
	for i, pos := range positions {
		if i%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		putLogKey(key, pos)
		if !log.SeekGE(key) || !bytes.Equal(log.Key(), key) {
			if err := log.Error(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%w: revision of %s points at missing position %d", errCorrupt, stream, pos)
		}
		v, err := log.ValueAndErr()
		if err != nil {
			return nil, err
		}
		rec, err := decodeRecord(pos, v)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

func step(it *pebble.Iterator, d es.Direction) bool {
	if d == es.Backward {
		return it.Prev()
	}
	return it.Next()
}

// ReadAll returns up to limit records with a position greater than from,
// in global order. limit must be positive: the log is unbounded.
func (s *Store) ReadAll(ctx context.Context, from uint64, limit int) ([]es.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: read all: %w", err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("embedded: read all: limit must be positive, got %d", limit)
	}
	recs, _, err := s.readLog(from, s.durable.Load(), limit, es.Filter{})
	if err != nil {
		return nil, fmt.Errorf("embedded: read all from %d: %w", from, err)
	}
	return recs, nil
}

// readLog scans at most max log entries after position from, up to head,
// and returns those that pass filter and the last position scanned.
func (s *Store) readLog(from, head uint64, max int, filter es.Filter) (recs []es.Record, last uint64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, from, es.ErrClosed
	}
	if from >= head {
		return nil, from, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(from + 1), UpperBound: logKey(head + 1)})
	if err != nil {
		return nil, from, err
	}
	defer func() { err = errors.Join(err, it.Close()) }()
	last = from
	for ok := it.First(); ok && last-from < uint64(max); ok = it.Next() {
		pos := positionOf(it.Key())
		// Positions are contiguous in this store; a hole means the log
		// lost a record, and a reader must not silently skip it.
		if len(it.Key()) != 9 || pos != last+1 {
			return nil, last, fmt.Errorf("%w: log jumps from position %d to key %x", errCorrupt, last, it.Key())
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, last, err
		}
		rec, err := decodeRecord(pos, v)
		if err != nil {
			return nil, last, err
		}
		last = pos
		if filter.Match(&rec) {
			recs = append(recs, rec)
		}
	}
	if err := it.Error(); err != nil {
		return nil, last, err
	}
	if last == from {
		return nil, last, fmt.Errorf("%w: position %d is missing below head %d", errCorrupt, from+1, head)
	}
	return recs, last, nil
}

// SubscribeAll delivers every record after position from that passes
// filter, in global order and in batches, first from the log (catch-up)
// and then as groups commit (live). A subscriber reads at its own pace
// from the log, so a slow one holds back nobody and misses nothing.
//
// It returns ctx.Err() when ctx ends, handle's error when handle fails,
// and an error matching es.ErrClosed when the store closes. A batch whose
// records all fail the filter is not delivered.
func (s *Store) SubscribeAll(ctx context.Context, from uint64, filter es.Filter, handle func(batch []es.Record) error) error {
	pos := from
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		head, wake := s.headAndWake()
		if pos >= head {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.closing:
				return fmt.Errorf("embedded: subscribe from %d: %w", from, es.ErrClosed)
			case <-wake:
			}
			continue
		}
		batch, last, err := s.readLog(pos, head, subscribeBatch, filter)
		if err != nil {
			return fmt.Errorf("embedded: subscribe from %d: %w", from, err)
		}
		pos = last
		if len(batch) > 0 {
			if err := handle(batch); err != nil {
				return err
			}
		}
	}
}
