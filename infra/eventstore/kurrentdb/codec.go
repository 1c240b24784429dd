package kurrentdb

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/ticketd/ticketing/domain/es"
)

// Snapshots live in a stream of their own per aggregate stream, as events
// of one type that no domain event uses. They are in $all like any event;
// ReadAll, SubscribeAll and HeadPosition leave them out.
const (
	snapshotPrefix = "snapshot-"
	snapshotType   = "ticketd.snapshot"
)

func snapshotStream(stream string) string { return snapshotPrefix + stream }

// isSystem reports whether an event is KurrentDB's own: its streams
// ($stats-..., $$metadata, $projections-...) and event types ($metadata,
// $> links, $streamDeleted, ...) start with "$".
func isSystem(stream, typ string) bool {
	return strings.HasPrefix(stream, "$") || strings.HasPrefix(typ, "$")
}

func isSnapshot(stream, typ string) bool {
	return typ == snapshotType && strings.HasPrefix(stream, snapshotPrefix)
}

// isRecord reports whether an event read from $all is one of the port's
// records.
func isRecord(stream, typ string) bool {
	return !isSystem(stream, typ) && !isSnapshot(stream, typ)
}

// wireMeta is the event metadata the adapter writes: the fields of
// es.Record that KurrentDB has no place for. It is decoded leniently
// (strings parsed field by field) because $all also carries events that
// other writers put in a shared server.
type wireMeta struct {
	SchemaVersion int    `json:"schemaVersion,omitzero"`
	AggregateID   string `json:"aggregateId,omitzero"`
	CorrelationID string `json:"correlationId,omitzero"`
	CausationID   string `json:"causationId,omitzero"`
	// The same two ids under the names KurrentDB itself reads: its
	// $by_correlation_id projection and UI follow them.
	SysCorrelationID string `json:"$correlationId,omitzero"`
	SysCausationID   string `json:"$causationId,omitzero"`
	// Time is RFC 3339 with nanoseconds, in UTC.
	Time string            `json:"time,omitzero"`
	Meta map[string]string `json:"meta,omitempty"`
}

// encodeMeta returns the metadata of rec as JSON.
func encodeMeta(rec *es.Record) ([]byte, error) {
	m := wireMeta{SchemaVersion: rec.SchemaVersion, Meta: rec.Meta}
	if rec.AggregateID != uuid.Nil {
		m.AggregateID = rec.AggregateID.String()
	}
	if rec.CorrelationID != uuid.Nil {
		m.CorrelationID = rec.CorrelationID.String()
		m.SysCorrelationID = m.CorrelationID
	}
	if rec.CausationID != uuid.Nil {
		m.CausationID = rec.CausationID.String()
		m.SysCausationID = m.CausationID
	}
	if !rec.Time.IsZero() {
		m.Time = rec.Time.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(m)
}

// decodeMeta reads metadata written by encodeMeta. Metadata that is
// missing or not JSON yields the zero wireMeta; a field of the wrong type
// is left zero and the others are kept.
func decodeMeta(b []byte) wireMeta {
	var m wireMeta
	if len(b) == 0 {
		return m
	}
	if err := json.Unmarshal(b, &m); err != nil {
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) {
			return wireMeta{}
		}
	}
	return m
}

// toEventData maps a record to the event that Append sends. The payload
// is marked JSON when it is JSON (every domain payload is), so that
// KurrentDB's projections and UI can read it, and binary otherwise.
func toEventData(rec *es.Record) (esdb.EventData, error) {
	meta, err := encodeMeta(rec)
	if err != nil {
		return esdb.EventData{}, err
	}
	ct := esdb.ContentTypeBinary
	if json.Valid(rec.Data) {
		ct = esdb.ContentTypeJson
	}
	return esdb.EventData{EventID: rec.ID, EventType: rec.Type, ContentType: ct, Data: rec.Data, Metadata: meta}, nil
}

// toEvents validates the records of an append and maps them. A record
// with no id would get a random one from the client, which would defeat
// idempotent retries; an id twice in one append is the one duplicate the
// adapter can see without an index; and streams and types starting with
// "$" are KurrentDB's, left out of every read of $all.
func toEvents(stream string, records []es.Record) ([]esdb.EventData, error) {
	if stream == "" {
		return nil, errors.New("kurrentdb: append: empty stream name")
	}
	if strings.HasPrefix(stream, "$") {
		return nil, fmt.Errorf("kurrentdb: append to %s: streams starting with $ are KurrentDB's system streams", stream)
	}
	events := make([]esdb.EventData, len(records))
	seen := make(map[uuid.UUID]struct{}, len(records))
	for i := range records {
		rec := &records[i]
		if rec.ID == uuid.Nil {
			return nil, fmt.Errorf("kurrentdb: append to %s: record %d has no event id", stream, i)
		}
		if _, dup := seen[rec.ID]; dup {
			return nil, fmt.Errorf("kurrentdb: append to %s: event %s appears twice: %w", stream, rec.ID, es.ErrDuplicateEventID)
		}
		seen[rec.ID] = struct{}{}
		if strings.HasPrefix(rec.Type, "$") {
			return nil, fmt.Errorf("kurrentdb: append to %s: record %d has type %q: types starting with $ are KurrentDB's system types", stream, i, rec.Type)
		}
		ev, err := toEventData(rec)
		if err != nil {
			return nil, fmt.Errorf("kurrentdb: append to %s: record %d: %w", stream, i, err)
		}
		events[i] = ev
	}
	return events, nil
}

