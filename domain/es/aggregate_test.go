package es_test

import (
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
)

func TestChangesBookkeeping(t *testing.T) {
	a, b, c := booking.Rejected{Reason: "a"}, booking.Rejected{Reason: "b"}, booking.Rejected{Reason: "c"}
	tests := []struct {
		name        string
		do          func(ch *es.Changes)
		version     int64
		pending     []es.Payload
		expectation es.ExpectedRevision
	}{
		{"a new aggregate has no stream", func(*es.Changes) {}, -1, nil, es.NoStream},
		{"recorded events wait for the store", func(ch *es.Changes) {
			ch.Record(a)
			ch.Record(b)
		}, -1, []es.Payload{a, b}, es.NoStream},
		{"stored events move the version past them", func(ch *es.Changes) {
			ch.Record(a)
			ch.Record(b)
			ch.Stored()
		}, 1, nil, es.Exact(1)},
		{"replayed events set the version", func(ch *es.Changes) {
			ch.Replayed(0)
			ch.Replayed(1)
			ch.Replayed(2)
		}, 2, nil, es.Exact(2)},
		{"recorded after replay then stored", func(ch *es.Changes) {
			ch.Replayed(4)
			ch.Record(a)
			ch.Record(b)
			ch.Record(c)
			ch.Stored()
		}, 7, nil, es.Exact(7)},
		{"restored from a snapshot, then replayed", func(ch *es.Changes) {
			ch.Restored(99)
			ch.Replayed(100)
		}, 100, nil, es.Exact(100)},
		{"restored from a snapshot", func(ch *es.Changes) { ch.Restored(99) }, 99, nil, es.Exact(99)},
		{"discarded after a failed append", func(ch *es.Changes) {
			ch.Replayed(3)
			ch.Record(a)
			ch.Discard()
		}, 3, nil, es.Exact(3)},
		{"storing nothing changes nothing", func(ch *es.Changes) {
			ch.Replayed(3)
			ch.Stored()
		}, 3, nil, es.Exact(3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ch es.Changes
			tt.do(&ch)
			if ch.Version() != tt.version {
				t.Errorf("Version() = %d, want %d", ch.Version(), tt.version)
			}
			if len(ch.Pending()) != len(tt.pending) || (len(tt.pending) > 0 && !reflect.DeepEqual(ch.Pending(), tt.pending)) {
				t.Errorf("Pending() = %v, want %v", ch.Pending(), tt.pending)
			}
			if got := es.ExpectVersion(ch.Version()); got != tt.expectation {
				t.Errorf("next append expects %s, want %s", got, tt.expectation)
			}
		})
	}
}

func TestDeriveIDIsDeterministicAndDistinct(t *testing.T) {
	msg, other := uuid.New(), uuid.New()
	first, redelivered := es.DeriveID(msg, "hold"), es.DeriveID(msg, "hold")
	if first != redelivered {
		t.Error("the same message and name derived two ids: a redelivery would not be recognised")
	}
	seen := map[uuid.UUID]string{}
	for _, d := range []struct {
		parent uuid.UUID
		name   string
	}{{msg, "hold"}, {msg, "release"}, {other, "hold"}, {msg, ""}} {
		id := es.DeriveID(d.parent, d.name)
		if id == d.parent || id == uuid.Nil {
			t.Errorf("DeriveID(%s, %q) = %s, want a new id", d.parent, d.name, id)
		}
		key := d.parent.String() + "/" + d.name
		if prev, dup := seen[id]; dup {
			t.Errorf("DeriveID gave %s for both %s and %s", id, prev, key)
		}
		seen[id] = key
	}
}
