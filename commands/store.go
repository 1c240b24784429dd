package commands

import (
	"context"

	"github.com/ticketd/ticketing/domain/es"
)

// EventStore is what the write side needs of the event store: appending to
// one stream under an expected revision, and reading a stream back.
//
// Append stores records atomically and durably (acknowledged means synced
// to disk) and assigns each its Revision and Position. A mismatch of the
// expected revision is an error matching es.ErrConflict. Appending records
// whose ids are already stored at exactly the place this append would put
// them succeeds without storing them twice.
//
// ReadStream returns es.ErrStreamNotFound for a stream with no records.
type EventStore interface {
	Append(ctx context.Context, stream string, expected es.ExpectedRevision, records []es.Record) (es.AppendResult, error)
	ReadStream(ctx context.Context, stream string, opts es.ReadOptions) ([]es.Record, error)
}

// SnapshotStore keeps the latest snapshot of a stream's aggregate, so that a
// long stream (a hot event accumulates a fact per booking) loads from the
// snapshot plus the records after it. Snapshots are a cache: losing one
// costs a longer load, never correctness.
type SnapshotStore interface {
	SaveSnapshot(ctx context.Context, stream string, version int64, data []byte) error
	// LoadSnapshot returns ok=false when the stream has no snapshot.
	LoadSnapshot(ctx context.Context, stream string) (version int64, data []byte, ok bool, err error)
}