// noPosition is what the server sends for a position it does not know
// (stream reads before 22.6); 0 is what the port calls "not known".
const noPosition = math.MaxUint64

// position maps an event's $all position to the port's: the commit
// position. Events appended through gRPC are committed one by one, so
// their commit and prepare positions are equal and grow with the log.
func position(p esdb.Position) uint64 {
	if p.Commit == noPosition {
		return 0
	}
	return p.Commit
}

// fromRecorded maps a stored event to a record. Time is the one in the
// metadata; an event written by another client has none and gets the
// server's creation time.
func fromRecorded(ev *esdb.RecordedEvent) es.Record {
	m := decodeMeta(ev.UserMetadata)
	rec := es.Record{
		ID:            ev.EventID,
		Stream:        ev.StreamID,
		Type:          ev.EventType,
		SchemaVersion: m.SchemaVersion,
		AggregateID:   parseID(m.AggregateID),
		Revision:      ev.EventNumber,
		Position:      position(ev.Position),
		CorrelationID: parseID(m.CorrelationID),
		CausationID:   parseID(m.CausationID),
		Meta:          m.Meta,
		Data:          ev.Data,
	}
	if rec.CorrelationID == uuid.Nil {
		rec.CorrelationID = parseID(m.SysCorrelationID)
	}
	if rec.CausationID == uuid.Nil {
		rec.CausationID = parseID(m.SysCausationID)
	}
	if t, err := time.Parse(time.RFC3339Nano, m.Time); err == nil {
		rec.Time = t.UTC()
	} else {
		rec.Time = ev.CreatedDate.UTC()
	}
	return rec
}

// fromResolved maps an event of a stream read, following a link to the
// event it points at. ok is false for a link whose event was deleted.
func fromResolved(re *esdb.ResolvedEvent) (rec es.Record, ok bool) {
	if re.Event == nil {
		return es.Record{}, false
	}
	return fromRecorded(re.Event), true
}

func parseID(s string) uuid.UUID {
	if s == "" {
		return uuid.Nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil
	}
	return id
}

// snapshotMeta is the metadata of a snapshot event. The snapshot's data
// is the event's payload, as it was given.
type snapshotMeta struct {
	Version int64 `json:"version"`
}

func snapshotEvent(version int64, data []byte) (esdb.EventData, error) {
	meta, err := json.Marshal(snapshotMeta{Version: version})
	if err != nil {
		return esdb.EventData{}, err
	}
	ct := esdb.ContentTypeBinary
	if json.Valid(data) {
		ct = esdb.ContentTypeJson
	}
	// A random id: a snapshot retaken at the same version (say, in a new
	// schema) must not be taken for a retry of the old one.
	return esdb.EventData{EventID: uuid.New(), EventType: snapshotType, ContentType: ct, Data: data, Metadata: meta}, nil
}

func decodeSnapshot(ev *esdb.RecordedEvent) (version int64, data []byte, err error) {
	if ev.EventType != snapshotType {
		return 0, nil, fmt.Errorf("event %d of %s has type %q, not %q", ev.EventNumber, ev.StreamID, ev.EventType, snapshotType)
	}
	var m snapshotMeta
	if err := json.Unmarshal(ev.UserMetadata, &m); err != nil {
		return 0, nil, fmt.Errorf("event %d of %s: snapshot metadata: %w", ev.EventNumber, ev.StreamID, err)
	}
	return m.Version, ev.Data, nil
}

// withMaxCount returns stream metadata (as stored in a $$ stream) with
// $maxCount set to 1 and every other property kept, and whether that
// changes anything. Metadata that is not a JSON object is replaced.
func withMaxCount(raw []byte) ([]byte, bool) {
	props := map[string]any{}
	if len(raw) > 0 && json.Unmarshal(raw, &props) != nil {
		props = map[string]any{}
	}
	if props == nil {
		props = map[string]any{}
	}
	if n, ok := props["$maxCount"].(float64); ok && n == 1 {
		return raw, false
	}
	props["$maxCount"] = 1
	b, err := json.Marshal(props)
	if err != nil {
		// Unmarshalled JSON always marshals again.
		panic(err)
	}
	return b, true
}
