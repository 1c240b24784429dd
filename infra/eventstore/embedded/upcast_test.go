package embedded

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
)

// storedV1 is one record of testdata/booking-v1.records: the log key and
// the value the embedded store of commit 525d54b wrote to Pebble for it,
// when every booking event was at schema version 1 (see
// testdata/README.md). The file must never be regenerated.
type storedV1 struct {
	key, value []byte
}

func readStoredV1(t *testing.T) []storedV1 {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "booking-v1.records"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []storedV1
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, " ")
		key, err1 := hex.DecodeString(k)
		value, err2 := hex.DecodeString(v)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("testdata: bad line %q", line)
		}
		out = append(out, storedV1{key, value})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Records an earlier version stored at schema version 1 are kept as they
// were written and read back as today's types: the store hands back the
// old version and payload untouched, and the registry upcasts them.
func TestV1RecordsStoredEarlierReadAsToday(t *testing.T) {
	ctx := t.Context()
	stored := readStoredV1(t)
	if len(stored) != 7 {
		t.Fatalf("testdata holds %d records, want 7", len(stored))
	}
	dir := t.TempDir()
	s, err := Open(dir, Options{CacheSize: 8 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	// Write them again exactly as the earlier version appended them: in
	// order, each stream from its start.
	var old []es.Record
	for _, r := range stored {
		rec, err := decodeRecord(positionOf(r.key), r.value)
		if err != nil {
			t.Fatal(err)
		}
		if rec.SchemaVersion != 1 {
			t.Fatalf("testdata record %s@%d is v%d, want v1", rec.Stream, rec.Revision, rec.SchemaVersion)
		}
		if _, err := s.Append(ctx, rec.Stream, es.ExpectVersion(int64(rec.Revision)-1), []es.Record{rec}); err != nil {
			t.Fatalf("Append %s@%d: %v", rec.Stream, rec.Revision, err)
		}
		old = append(old, rec)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{CacheSize: 8 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// Today's store keeps them byte for byte as the earlier one did.
	for _, r := range stored {
		v, closer, err := s.db.Get(r.key)
		if err != nil {
			t.Fatalf("log key %x: %v", r.key, err)
		}
		if !bytes.Equal(v, r.value) {
			t.Errorf("log key %x holds\n %x\nwant what the earlier version wrote\n %x", r.key, v, r.value)
		}
		closer.Close()
	}

	reg := commands.NewRegistry()
	repo := commands.NewRepository(s, reg, time.Now)
	tests := []struct {
		booking uuid.UUID
		v1File  string // the same payload, kept with the domain's tests
		refund  bool
	}{
		{uuid.MustParse("3f2e1d0c-9b8a-4765-8432-10fedcba9876"), "cancelled-v1-confirmed.json", true},
		{uuid.MustParse("7c6b5a49-3827-4165-9f4e-3d2c1b0a9f8e"), "cancelled-v1-awaiting-payment.json", false},
	}
	for _, tt := range tests {
		t.Run(tt.v1File, func(t *testing.T) {
			stream := booking.Stream(tt.booking)
			var b booking.Booking
			if err := repo.Load(ctx, stream, &b); err != nil {
				t.Fatalf("Load: %v", err)
			}
			if b.ID() != tt.booking || b.Status() != booking.StatusCancelled {
				t.Fatalf("loaded booking %s is %s, want %s cancelled", b.ID(), b.Status(), tt.booking)
			}
			recs, err := s.ReadStream(ctx, stream, es.ReadOptions{Direction: es.Backward, FromEnd: true, Limit: 1})
			if err != nil || len(recs) != 1 {
				t.Fatalf("ReadStream = %d records, %v", len(recs), err)
			}
			last := recs[0]
			want, err := os.ReadFile(filepath.Join("..", "..", "..", "domain", "booking", "testdata", tt.v1File))
			if err != nil {
				t.Fatal(err)
			}
			if last.Type != booking.TypeCancelled || last.SchemaVersion != 1 || !bytes.Equal(last.Data, want) {
				t.Fatalf("stored %s v%d %s, want booking.cancelled v1 %s: history was rewritten", last.Type, last.SchemaVersion, last.Data, want)
			}
			p, err := reg.Decode(&last)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			c, ok := p.(booking.Cancelled)
			if !ok {
				t.Fatalf("decoded %T, want booking.Cancelled", p)
			}
			if c.Refund != tt.refund || c.PaymentID != b.PaymentID() {
				t.Errorf("decoded %+v, want Refund %v for payment %s", c, tt.refund, b.PaymentID())
			}
		})
	}

	// The log, as projectors read it, decodes whole.
	all, err := s.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(old) {
		t.Fatalf("ReadAll = %d records, want %d", len(all), len(old))
	}
	for i := range all {
		if all[i].ID != old[i].ID || all[i].Position != old[i].Position {
			t.Errorf("record %d is %s at %d, want %s at %d", i, all[i].ID, all[i].Position, old[i].ID, old[i].Position)
		}
		if _, err := reg.Decode(&all[i]); err != nil {
			t.Errorf("Decode %s@%d: %v", all[i].Stream, all[i].Revision, err)
		}
	}
}
