// Package projections turns the event log into read models and relays it to
// the bus: each projector subscribes to all streams from its checkpoint,
// applies records in global order, and stores its checkpoint with its data.
package projections

import (
	"context"

	"github.com/ticketd/ticketing/domain/es"
)

// EventLog is what projectors need of the event store: the global order of
// all streams.
//
// SubscribeAll delivers, in global order and in batches, every record with
// a Position greater than from that passes filter: first the stored ones
// (catch-up), then new ones as they are committed (live). A subscriber
// never sees a gap it could later be missing: a record is delivered only
// after every record before it in the global order is visible. It returns
// when ctx is done (with ctx.Err()) or when handle returns an error (with
// that error).
//
// ReadAll returns up to limit (which must be positive) records with
// Position greater than from.
// HeadPosition is the Position of the last committed record, 0 if none.
type EventLog interface {
	SubscribeAll(ctx context.Context, from uint64, filter es.Filter, handle func(batch []es.Record) error) error
	ReadAll(ctx context.Context, from uint64, limit int) ([]es.Record, error)
	HeadPosition(ctx context.Context) (uint64, error)
}
