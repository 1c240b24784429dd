package kurrentdb

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/ticketd/ticketing/domain/es"
)

// stored plays the server: it returns the event KurrentDB would hand back
// for ev, appended to stream at rev and pos.
func stored(ev esdb.EventData, stream string, rev, pos uint64) *esdb.RecordedEvent {
	ct := "application/octet-stream"
	if ev.ContentType == esdb.ContentTypeJson {
		ct = "application/json"
	}
	return &esdb.RecordedEvent{
		EventID:      ev.EventID,
		EventType:    ev.EventType,
		ContentType:  ct,
		StreamID:     stream,
		EventNumber:  rev,
		Position:     esdb.Position{Commit: pos, Prepare: pos},
		CreatedDate:  time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		Data:         ev.Data,
		UserMetadata: ev.Metadata,
	}
}

func TestRecordRoundTrip(t *testing.T) {
	full := es.Record{
		ID:            uuid.New(),
		Stream:        "ignored: the store assigns it",
		Type:          "booking.confirmed",
		SchemaVersion: 3,
		AggregateID:   uuid.New(),
		Revision:      99,
		Position:      99,
		Time:          time.Date(2031, 12, 31, 23, 59, 58, 123456789, time.FixedZone("UTC+5", 5*3600)),
		CorrelationID: uuid.New(),
		CausationID:   uuid.New(),
		Meta: map[string]string{
			"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			"tracestate":  "vendor=1",
		},
		Data: []byte(`{"seats":[1,2],"note":"é<&>"}`),
	}
	cases := []struct {
		name string
		rec  es.Record
	}{
		{"every field", full},
		{"bare", es.Record{ID: uuid.New(), Type: "event.created", Time: time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)}},
		{"binary payload", es.Record{ID: uuid.New(), Type: "t", Time: time.Unix(1, 0), Data: []byte("{\x00\xff")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := toEventData(&tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			if ev.EventID != tc.rec.ID || ev.EventType != tc.rec.Type || !bytes.Equal(ev.Data, tc.rec.Data) {
				t.Fatalf("event = %s %q %q, want the record's id, type and data", ev.EventID, ev.EventType, ev.Data)
			}
			got := fromRecorded(stored(ev, "booking-1", 7, 123456))
			want := tc.rec
			want.Stream, want.Revision, want.Position = "booking-1", 7, 123456
			if d := diff(want, got); d != "" {
				t.Error(d)
			}
			if got.Time.Location() != time.UTC {
				t.Errorf("time comes back in %v, want UTC", got.Time.Location())
			}
		})
	}
}

// diff compares records field by field; times as instants, nil and empty
// Meta and Data alike.
func diff(want, got es.Record) string {
	var d []string
	check := func(field string, ok bool) {
		if !ok {
			d = append(d, field)
		}
	}
	check("ID", got.ID == want.ID)
	check("Stream", got.Stream == want.Stream)
	check("Type", got.Type == want.Type)
	check("SchemaVersion", got.SchemaVersion == want.SchemaVersion)
	check("AggregateID", got.AggregateID == want.AggregateID)
	check("Revision", got.Revision == want.Revision)
	check("Position", got.Position == want.Position)
	check("Time", got.Time.Equal(want.Time))
	check("CorrelationID", got.CorrelationID == want.CorrelationID)
	check("CausationID", got.CausationID == want.CausationID)
	check("Meta", maps.Equal(got.Meta, want.Meta))
	check("Data", bytes.Equal(got.Data, want.Data))
	if len(d) == 0 {
		return ""
	}
	return "fields differ: " + strings.Join(d, ", ") + "\n got: " + strings.ReplaceAll(jsonOf(got), "\n", "") + "\nwant: " + jsonOf(want)
}

func jsonOf(r es.Record) string {
	b, _ := json.Marshal(r)
	return string(b)
}

func TestContentType(t *testing.T) {
	cases := []struct {
		data []byte
		want esdb.ContentType
	}{
		{[]byte(`{"a":1}`), esdb.ContentTypeJson},
		{[]byte(`[]`), esdb.ContentTypeJson},
		{[]byte("{\x00"), esdb.ContentTypeBinary},
		{nil, esdb.ContentTypeBinary},
	}
	for _, tc := range cases {
		ev, err := toEventData(&es.Record{ID: uuid.New(), Type: "t", Data: tc.data})
		if err != nil {
			t.Fatal(err)
		}
		if ev.ContentType != tc.want {
			t.Errorf("content type of %q = %v, want %v", tc.data, ev.ContentType, tc.want)
		}
	}
}

