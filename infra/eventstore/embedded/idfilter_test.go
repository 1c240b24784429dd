package embedded

import (
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/ticketd/ticketing/domain/es"
)

// The filter may say "maybe" for an id it never saw, but never "no" for
// one it did, across segment growth; and "maybe" stays rare.
func TestIDFilterHasNoFalseNegatives(t *testing.T) {
	f := &idFilter{}
	f.seed = newIDFilter(0).seed
	f.segments = []*bloomSegment{newBloomSegment(1000, bloomBitsPerID)} // forces growth
	f.ready.Store(true)
	added := make([]uuid.UUID, 200_000)
	for i := range added {
		added[i] = uuid.New()
		f.add(added[i])
	}
	if len(f.segments) < 5 {
		t.Fatalf("%d segments after 200 times the first one's capacity", len(f.segments))
	}
	for _, id := range added {
		if !f.mayContain(id) {
			t.Fatalf("false negative for %s", id)
		}
	}
	const probes = 100_000
	positives := 0
	for range probes {
		if f.mayContain(uuid.New()) {
			positives++
		}
	}
	// The first segment at 10 bits per id is about 1%, the denser later
	// ones add less and less.
	if rate := float64(positives) / probes; rate > 0.03 {
		t.Errorf("false-positive rate %.3f", rate)
	} else {
		t.Logf("false-positive rate %.4f over %d segments", rate, len(f.segments))
	}
}

// TestIDFilterBuiltAtOpen reopens a store and checks that the filter,
// built in the background from the index, knows every stored id, so that
// reuse is still refused once appends stop asking Pebble.
func TestIDFilterBuiltAtOpen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var stored []uuid.UUID
	for i := range 50 {
		recs := []es.Record{rec("a"), rec("b")}
		if _, err := s.Append(t.Context(), "s", es.ExpectVersion(int64(2*i)-1), recs); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, recs[0].ID, recs[1].ID)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	<-s.filterDone
	if !s.ids.ready.Load() {
		t.Fatal("filter not ready after its build")
	}
	for _, id := range stored {
		if !s.ids.mayContain(id) {
			t.Fatalf("filter built at open misses stored id %s", id)
		}
	}
	reuse := rec("x")
	reuse.ID = stored[17]
	if _, err := s.Append(t.Context(), "other", es.Any, []es.Record{reuse}); !errors.Is(err, es.ErrDuplicateEventID) {
		t.Errorf("reusing a stored id = %v, want es.ErrDuplicateEventID", err)
	}
	fresh := rec("y")
	if _, err := s.Append(t.Context(), "other", es.NoStream, []es.Record{fresh}); err != nil {
		t.Fatal(err)
	}
	if !s.ids.mayContain(fresh.ID) {
		t.Error("filter misses an id appended after open")
	}
}
