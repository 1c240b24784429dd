package storetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/ticketd/ticketing/domain/es"
)

func (h *harness) readTests() []test {
	return []test{
		{"StreamSlices", h.testStreamSlices},
		{"MissingStream", h.testMissingStream},
		{"AllInPages", h.testReadAllPaging},
		{"HeadPosition", h.testHeadPosition},
	}
}

func (h *harness) testStreamSlices(t *testing.T) {
	s := h.store(t)
	ns := newNamespace()
	stream := ns.stream("event-1")
	recs := newRecords(ns.typ("SeatsHeld"), 5)
	mustAppend(t, s, stream, es.NoStream, recs[:2]...)
	mustAppend(t, s, stream, es.Exact(1), recs[2:]...)

	fwd, bwd := es.Forward, es.Backward
	cases := []struct {
		name string
		opts es.ReadOptions
		want []uint64 // revisions
	}{
		{"forward, all", es.ReadOptions{}, []uint64{0, 1, 2, 3, 4}},
		{"forward from 2", es.ReadOptions{Direction: fwd, From: 2}, []uint64{2, 3, 4}},
		{"forward from 1, limit 2", es.ReadOptions{From: 1, Limit: 2}, []uint64{1, 2}},
		{"forward, limit above length", es.ReadOptions{Limit: 10}, []uint64{0, 1, 2, 3, 4}},
		{"forward from the last", es.ReadOptions{From: 4}, []uint64{4}},
		{"forward past the end", es.ReadOptions{From: 5}, []uint64{}},
		{"backward from the end", es.ReadOptions{Direction: bwd, FromEnd: true}, []uint64{4, 3, 2, 1, 0}},
		{"backward from the end, limit 2", es.ReadOptions{Direction: bwd, FromEnd: true, Limit: 2}, []uint64{4, 3}},
		{"backward from 2", es.ReadOptions{Direction: bwd, From: 2}, []uint64{2, 1, 0}},
		{"backward from 3, limit 2", es.ReadOptions{Direction: bwd, From: 3, Limit: 2}, []uint64{3, 2}},
		{"backward from 0", es.ReadOptions{Direction: bwd, From: 0}, []uint64{0}},
		{"backward from past the end", es.ReadOptions{Direction: bwd, From: 9}, []uint64{4, 3, 2, 1, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ReadStream(testContext(t), stream, tc.opts)
			if err != nil {
				t.Fatalf("ReadStream: %v", err)
			}
			revs := []uint64{}
			for _, r := range got {
				revs = append(revs, r.Revision)
				if r.ID != recs[r.Revision].ID || r.Stream != stream {
					t.Errorf("revision %d holds event %s of %s, want %s", r.Revision, r.ID, r.Stream, recs[r.Revision].ID)
				}
			}
			if !slices.Equal(revs, tc.want) {
				t.Errorf("revisions = %v, want %v", revs, tc.want)
			}
		})
	}
}

func (h *harness) testMissingStream(t *testing.T) {
	s := h.store(t)
	ns := newNamespace()
	mustAppend(t, s, ns.stream("booking-10"), es.NoStream, newRecords(ns.typ("Placed"), 1)...)
	for _, opts := range []es.ReadOptions{{}, {Direction: es.Backward, FromEnd: true}, {From: 3, Limit: 1}} {
		// "booking-1" is a prefix of an existing stream, not a stream.
		_, err := s.ReadStream(testContext(t), ns.stream("booking-1"), opts)
		if !errors.Is(err, es.ErrStreamNotFound) {
			t.Errorf("ReadStream(missing, %+v) = %v, want es.ErrStreamNotFound", opts, err)
		}
	}
}

func (h *harness) testReadAllPaging(t *testing.T) {
	const pageSize = 3
	s := h.store(t)
	ns := newNamespace()
	ctx := testContext(t)
	from := head(t, s)
	var want []es.Record
	for i := range 7 {
		r := newRecord(ns.typ("Paged"), "{}")
		mustAppend(t, s, ns.stream([]string{"a", "b", "c"}[i%3]), es.Any, r)
		want = append(want, r)
	}

	var got []es.Record
	last := from
	for len(got) < len(want) {
		page, err := s.ReadAll(ctx, last, pageSize)
		if err != nil {
			t.Fatalf("ReadAll(%d, %d): %v", last, pageSize, err)
		}
		if len(page) == 0 || len(page) > pageSize {
			t.Fatalf("ReadAll(%d, %d) returned %d records with %d of ours still unread", last, pageSize, len(page), len(want)-len(got))
		}
		for _, r := range page {
			if r.Position <= last {
				t.Fatalf("ReadAll(%d) returned position %d after %d", last, r.Position, last)
			}
			last = r.Position
		}
		got = append(got, own(page, ns)...)
	}
	if !slices.Equal(ids(got), ids(want)) {
		t.Errorf("paging returned %d of our records, not the %d appended in order", len(got), len(want))
	}
	rest, err := s.ReadAll(ctx, got[len(got)-1].Position, 100)
	if err != nil {
		t.Fatalf("ReadAll past our last record: %v", err)
	}
	if n := len(own(rest, ns)); n != 0 {
		t.Errorf("ReadAll past our last record returned %d of ours", n)
	}
}

func (h *harness) testHeadPosition(t *testing.T) {
	s := h.store(t)
	ns := newNamespace()
	ctx := testContext(t)
	h0 := head(t, s)
	r := newRecord(ns.typ("Moved"), "{}")
	res := mustAppend(t, s, ns.stream("a"), es.NoStream, r)
	h1 := head(t, s)
	if res.Position <= h0 || h1 < res.Position {
		t.Errorf("head %d before and %d after an append at position %d", h0, h1, res.Position)
	}
	got, err := s.ReadAll(ctx, res.Position-1, 1)
	if err != nil || len(got) != 1 || got[0].ID != r.ID || got[0].Position != res.Position {
		t.Errorf("ReadAll just before the appended position = %d records, %v; want the appended record", len(got), err)
	}
}