// KurrentDB reads $correlationId and $causationId from event metadata
// (its $by_correlation_id projection, its UI); the record's own fields
// travel under those names too.
func TestMetadataCarriesKurrentDBNames(t *testing.T) {
	rec := es.Record{ID: uuid.New(), Type: "t", CorrelationID: uuid.New(), CausationID: uuid.New(), SchemaVersion: 2,
		Time: time.Date(2025, 1, 1, 12, 0, 0, 5, time.FixedZone("X", -3600))}
	ev, err := toEventData(&rec)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(ev.Metadata, &m); err != nil {
		t.Fatalf("metadata is not a JSON object: %v", err)
	}
	for key, want := range map[string]any{
		"$correlationId": rec.CorrelationID.String(),
		"$causationId":   rec.CausationID.String(),
		"correlationId":  rec.CorrelationID.String(),
		"causationId":    rec.CausationID.String(),
		"schemaVersion":  2.0,
		"time":           "2025-01-01T13:00:00.000000005Z",
	} {
		if m[key] != want {
			t.Errorf("metadata[%q] = %v, want %v", key, m[key], want)
		}
	}
	for _, key := range []string{"aggregateId", "meta"} {
		if _, ok := m[key]; ok {
			t.Errorf("metadata has %q for a zero field", key)
		}
	}
}

// Events in $all that other clients wrote carry other metadata or none.
func TestForeignMetadata(t *testing.T) {
	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	corr := uuid.New()
	cases := []struct {
		name string
		meta string
		want func(r es.Record) bool
	}{
		{"none: the server's creation time", "", func(r es.Record) bool { return r.Time.Equal(created) && r.Meta == nil }},
		{"not JSON", "\xff\x00", func(r es.Record) bool { return r.Time.Equal(created) && r.CorrelationID == uuid.Nil }},
		{"KurrentDB's names only", `{"$correlationId":"` + corr.String() + `"}`, func(r es.Record) bool { return r.CorrelationID == corr }},
		{"a field of another type", `{"schemaVersion":"two","$correlationId":"` + corr.String() + `"}`,
			func(r es.Record) bool { return r.SchemaVersion == 0 && r.CorrelationID == corr }},
		{"an id that is not a UUID", `{"aggregateId":"booking 7"}`, func(r es.Record) bool { return r.AggregateID == uuid.Nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := &esdb.RecordedEvent{EventID: uuid.New(), EventType: "t", StreamID: "s", CreatedDate: created, UserMetadata: []byte(tc.meta)}
			if r := fromRecorded(ev); !tc.want(r) {
				t.Errorf("decoded %s", jsonOf(r))
			}
		})
	}
}

func TestPosition(t *testing.T) {
	cases := []struct {
		in   esdb.Position
		want uint64
	}{
		{esdb.Position{Commit: 4096, Prepare: 4096}, 4096},
		// Servers before 22.6 send "no position" on stream reads.
		{esdb.Position{Commit: math.MaxUint64, Prepare: math.MaxUint64}, 0},
		{esdb.Position{}, 0},
	}
	for _, tc := range cases {
		if got := position(tc.in); got != tc.want {
			t.Errorf("position(%+v) = %d, want %d", tc.in, got, tc.want)
		}
	}
	// Revision is the event number, Position the commit position.
	r := fromRecorded(&esdb.RecordedEvent{EventNumber: 12, Position: esdb.Position{Commit: 900, Prepare: 900}})
	if r.Revision != 12 || r.Position != 900 {
		t.Errorf("revision %d, position %d; want 12, 900", r.Revision, r.Position)
	}
}

func TestFromResolved(t *testing.T) {
	target := &esdb.RecordedEvent{EventID: uuid.New(), EventType: "booking.placed", StreamID: "booking-1", EventNumber: 3}
	link := &esdb.RecordedEvent{EventID: uuid.New(), EventType: "$>", StreamID: "$ce-booking", EventNumber: 40}
	if r, ok := fromResolved(&esdb.ResolvedEvent{Link: link, Event: target}); !ok || r.ID != target.EventID || r.Stream != "booking-1" || r.Revision != 3 {
		t.Errorf("a resolved link reads as %s (%v), want the event it points at", jsonOf(r), ok)
	}
	if _, ok := fromResolved(&esdb.ResolvedEvent{Link: link}); ok {
		t.Error("a link to a deleted event reads as a record")
	}
	if r, ok := fromResolved(&esdb.ResolvedEvent{Event: target}); !ok || r.ID != target.EventID {
		t.Error("a plain event does not read as itself")
	}
}

