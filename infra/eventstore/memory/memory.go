// Package memory is an event store kept in memory: the same semantics as
// the embedded store (it runs the same contract suite) without durability.
// Tests of the command side use it to run fast and deterministically.
package memory

import (
	"context"
	"sync"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/projections"
)

var (
	_ commands.EventStore    = (*Store)(nil)
	_ commands.SnapshotStore = (*Store)(nil)
	_ projections.EventLog   = (*Store)(nil)
)

// Store is the in-memory event store.
type Store struct {
	mu        sync.RWMutex
	log       []es.Record          // position p is log[p-1]
	streams   map[string][]uint64  // stream → positions
	ids       map[uuid.UUID]uint64 // event id → position
	snapshots map[string]snapshot
	changed   chan struct{} // closed and replaced at each commit
	closed    bool
}

type snapshot struct {
	version int64
	data    []byte
}

// New returns an empty store.
func New() *Store {
	return &Store{
		streams: map[string][]uint64{}, ids: map[uuid.UUID]uint64{},
		snapshots: map[string]snapshot{}, changed: make(chan struct{}),
	}
}

// Close stops subscriptions.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.changed)
	}
	return nil
}

// Append implements commands.EventStore.
func (s *Store) Append(ctx context.Context, stream string, expected es.ExpectedRevision, records []es.Record) (es.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return es.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return es.AppendResult{}, es.ErrClosed
	}
	positions := s.streams[stream]
	if len(records) > 0 {
		if pos, dup := s.ids[records[0].ID]; dup {
			return s.retried(stream, expected, records, pos)
		}
		seen := make(map[uuid.UUID]bool, len(records))
		for _, r := range records {
			if _, dup := s.ids[r.ID]; dup || seen[r.ID] {
				return es.AppendResult{}, es.ErrDuplicateEventID
			}
			seen[r.ID] = true
		}
	}
	head, exists := uint64(len(positions))-1, len(positions) > 0
	if !expected.Check(head, exists) {
		return es.AppendResult{}, &es.ConflictError{Stream: stream, Expected: expected, Actual: head, Exists: exists}
	}
	var res es.AppendResult
	if exists {
		res.NextRevision = head
	}
	res.Position = uint64(len(s.log))
	for _, r := range records {
		r.Stream = stream
		r.Revision = uint64(len(positions))
		r.Position = uint64(len(s.log)) + 1
		s.log = append(s.log, r)
		positions = append(positions, r.Position)
		s.ids[r.ID] = r.Position
		res = es.AppendResult{NextRevision: r.Revision, Position: r.Position, Written: true}
	}
	s.streams[stream] = positions
	if len(records) > 0 {
		close(s.changed)
		s.changed = make(chan struct{})
	}
	return res, nil
}

// retried answers an append whose first id is stored at pos: an idempotent
// retry if every record sits where this append would have put it.
func (s *Store) retried(stream string, expected es.ExpectedRevision, records []es.Record, pos uint64) (es.AppendResult, error) {
	first := s.log[pos-1]
	if first.Stream != stream {
		return es.AppendResult{}, es.ErrDuplicateEventID
	}
	switch {
	case expected.IsNoStream() && first.Revision != 0:
		return es.AppendResult{}, es.ErrDuplicateEventID
	default:
		if rev, ok := expected.Revision(); ok && first.Revision != rev+1 {
			return es.AppendResult{}, es.ErrDuplicateEventID
		}
	}
	positions := s.streams[stream]
	for i, r := range records {
		rev := first.Revision + uint64(i)
		if rev >= uint64(len(positions)) || s.log[positions[rev]-1].ID != r.ID {
			return es.AppendResult{}, es.ErrDuplicateEventID
		}
	}
	last := s.log[positions[first.Revision+uint64(len(records))-1]-1]
	return es.AppendResult{NextRevision: last.Revision, Position: last.Position}, nil
}

// ReadStream implements commands.EventStore.
func (s *Store) ReadStream(_ context.Context, stream string, opts es.ReadOptions) ([]es.Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, es.ErrClosed
	}
	positions := s.streams[stream]
	if len(positions) == 0 {
		return nil, es.ErrStreamNotFound
	}
	var out []es.Record
	add := func(i int) bool {
		out = append(out, s.log[positions[i]-1])
		return opts.Limit > 0 && len(out) >= opts.Limit
	}
	if opts.Direction == es.Backward {
		start := len(positions) - 1
		if !opts.FromEnd && int(opts.From) < start {
			start = int(opts.From)
		}
		for i := start; i >= 0; i-- {
			if add(i) {
				break
			}
		}
		return out, nil
	}
	for i := int(opts.From); i < len(positions); i++ {
		if add(i) {
			break
		}
	}
	return out, nil
}

// ReadAll implements projections.EventLog.
func (s *Store) ReadAll(_ context.Context, from uint64, limit int) ([]es.Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, es.ErrClosed
	}
	if from >= uint64(len(s.log)) {
		return nil, nil
	}
	end := uint64(len(s.log))
	if limit > 0 && from+uint64(limit) < end {
		end = from + uint64(limit)
	}
	return append([]es.Record(nil), s.log[from:end]...), nil
}

// HeadPosition implements projections.EventLog.
func (s *Store) HeadPosition(context.Context) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, es.ErrClosed
	}
	return uint64(len(s.log)), nil
}

// SubscribeAll implements projections.EventLog.
func (s *Store) SubscribeAll(ctx context.Context, from uint64, filter es.Filter, handle func([]es.Record) error) error {
	for {
		s.mu.RLock()
		closed, changed := s.closed, s.changed
		var batch []es.Record
		for p := from; p < uint64(len(s.log)) && len(batch) < 512; p++ {
			if filter.Match(&s.log[p]) {
				batch = append(batch, s.log[p])
			}
			from = p + 1
		}
		s.mu.RUnlock()
		if len(batch) > 0 {
			if err := handle(batch); err != nil {
				return err
			}
			continue
		}
		if closed {
			return es.ErrClosed
		}
		s.mu.RLock()
		caughtUp := from >= uint64(len(s.log))
		s.mu.RUnlock()
		if !caughtUp {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// SaveSnapshot implements commands.SnapshotStore.
func (s *Store) SaveSnapshot(_ context.Context, stream string, version int64, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return es.ErrClosed
	}
	s.snapshots[stream] = snapshot{version: version, data: append([]byte(nil), data...)}
	return nil
}

// LoadSnapshot implements commands.SnapshotStore.
func (s *Store) LoadSnapshot(_ context.Context, stream string) (int64, []byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, nil, false, es.ErrClosed
	}
	snap, ok := s.snapshots[stream]
	return snap.version, snap.data, ok, nil
}
