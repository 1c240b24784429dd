package pgstore_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/internal/baseline/pgstore"
)

// The baseline exists to be measured against; a binary that linked it
// would be running a second, weaker event store by mistake.
func TestNoBinaryImportsTheBaseline(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/ticketd/ticketing/cmd/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const self = "github.com/ticketd/ticketing/internal/baseline/"
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, self) {
			t.Errorf("a binary under cmd/ depends on %s, which is for benchmarks only", dep)
		}
	}
}

func open(t *testing.T) *pgstore.Store {
	t.Helper()
	postgresURL := testServers.Postgres(t)
	ctx := context.Background()
	s, err := pgstore.Open(ctx, postgresURL, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func record(typ string) es.Record {
	return es.Record{
		ID: uuid.New(), Type: typ, SchemaVersion: 1, AggregateID: uuid.New(),
		Time: time.Now().UTC().Truncate(time.Microsecond), CorrelationID: uuid.New(), CausationID: uuid.New(),
		Data: []byte(`{"n":1}`),
	}
}

// The baseline must keep the expected-revision contract the benchmarks
// compare, or it would be measured doing less than the embedded store.
func TestAppendHonoursExpectedRevisions(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	steps := []struct {
		name     string
		expected es.ExpectedRevision
		records  int
		conflict bool
		next     uint64
	}{
		{"stream exists, but it does not", es.StreamExists, 1, true, 0},
		{"exact revision on no stream", es.Exact(0), 1, true, 0},
		{"no stream", es.NoStream, 2, false, 1},
		{"no stream again", es.NoStream, 1, true, 0},
		{"stale exact revision", es.Exact(0), 1, true, 0},
		{"exact revision ahead of the stream", es.Exact(5), 1, true, 0},
		{"exact revision", es.Exact(1), 1, false, 2},
		{"stream exists", es.StreamExists, 1, false, 3},
		{"any", es.Any, 3, false, 6},
	}
	var stored []es.Record
	for _, st := range steps {
		recs := make([]es.Record, st.records)
		for i := range recs {
			recs[i] = record("test." + strings.ReplaceAll(st.name, " ", "_"))
		}
		res, err := s.Append(ctx, "s-1", st.expected, recs)
		if st.conflict {
			var ce *es.ConflictError
			if !errors.As(err, &ce) || !errors.Is(err, es.ErrConflict) {
				t.Fatalf("%s: err = %v, want a conflict", st.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if res.NextRevision != st.next {
			t.Fatalf("%s: next revision %d, want %d", st.name, res.NextRevision, st.next)
		}
		stored = append(stored, recs...)
	}

	got, err := s.ReadStream(ctx, "s-1", es.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(stored) {
		t.Fatalf("read %d records, stored %d", len(got), len(stored))
	}
	for i, r := range got {
		want := stored[i]
		if r.Revision != uint64(i) || r.ID != want.ID || r.Type != want.Type || r.AggregateID != want.AggregateID ||
			r.CausationID != want.CausationID || !r.Time.Equal(want.Time) || string(r.Data) != string(want.Data) {
			t.Errorf("record %d = %+v, want %+v at revision %d", i, r, want, i)
		}
	}
	last, err := s.ReadStream(ctx, "s-1", es.ReadOptions{Direction: es.Backward, FromEnd: true, Limit: 1})
	if err != nil || len(last) != 1 || last[0].Revision != uint64(len(stored)-1) {
		t.Fatalf("last record: %v, %v", last, err)
	}
	if _, err := s.ReadStream(ctx, "s-2", es.ReadOptions{}); !errors.Is(err, es.ErrStreamNotFound) {
		t.Fatalf("read of a missing stream: %v", err)
	}
}

// Of racing appends at one expected revision exactly one wins.
func TestRacingAppendsOneWins(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if _, err := s.Append(ctx, "hot", es.NoStream, []es.Record{record("test.first")}); err != nil {
		t.Fatal(err)
	}
	const racers = 8
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() {
			_, errs[i] = s.Append(ctx, "hot", es.Exact(0), []es.Record{record("test.race")})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, es.ErrConflict):
			t.Fatalf("a racer failed with %v, want a conflict", err)
		}
	}
	if n, err := s.Count(ctx); won != 1 || err != nil || n != 2 {
		t.Fatalf("%d racers won, %d events stored (%v); want 1 and 2", won, n, err)
	}
}
