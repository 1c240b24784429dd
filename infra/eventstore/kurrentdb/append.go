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

// streamState maps the port's expected revision to KurrentDB's. ok is
// false for an exact revision KurrentDB cannot hold: the server reads
// revisions as signed 64-bit numbers, and past that one would be taken
// for "no stream".
func streamState(e es.ExpectedRevision) (state esdb.ExpectedRevision, ok bool) {
	switch {
	case e.IsNoStream():
		return esdb.NoStream{}, true
	case e.IsStreamExists():
		return esdb.StreamExists{}, true
	}
	if r, exact := e.Revision(); exact {
		if r > math.MaxInt64 {
			return nil, false
		}
		return esdb.StreamRevision{Value: r}, true
	}
	return esdb.Any{}, true
}

// Append stores records at the end of stream if the stream satisfies
// expected, atomically; it returns once KurrentDB has acknowledged them.
// Each record's ID becomes its event id, so that a retry with the same ids
// at the same expected revision stores nothing and returns where the
// first attempt put them (see the package documentation for where
// KurrentDB's deduplication ends). A mismatch of expected fails with an
// *es.ConflictError that says what the stream was.
//
// An empty append stores nothing and only checks expected against the
// stream's head. If ctx ends during the append, it may or may not be
// stored: retrying it with the same ids is safe.
func (s *Store) Append(ctx context.Context, stream string, expected es.ExpectedRevision, records []es.Record) (es.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return es.AppendResult{}, fmt.Errorf("kurrentdb: append to %s: %w", stream, err)
	}
	events, err := toEvents(stream, records)
	if err != nil {
		return es.AppendResult{}, err
	}
	o, err := s.begin(ctx)
	if err != nil {
		return es.AppendResult{}, fmt.Errorf("kurrentdb: append to %s: %w", stream, err)
	}
	defer o.done()

	state, ok := streamState(expected)
	if len(events) == 0 || !ok {
		// KurrentDB's answer to an empty write depends on the version;
		// checking the head here is the same everywhere.
		return s.checkHead(ctx, o, stream, expected)
	}
	res, err := o.client.AppendToStream(o.ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: state}, events...)
	if err != nil {
		if ce, isWEV, ok := conflictFrom(stream, expected, err); ok {
			return es.AppendResult{}, ce
		} else if isWEV {
			// The answer did not say where the stream is: ask. The
			// stream may have moved since, but the append was refused.
			h, herr := s.streamHead(o, stream)
			if herr != nil {
				return es.AppendResult{}, s.fail(ctx, o, "append to "+stream, errors.Join(err, herr))
			}
			return es.AppendResult{}, &es.ConflictError{Stream: stream, Expected: expected, Actual: h.rev, Exists: h.exists}
		}
		if hasCode(err, esdb.ErrorCodeStreamDeleted) {
			return es.AppendResult{}, fmt.Errorf("kurrentdb: append to %s: %w", stream, ErrStreamDeleted)
		}
		return es.AppendResult{}, s.fail(ctx, o, "append to "+stream, err)
	}
	out := es.AppendResult{NextRevision: res.NextExpectedVersion, Position: res.CommitPosition}
	if out.Position == 0 {
		// Some servers answer an idempotent retry without a position
		// (the client then reports 0): read it from the record.
		h, err := s.readAt(o, stream, out.NextRevision)
		if err != nil {
			return es.AppendResult{}, s.fail(ctx, o, "append to "+stream+": position of the retried records", err)
		}
		out.Position = h.pos
	}
	return out, nil
}

// head is where a stream ends.
type head struct {
	rev, pos uint64
	exists   bool
}

// checkHead is Append for what the server is not asked: it reads the
// stream's head and checks expected against it.
func (s *Store) checkHead(ctx context.Context, o op, stream string, expected es.ExpectedRevision) (es.AppendResult, error) {
	h, err := s.streamHead(o, stream)
	if err != nil {
		if errors.Is(err, ErrStreamDeleted) {
			return es.AppendResult{}, fmt.Errorf("kurrentdb: append to %s: %w", stream, ErrStreamDeleted)
		}
		return es.AppendResult{}, s.fail(ctx, o, "append to "+stream, err)
	}
	if !expected.Check(h.rev, h.exists) {
		return es.AppendResult{}, &es.ConflictError{Stream: stream, Expected: expected, Actual: h.rev, Exists: h.exists}
	}
	if !h.exists {
		return es.AppendResult{}, nil
	}
	return es.AppendResult{NextRevision: h.rev, Position: h.pos}, nil
}

// streamHead reads the last event of stream. A stream that does not
// exist has exists=false; a deleted one fails with an error matching
// ErrStreamDeleted.
func (s *Store) streamHead(o op, stream string) (head, error) {
	return s.readOne(o, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}})
}

// readAt reads the event at revision rev of stream.
func (s *Store) readAt(o op, stream string, rev uint64) (head, error) {
	h, err := s.readOne(o, stream, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(rev)})
	if err == nil && (!h.exists || h.rev != rev) {
		err = fmt.Errorf("revision %d of %s is not readable", rev, stream)
	}
	return h, err
}

func (s *Store) readOne(o op, stream string, opts esdb.ReadStreamOptions) (head, error) {
	rs, err := o.client.ReadStream(o.ctx, stream, opts, 1)
	if err != nil {
		return head{}, err
	}
	defer rs.Close()
	re, err := rs.Recv()
	switch {
	case errors.Is(err, io.EOF):
		return head{}, nil
	case err != nil:
		if serr := streamError(err); serr != nil {
			if errors.Is(serr, ErrStreamDeleted) {
				return head{}, serr
			}
			return head{}, nil
		}
		return head{}, err
	}
	ev := re.OriginalEvent()
	return head{rev: ev.EventNumber, pos: position(ev.Position), exists: true}, nil
}
