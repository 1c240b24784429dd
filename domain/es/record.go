// Package es holds the event-sourcing kernel shared by every aggregate: the
// stored record, expected revisions, the typed errors of the store port, the
// registry that maps stable event type names to payload types, and the
// bookkeeping an aggregate needs to decide and then record.
//
// It is pure: no I/O, no clock, no context.
package es

import (
	"time"

	"github.com/google/uuid"
)

// Record is one domain event as the event store keeps it: an encoded payload
// with the metadata every event carries. A Record is immutable once stored.
type Record struct {
	// ID identifies the event; appending the same ID again at the same
	// expected revision is a no-op, which makes retries idempotent.
	ID uuid.UUID
	// Stream is the aggregate's stream name, e.g. "booking-<uuid>".
	Stream string
	// Type is the registered, stable type name of the payload.
	Type string
	// SchemaVersion is the version of the payload's shape; older versions
	// are upcast when decoded.
	SchemaVersion int
	// AggregateID is the id of the aggregate the stream belongs to.
	AggregateID uuid.UUID
	// Revision is the 0-based position of the record in its stream. The
	// store assigns it.
	Revision uint64
	// Position is the record's place in the global order of all streams,
	// strictly increasing in commit order (not necessarily contiguous). The
	// store assigns it; 0 means "not stored yet".
	Position uint64
	// Time is when the event was recorded.
	Time time.Time
	// CorrelationID ties together every message of one business flow (for
	// a booking, its id); CausationID is the id of the message that caused
	// this one.
	CorrelationID uuid.UUID
	CausationID   uuid.UUID
	// Meta carries transport context such as W3C trace context
	// ("traceparent"). It may be nil.
	Meta map[string]string
	// Data is the encoded payload.
	Data []byte
}

// ExpectedRevision is the optimistic-concurrency condition of an append.
type ExpectedRevision struct {
	kind     expectKind
	revision uint64
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectStreamExists
	expectExact
)

var (
	// Any appends whatever the stream's state.
	Any = ExpectedRevision{kind: expectAny}
	// NoStream appends only if the stream does not exist yet.
	NoStream = ExpectedRevision{kind: expectNoStream}
	// StreamExists appends only if the stream has at least one record.
	StreamExists = ExpectedRevision{kind: expectStreamExists}
)

// Exact appends only if the stream's last record has revision r.
func Exact(r uint64) ExpectedRevision { return ExpectedRevision{kind: expectExact, revision: r} }

// ExpectVersion turns an aggregate version (-1 for a new aggregate) into the
// expected revision of its next append.
func ExpectVersion(v int64) ExpectedRevision {
	if v < 0 {
		return NoStream
	}
	return Exact(uint64(v))
}

// IsAny, IsNoStream, IsStreamExists and Exact let adapters map the condition
// to their own wire format.
func (e ExpectedRevision) IsAny() bool          { return e.kind == expectAny }
func (e ExpectedRevision) IsNoStream() bool     { return e.kind == expectNoStream }
func (e ExpectedRevision) IsStreamExists() bool { return e.kind == expectStreamExists }

// Revision reports the exact revision expected, if the condition is Exact.
func (e ExpectedRevision) Revision() (uint64, bool) { return e.revision, e.kind == expectExact }

// Check reports whether a stream whose last revision is head (exists=false
// for no stream) satisfies the condition.
func (e ExpectedRevision) Check(head uint64, exists bool) bool {
	switch e.kind {
	case expectNoStream:
		return !exists
	case expectStreamExists:
		return exists
	case expectExact:
		return exists && head == e.revision
	default:
		return true
	}
}

func (e ExpectedRevision) String() string {
	switch e.kind {
	case expectNoStream:
		return "no stream"
	case expectStreamExists:
		return "stream exists"
	case expectExact:
		return "revision " + itoa(e.revision)
	default:
		return "any"
	}
}

func itoa(u uint64) string {
	if u == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for u > 0 {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
	}
	return string(b[i:])
}

// AppendResult says where an append landed.
type AppendResult struct {
	// NextRevision is the revision of the last record of the stream after
	// the append.
	NextRevision uint64
	// Position is the global position of the last record appended.
	Position uint64
	// Written is true when this call stored the records. It is false for
	// an idempotent retry (the records were stored by an earlier append)
	// and for an empty append, and a store that cannot tell the two apart
	// (KurrentDB answers a retry as it answers a write) always leaves it
	// false: false means "maybe not", never "surely not".
	Written bool
}

// Direction is the order in which a stream is read.
type Direction uint8

const (
	Forward Direction = iota
	Backward
)

// ReadOptions selects a slice of one stream.
type ReadOptions struct {
	Direction Direction
	// From is the first revision to return (inclusive). Reading backward
	// with FromEnd set starts at the last record instead.
	From    uint64
	FromEnd bool
	// Limit caps the records returned; 0 means no cap.
	Limit int
}

// Filter narrows a subscription or a read of all streams. An empty filter
// passes everything; a record passes if it matches any prefix (when
// prefixes are given) and any type (when types are given).
type Filter struct {
	StreamPrefixes []string
	Types          []string
}

// Match reports whether r passes the filter.
func (f Filter) Match(r *Record) bool {
	if len(f.StreamPrefixes) > 0 {
		ok := false
		for _, p := range f.StreamPrefixes {
			if len(r.Stream) >= len(p) && r.Stream[:len(p)] == p {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.Types) > 0 {
		for _, t := range f.Types {
			if r.Type == t {
				return true
			}
		}
		return false
	}
	return true
}
