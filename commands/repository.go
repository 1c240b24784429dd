package commands

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
)

// aggregate is what the repository needs of every aggregate: es.Changes
// plus its applier.
type aggregate interface {
	Apply(es.Payload)
	Replayed(rev uint64)
	Version() int64
	Pending() []es.Payload
	Stored()
}

// Repository loads aggregates by replaying their streams and stores what
// they decided under the version they were loaded at.
type Repository struct {
	store EventStore
	reg   *es.Registry
	clock Clock
}

// NewRepository returns a repository over store, encoding with reg.
func NewRepository(store EventStore, reg *es.Registry, clock Clock) *Repository {
	return &Repository{store: store, reg: reg, clock: clock}
}

// Load replays stream into agg (a zero aggregate). A missing stream leaves
// agg as it is; callers check whether it exists.
func (r *Repository) Load(ctx context.Context, stream string, agg aggregate) error {
	return r.loadFrom(ctx, stream, 0, agg)
}

func (r *Repository) loadFrom(ctx context.Context, stream string, from uint64, agg aggregate) error {
	const page = 1024
	for {
		recs, err := r.store.ReadStream(ctx, stream, es.ReadOptions{From: from, Limit: page})
		if errors.Is(err, es.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("commands: load %s: %w", stream, err)
		}
		for i := range recs {
			p, err := r.reg.Decode(&recs[i])
			if err != nil {
				return fmt.Errorf("commands: load %s: %w", stream, err)
			}
			agg.Apply(p)
			agg.Replayed(recs[i].Revision)
		}
		if len(recs) < page {
			return nil
		}
		from = recs[len(recs)-1].Revision + 1
	}
}

// Save appends agg's pending events to stream, expecting the version agg
// was loaded at, and marks them stored. Nothing pending is a no-op.
func (r *Repository) Save(ctx context.Context, stream string, aggID uuid.UUID, agg aggregate, msg Msg) (es.AppendResult, error) {
	pending := agg.Pending()
	if len(pending) == 0 {
		return es.AppendResult{}, nil
	}
	recs := make([]es.Record, 0, len(pending))
	recs, err := r.appendRecords(recs, stream, aggID, pending, msg, 0)
	if err != nil {
		return es.AppendResult{}, err
	}
	res, err := r.store.Append(ctx, stream, es.ExpectVersion(agg.Version()), recs)
	if err != nil {
		return es.AppendResult{}, fmt.Errorf("commands: append %s: %w", stream, err)
	}
	agg.Stored()
	return res, nil
}

// appendRecords encodes payloads as records caused by msg. The id of the
// i-th event a message causes in a stream is derived from the message id,
// the stream and i (offset counts events of the same message already in the
// batch), so a redelivered message produces the same ids.
func (r *Repository) appendRecords(dst []es.Record, stream string, aggID uuid.UUID, payloads []es.Payload, msg Msg, offset int) ([]es.Record, error) {
	now := r.clock().UTC()
	for i, p := range payloads {
		name, version, data, err := r.reg.Encode(p)
		if err != nil {
			return nil, err
		}
		dst = append(dst, es.Record{
			ID:            r.recordID(msg, stream, offset+i),
			Stream:        stream,
			Type:          name,
			SchemaVersion: version,
			AggregateID:   aggID,
			Time:          now,
			CorrelationID: msg.CorrelationID,
			CausationID:   msg.ID,
			Meta:          msg.Meta,
			Data:          data,
		})
	}
	return dst, nil
}

// recordID is the id of the n-th event that msg causes in stream.
func (r *Repository) recordID(msg Msg, stream string, n int) uuid.UUID {
	return es.DeriveID(msg.ID, stream+"#"+strconv.Itoa(n))
}

// maxConflictRetries bounds how often a handler reloads and decides again
// after losing an optimistic-concurrency race.
const maxConflictRetries = 20

// retry runs fn until it succeeds, fails with something other than a
// conflict, or has lost maxConflictRetries races. fn must load afresh
// each time.
func retry(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 0; attempt < maxConflictRetries; attempt++ {
		if err = fn(); !errors.Is(err, es.ErrConflict) {
			return err
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
	}
	return fmt.Errorf("commands: gave up after %d conflicting appends: %w", maxConflictRetries, err)
}
