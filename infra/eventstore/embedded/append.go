package embedded

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"github.com/ticketd/ticketing/domain/es"
)

// appendReq is one Append on its way through the committer. The appending
// goroutine fills in everything up to done before queueing it, so the
// committer never reads the caller's records (which the caller may reuse
// as soon as a cancelled Append returns); the committer sets res or err
// and then signals done.
type appendReq struct {
	stream   string
	prefix   []byte // streamPrefix(stream)
	expected es.ExpectedRevision
	ids      []uuid.UUID
	bodies   []byte // encodeBody of each record, back to back
	ends     []int  // ends[i] is where record i's body ends in bodies

	// Set by the committer: where an accepted append's records go
	// (firstPos is 0 if the append writes nothing).
	firstRev, firstPos uint64

	res  es.AppendResult
	err  error
	done chan struct{}
}

var reqPool = sync.Pool{New: func() any { return &appendReq{done: make(chan struct{}, 1)} }}

// maxPooledBody keeps one huge append from pinning its buffer in the pool.
const maxPooledBody = 64 << 10

func putReq(r *appendReq) {
	if cap(r.bodies) > maxPooledBody {
		r.bodies = nil
	}
	r.stream, r.prefix, r.res, r.err = "", nil, es.AppendResult{}, nil
	reqPool.Put(r)
}

func (r *appendReq) body(i int) []byte {
	start := 0
	if i > 0 {
		start = r.ends[i-1]
	}
	return r.bodies[start:r.ends[i]]
}

// Append stores records at the end of stream if the stream satisfies
// expected, and returns once they are durable. Revisions and positions are
// assigned by the store; each record's Stream is stream.
//
// Appending ids that are already stored exactly where this append would
// put them (an idempotent retry) stores nothing and returns the result of
// the stored records; ids stored anywhere else fail with
// es.ErrDuplicateEventID. A mismatch of expected fails with an
// *es.ConflictError. If ctx ends while the append is queued or syncing, the
// append may or may not be stored: retrying it with the same ids is safe.
func (s *Store) Append(ctx context.Context, stream string, expected es.ExpectedRevision, records []es.Record) (es.AppendResult, error) {
	if stream == "" {
		return es.AppendResult{}, errors.New("embedded: append: empty stream name")
	}
	if err := ctx.Err(); err != nil {
		return es.AppendResult{}, fmt.Errorf("embedded: append to %s: %w", stream, err)
	}
	req := reqPool.Get().(*appendReq)
	if err := req.fill(stream, expected, records); err != nil {
		putReq(req)
		return es.AppendResult{}, err
	}

	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		putReq(req)
		return es.AppendResult{}, fmt.Errorf("embedded: append to %s: %w", stream, es.ErrClosed)
	}
	select {
	case s.reqs <- req:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		putReq(req)
		return es.AppendResult{}, fmt.Errorf("embedded: append to %s: %w", stream, ctx.Err())
	}

	select {
	case <-req.done:
		res, err := req.res, req.err
		putReq(req)
		return res, err
	case <-ctx.Done():
		// The committer still owns req: leave it to the garbage collector.
		return es.AppendResult{}, fmt.Errorf("embedded: append to %s: outcome unknown, retry with the same event ids: %w", stream, ctx.Err())
	}
}

// fill validates records and encodes them into r.
func (r *appendReq) fill(stream string, expected es.ExpectedRevision, records []es.Record) error {
	r.stream = stream
	r.prefix = streamPrefix(stream)
	r.expected = expected
	r.ids = r.ids[:0]
	r.bodies = r.bodies[:0]
	r.ends = r.ends[:0]
	for i := range records {
		rec := &records[i]
		if rec.ID == uuid.Nil {
			return fmt.Errorf("embedded: append to %s: record %d has no event id", stream, i)
		}
		// Appends are small; a quadratic scan beats a map until they
		// are not.
		if len(records) <= 64 {
			for _, id := range r.ids {
				if id == rec.ID {
					return fmt.Errorf("embedded: append to %s: event %s appears twice: %w", stream, rec.ID, es.ErrDuplicateEventID)
				}
			}
		}
		r.ids = append(r.ids, rec.ID)
		r.bodies = encodeBody(r.bodies, stream, rec)
		r.ends = append(r.ends, len(r.bodies))
	}
	if len(records) > 64 {
		seen := make(map[uuid.UUID]struct{}, len(records))
		for _, id := range r.ids {
			if _, dup := seen[id]; dup {
				return fmt.Errorf("embedded: append to %s: event %s appears twice: %w", stream, id, es.ErrDuplicateEventID)
			}
			seen[id] = struct{}{}
		}
	}
	return nil
}
