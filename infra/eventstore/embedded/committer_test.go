package embedded

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ticketd/ticketing/domain/es"
)

func rec(data string) es.Record {
	return es.Record{ID: uuid.New(), Type: "T", Time: time.Unix(1, 0), Data: []byte(data)}
}

func request(t *testing.T, stream string, expected es.ExpectedRevision, recs ...es.Record) *appendReq {
	t.Helper()
	r := &appendReq{done: make(chan struct{}, 1)}
	if err := r.fill(stream, expected, recs); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestOneGroup hands the committer a group directly, so that what would
// otherwise depend on timing is certain: appends of one group see each
// other in order, a failed one does not stop the others, and the group
// lands as one contiguous run of positions.
func TestOneGroup(t *testing.T) {
	s, err := open(filepath.Join(t.TempDir(), "store"), Options{}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		s.start() // Close waits for the goroutines
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	a, b, c, d := rec("a"), rec("b"), rec("c"), rec("d")
	group := []*appendReq{
		request(t, "x", es.NoStream, a),           // x@0
		request(t, "x", es.NoStream, b),           // conflict: x@0 exists now
		request(t, "x", es.Exact(0), c),           // x@1
		request(t, "x", es.NoStream, a),           // retry of the first: same result
		request(t, "y", es.Any, a),                // a is in x: duplicate
		request(t, "x", es.Exact(1), d),           // x@2
		request(t, "x", es.Exact(2)),              // empty: checks only
		request(t, "y", es.StreamExists, b),       // conflict: no y
		request(t, "y", es.NoStream, b),           // y@0
		request(t, "x", es.StreamExists, c),       // c is at x@1, wherever: retry
		request(t, "x", es.Exact(0), c, rec("e")), // c then a new id: duplicate
	}
	s.committer.finish([]written{s.committer.commit(group)})

	want := []struct {
		res      es.AppendResult
		conflict bool
		dup      bool
	}{
		{res: es.AppendResult{NextRevision: 0, Position: 1, Written: true}},
		{conflict: true},
		{res: es.AppendResult{NextRevision: 1, Position: 2, Written: true}},
		{res: es.AppendResult{NextRevision: 0, Position: 1}}, // a retry: not written again
		{dup: true},
		{res: es.AppendResult{NextRevision: 2, Position: 3, Written: true}},
		{res: es.AppendResult{NextRevision: 2, Position: 3}},
		{conflict: true},
		{res: es.AppendResult{NextRevision: 0, Position: 4, Written: true}},
		{res: es.AppendResult{NextRevision: 1, Position: 2}},
		{dup: true},
	}
	for i, w := range want {
		r := group[i]
		switch {
		case w.conflict:
			if !errors.Is(r.err, es.ErrConflict) {
				t.Errorf("append %d = %v, want a conflict", i, r.err)
			}
		case w.dup:
			if !errors.Is(r.err, es.ErrDuplicateEventID) {
				t.Errorf("append %d = %v, want es.ErrDuplicateEventID", i, r.err)
			}
		default:
			if r.err != nil || r.res != w.res {
				t.Errorf("append %d = %+v, %v; want %+v", i, r.res, r.err, w.res)
			}
		}
	}
	if s.durable.Load() != 4 || s.syncs.Load() != 1 {
		t.Errorf("head %d after %d syncs, want 4 after 1", s.durable.Load(), s.syncs.Load())
	}
	x, err := s.ReadStream(t.Context(), "x", es.ReadOptions{})
	if err != nil || len(x) != 3 || x[0].ID != a.ID || x[1].ID != c.ID || x[2].ID != d.ID {
		t.Fatalf("x = %d records, %v; want a, c, d", len(x), err)
	}

	// Against committed state, the retry still holds.
	retry := request(t, "x", es.NoStream, a)
	s.committer.finish([]written{s.committer.commit([]*appendReq{retry})})
	if retry.err != nil || retry.res != (es.AppendResult{NextRevision: 0, Position: 1}) {
		t.Errorf("retry from committed state = %+v, %v", retry.res, retry.err)
	}
}
