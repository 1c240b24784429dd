package storetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/ticketd/ticketing/domain/es"
)

func (h *harness) reopenTests() []test {
	return []test{
		{"EverythingSurvives", h.testReopen},
	}
}

// testReopen closes a store and opens it again: records, stream heads,
// the global order, the event-id index and snapshots must all be as they
// were, and appending must carry on where it stopped.
func (h *harness) testReopen(t *testing.T) {
	s1, closeS1 := h.unmanaged(t)
	ns := newNamespace()
	ctx := testContext(t)
	a, b := ns.stream("a"), ns.stream("b")
	from := head(t, s1)

	aRecs := newRecords(ns.typ("A"), 3)
	first := mustAppend(t, s1, a, es.NoStream, aRecs[:2]...)
	mustAppend(t, s1, a, es.Exact(1), aRecs[2])
	mustAppend(t, s1, b, es.NoStream, newRecords(ns.typ("B"), 2)...)
	if err := s1.SaveSnapshot(ctx, a, 2, []byte("state@2")); err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}
	beforeA, beforeB := readStream(t, s1, a), readStream(t, s1, b)
	head1 := head(t, s1)
	if err := closeS1(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s := h.reopen(t, s1)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	for name, before := range map[string][]es.Record{a: beforeA, b: beforeB} {
		after := readStream(t, s, name)
		if len(after) != len(before) {
			t.Fatalf("%s has %d records after reopening, %d before", name, len(after), len(before))
		}
		for i := range before {
			if diff := recordDiff(before[i], after[i]); diff != "" || before[i].Revision != after[i].Revision || before[i].Position != after[i].Position {
				t.Errorf("%s record %d changed: %s", name, i, diff)
			}
		}
	}
	if h2 := head(t, s); h2 < head1 {
		t.Errorf("head position went back from %d to %d", head1, h2)
	}
	if v, data, ok, err := s.LoadSnapshot(ctx, a); err != nil || !ok || v != 2 || string(data) != "state@2" {
		t.Errorf("LoadSnapshot after reopening = %d, %q, %v, %v", v, data, ok, err)
	}

	// The stream heads survived: expectations are checked against them.
	_, err := s.Append(ctx, b, es.NoStream, newRecords(ns.typ("B"), 1))
	var ce *es.ConflictError
	if !errors.As(err, &ce) || !ce.Exists || ce.Actual != 1 {
		t.Errorf("Append(no stream) to an existing stream after reopening = %v, want a conflict at revision 1", err)
	}
	// The event-id index survived: a retry is recognised, a reuse refused.
	retried := first
	retried.Written = false // a retry stores nothing
	if res, err := s.Append(ctx, a, es.NoStream, aRecs[:2]); err != nil || res != retried {
		t.Errorf("retry after reopening = %+v, %v; want %+v", res, err, retried)
	}
	if _, err := s.Append(ctx, b, es.Any, aRecs[:1]); !h.noIDIndex && !errors.Is(err, es.ErrDuplicateEventID) {
		t.Errorf("reusing an id after reopening = %v, want es.ErrDuplicateEventID", err)
	}
	// Appending carries on at the next revision and a later position.
	next := newRecord(ns.typ("A"), "{}")
	res := mustAppend(t, s, a, es.Exact(2), next)
	if res.NextRevision != 3 || res.Position <= head1 {
		t.Errorf("append after reopening = %+v, want revision 3 after position %d", res, head1)
	}

	got, err := subscribeN(ctx, s, from, ns.filter(), 6)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Concat(ids(beforeA), ids(beforeB), ids([]es.Record{next}))
	if !slices.Equal(ids(got), want) {
		t.Errorf("subscription after reopening delivered %d records, not the %d stored in order", len(got), len(want))
	}
}