func TestToEventsRefuses(t *testing.T) {
	id := uuid.New()
	cases := []struct {
		name    string
		stream  string
		records []es.Record
		is      error
	}{
		{"empty stream name", "", nil, nil},
		{"system stream", "$ce-booking", nil, nil},
		{"record without id", "booking-1", []es.Record{{Type: "t"}}, nil},
		{"id twice in one append", "booking-1", []es.Record{{ID: id, Type: "t"}, {ID: uuid.New(), Type: "t"}, {ID: id, Type: "t"}}, es.ErrDuplicateEventID},
		{"system type", "booking-1", []es.Record{{ID: uuid.New(), Type: "$metadata"}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := toEvents(tc.stream, tc.records)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not match %v", err, tc.is)
			}
		})
	}
	if evs, err := toEvents("booking-1", nil); err != nil || len(evs) != 0 {
		t.Errorf("empty append = %v, %v", evs, err)
	}
}

func TestWhatIsARecord(t *testing.T) {
	cases := []struct {
		stream, typ string
		want        bool
	}{
		{"booking-1", "booking.placed", true},
		{"$stats-127.0.0.1:2113", "$statsCollected", false},
		{"$$booking-1", "$metadata", false},
		{"$ce-booking", "$>", false},
		{"booking-1", "$streamDeleted", false},
		{"snapshot-event-1", snapshotType, false},
		// A domain event in a stream that happens to start like a
		// snapshot stream is still a record.
		{"snapshot-event-1", "event.created", true},
	}
	for _, tc := range cases {
		if got := isRecord(tc.stream, tc.typ); got != tc.want {
			t.Errorf("isRecord(%q, %q) = %v, want %v", tc.stream, tc.typ, got, tc.want)
		}
	}
}

func TestSnapshotEvent(t *testing.T) {
	for _, data := range [][]byte{[]byte(`{"capacity":100}`), []byte("\x00binary"), nil} {
		ev, err := snapshotEvent(7, data)
		if err != nil {
			t.Fatal(err)
		}
		v, got, err := decodeSnapshot(stored(ev, snapshotStream("event-1"), 0, 10))
		if err != nil || v != 7 || !bytes.Equal(got, data) {
			t.Errorf("snapshot of %q reads back as %d, %q, %v", data, v, got, err)
		}
	}
	if _, _, err := decodeSnapshot(&esdb.RecordedEvent{EventType: "event.created"}); err == nil {
		t.Error("an event of another type reads as a snapshot")
	}
	a, _ := snapshotEvent(7, nil)
	b, _ := snapshotEvent(7, nil)
	if a.EventID == b.EventID {
		t.Error("two snapshots at one version share an id: the second would be taken for a retry of the first")
	}
}

func TestWithMaxCount(t *testing.T) {
	cases := []struct {
		name    string
		raw     string
		changed bool
		want    map[string]any
	}{
		{"no metadata", "", true, map[string]any{"$maxCount": 1.0}},
		{"null", "null", true, map[string]any{"$maxCount": 1.0}},
		{"already one", `{"$maxCount":1}`, false, map[string]any{"$maxCount": 1.0}},
		{"other count, other properties kept", `{"$maxCount":5,"$acl":{"$r":"ops"},"owner":"x"}`, true,
			map[string]any{"$maxCount": 1.0, "$acl": map[string]any{"$r": "ops"}, "owner": "x"}},
		{"not an object", `[1,2]`, true, map[string]any{"$maxCount": 1.0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, changed := withMaxCount([]byte(tc.raw))
			if changed != tc.changed {
				t.Errorf("changed = %v, want %v", changed, tc.changed)
			}
			var got map[string]any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%q: %v", out, err)
			}
			if !jsonEqual(got, tc.want) {
				t.Errorf("metadata = %s, want %v", out, tc.want)
			}
		})
	}
}

func jsonEqual(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
