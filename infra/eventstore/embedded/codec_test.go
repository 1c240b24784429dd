package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ticketd/ticketing/domain/es"
)

func encode(r *es.Record, rev uint64) []byte {
	v := []byte{recordFormat}
	v = binary.BigEndian.AppendUint64(v, rev)
	return encodeBody(v, r.Stream, r)
}

func TestRecordRoundTrip(t *testing.T) {
	cases := map[string]es.Record{
		"every field": {
			ID: uuid.New(), Stream: "booking-1", Type: "booking.Placed", SchemaVersion: 7,
			AggregateID: uuid.New(), Time: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC),
			CorrelationID: uuid.New(), CausationID: uuid.New(),
			Meta: map[string]string{"traceparent": "00-abc-def-01", "b": "", "": "empty key"},
			Data: []byte{0, 1, 2, 0xff},
		},
		"zero values":      {Stream: "s"},
		"before 1970":      {Stream: "s", Time: time.Date(1601, 1, 1, 0, 0, 0, 999999999, time.UTC)},
		"negative version": {Stream: "s", SchemaVersion: -1},
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			v := encode(&want, 42)
			got, err := decodeRecord(9, v)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != want.ID || got.Stream != want.Stream || got.Type != want.Type || got.SchemaVersion != want.SchemaVersion ||
				got.AggregateID != want.AggregateID || !got.Time.Equal(want.Time) || got.CorrelationID != want.CorrelationID ||
				got.CausationID != want.CausationID || !maps.Equal(got.Meta, want.Meta) || !bytes.Equal(got.Data, want.Data) ||
				got.Revision != 42 || got.Position != 9 {
				t.Errorf("decoded %+v, want %+v", got, want)
			}
			if stream, rev, ok := peekStreamRevision(v); !ok || stream != want.Stream || rev != 42 {
				t.Errorf("peek = %q, %d, %v", stream, rev, ok)
			}
			// The decoded record must not alias the stored bytes, which
			// Pebble reuses.
			for i := range v {
				v[i] = 0xAA
			}
			if !bytes.Equal(got.Data, want.Data) {
				t.Error("decoded data aliases the stored value")
			}
		})
	}
	if zero, _ := decodeRecord(1, encode(&es.Record{Stream: "s"}, 0)); !zero.Time.IsZero() {
		t.Errorf("zero time decodes as %v", zero.Time)
	}
}

// Every truncation and a format change is an error, never a panic or a
// silently different record.
func TestDecodeRejectsDamage(t *testing.T) {
	r := es.Record{ID: uuid.New(), Stream: "stream", Type: "T", Meta: map[string]string{"k": "v"}, Data: []byte("payload")}
	v := encode(&r, 1)
	for n := range len(v) {
		if _, err := decodeRecord(1, v[:n]); !errors.Is(err, errCorrupt) {
			t.Fatalf("decoding %d of %d bytes = %v, want errCorrupt", n, len(v), err)
		}
	}
	if _, err := decodeRecord(1, append(v, 0)); !errors.Is(err, errCorrupt) {
		t.Errorf("trailing byte accepted: %v", err)
	}
	other := bytes.Clone(v)
	other[0] = recordFormat + 1
	if _, err := decodeRecord(1, other); !errors.Is(err, errCorrupt) {
		t.Errorf("unknown format accepted: %v", err)
	}
}

// Stream keys are prefix-free: no stream's keys fall inside another's
// bounds, however the names relate.
func TestStreamKeysDoNotOverlap(t *testing.T) {
	names := []string{"", "a", "ab", "b", "booking-1", "booking-12", "booking-1\x00", "booking-1\xff", string(make([]byte, 200))}
	for _, a := range names {
		pa := streamPrefix(a)
		lo, hi := streamKey(pa, 0), streamUpper(pa)
		for _, b := range names {
			if a == b {
				continue
			}
			pb := streamPrefix(b)
			for _, rev := range []uint64{0, 1, 1 << 40, ^uint64(0)} {
				k := streamKey(pb, rev)
				if bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0 {
					t.Errorf("key of %q@%d falls inside the bounds of %q", b, rev, a)
				}
			}
		}
	}
}
