package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ticketd/ticketing/domain/es"
)

func (h *harness) appendTests() []test {
	return []test{
		{"ExpectedRevision", h.testExpectedRevision},
		{"EmptyAppendChecksExpectation", h.testEmptyAppend},
		{"AssignsRevisionsAndPositions", h.testAssignsRevisionsAndPositions},
		{"RoundTripsEveryField", h.testRoundTrip},
		{"CancelledContextStoresNothing", h.testCancelledAppend},
	}
}

func (h *harness) idempotencyTests() []test {
	return []test{
		{"RetryReturnsSameResult", h.testIdempotentRetry},
		{"RetryOfPartOfAnAppend", h.testRetryOfPart},
		{"ReusedIDsElsewhere", h.testReusedIDs},
	}
}

func (h *harness) testExpectedRevision(t *testing.T) {
	s := h.store(t)
	ns := newNamespace()
	cases := []struct {
		name     string
		existing int // records in the stream before the append
		expected es.ExpectedRevision
		conflict bool
	}{
		{"any on a new stream", 0, es.Any, false},
		{"any on an existing stream", 2, es.Any, false},
		{"no stream on a new stream", 0, es.NoStream, false},
		{"no stream on an existing stream", 2, es.NoStream, true},
		{"stream exists on a new stream", 0, es.StreamExists, true},
		{"stream exists on an existing stream", 2, es.StreamExists, false},
		{"exact at the head", 2, es.Exact(1), false},
		{"exact behind the head", 2, es.Exact(0), true},
		{"exact ahead of the head", 2, es.Exact(5), true},
		{"exact on a new stream", 0, es.Exact(0), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := ns.stream(uuid.NewString())
			if tc.existing > 0 {
				mustAppend(t, s, stream, es.NoStream, newRecords(ns.typ("Seeded"), tc.existing)...)
			}
			rec := newRecord(ns.typ("Appended"), `{}`)
			res, err := s.Append(testContext(t), stream, tc.expected, []es.Record{rec})
			got := readStream(t, s, stream)

			if tc.conflict {
				if !errors.Is(err, es.ErrConflict) {
					t.Fatalf("Append = %v, want an error matching es.ErrConflict", err)
				}
				var ce *es.ConflictError
				if !errors.As(err, &ce) {
					t.Fatalf("Append error %T does not unwrap to *es.ConflictError", err)
				}
				if ce.Stream != stream || ce.Expected != tc.expected || ce.Exists != (tc.existing > 0) ||
					(tc.existing > 0 && ce.Actual != uint64(tc.existing-1)) {
					t.Errorf("ConflictError = %+v, want stream %s, expected %s, exists %v, actual %d",
						*ce, stream, tc.expected, tc.existing > 0, tc.existing-1)
				}
				if len(got) != tc.existing {
					t.Errorf("stream has %d records after a conflict, want %d", len(got), tc.existing)
				}
				return
			}
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if len(got) != tc.existing+1 {
				t.Fatalf("stream has %d records, want %d", len(got), tc.existing+1)
			}
			last := got[len(got)-1]
			if res.NextRevision != uint64(tc.existing) || res.Position != last.Position || last.ID != rec.ID {
				t.Errorf("Append = %+v, last record %s at revision %d position %d; want revision %d, that record's position",
					res, last.ID, last.Revision, last.Position, tc.existing)
			}
		})
	}
}

func (h *harness) testEmptyAppend(t *testing.T) {
	s := h.store(t)
	ns := newNamespace()
	ctx := testContext(t)

	fresh := ns.stream("fresh")
	if _, err := s.Append(ctx, fresh, es.NoStream, nil); err != nil {
		t.Errorf("empty append with no stream on a new stream: %v", err)
	}
	if _, err := s.Append(ctx, fresh, es.StreamExists, nil); !errors.Is(err, es.ErrConflict) {
		t.Errorf("empty append with stream exists on a new stream = %v, want es.ErrConflict", err)
	}
	if got := readStream(t, s, fresh); got != nil {
		t.Errorf("an empty append created the stream: %d records", len(got))
	}

	stream := ns.stream("existing")
	mustAppend(t, s, stream, es.NoStream, newRecords(ns.typ("Seeded"), 2)...)
	res, err := s.Append(ctx, stream, es.Exact(1), []es.Record{})
	if err != nil {
		t.Errorf("empty append at the head: %v", err)
	} else if res.NextRevision != 1 {
		t.Errorf("empty append at the head: NextRevision = %d, want 1", res.NextRevision)
	}
	if _, err := s.Append(ctx, stream, es.Exact(0), nil); !errors.Is(err, es.ErrConflict) {
		t.Errorf("empty append behind the head = %v, want es.ErrConflict", err)
	}
	if got := readStream(t, s, stream); len(got) != 2 {
		t.Errorf("stream has %d records after empty appends, want 2", len(got))
	}
}

func (h *harness) testAssignsRevisionsAndPositions(t *testing.T) {
	s := h.store(t)
	ns := newNamespace()
	stream := ns.stream("order-1")

	first := newRecords(ns.typ("Placed"), 3)
	// The store ignores what the caller puts in the fields it assigns.
	for i := range first {
		first[i].Stream, first[i].Revision, first[i].Position = "someone-else", 99, 99
	}
	input := slices.Clone(first)
	res1 := mustAppend(t, s, stream, es.NoStream, first...)
	for i := range first {
		if first[i].Revision != input[i].Revision || first[i].Position != input[i].Position || first[i].Stream != input[i].Stream {
			t.Fatalf("Append modified the caller's record %d", i)
		}
	}
	second := newRecords(ns.typ("Paid"), 2)
	res2 := mustAppend(t, s, stream, es.Exact(res1.NextRevision), second...)

	got := readStream(t, s, stream)
	want := append(slices.Clone(first), second...)
	if len(got) != len(want) {
		t.Fatalf("stream has %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if diff := recordDiff(storedAs(want[i], stream, uint64(i), got[i].Position), got[i]); diff != "" {
			t.Errorf("record %d: %s", i, diff)
		}
		if got[i].Revision != uint64(i) {
			t.Errorf("record %d has revision %d", i, got[i].Revision)
		}
		if got[i].Position == 0 || (i > 0 && got[i].Position <= got[i-1].Position) {
			t.Errorf("record %d has position %d after %d: positions must grow", i, got[i].Position, got[max(i-1, 0)].Position)
		}
	}
	if res1.NextRevision != 2 || res1.Position != got[2].Position {
		t.Errorf("first append = %+v, want revision 2 at position %d", res1, got[2].Position)
	}
	if res2.NextRevision != 4 || res2.Position != got[4].Position {
		t.Errorf("second append = %+v, want revision 4 at position %d", res2, got[4].Position)
	}
}

func (h *harness) testRoundTrip(t *testing.T) {
	s := h.store(t)
	ns := newNamespace()
	ctx := testContext(t)
	stream := ns.stream("booking-1")
	full := newRecord(ns.typ("Confirmed"), "")
	full.SchemaVersion = 3
	full.Time = time.Date(2031, 12, 31, 23, 59, 58, 123456000, time.FixedZone("UTC+5", 5*3600))
	full.Meta = map[string]string{
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"tracestate":  "vendor=1",
	}
	full.Data = []byte("{\"seats\":[1,2],\"note\":\"\u00e9\\u0000\"}\x00\xff")
	bare := es.Record{ID: uuid.New(), Type: ns.typ("Bare"), Time: baseTime}
	h0 := head(t, s)
	mustAppend(t, s, stream, es.NoStream, full, bare)

	want := []es.Record{full, bare}
	got := readStream(t, s, stream)
	if len(got) != 2 {
		t.Fatalf("ReadStream returned %d records, want 2", len(got))
	}
	for i := range want {
		if diff := recordDiff(storedAs(want[i], stream, uint64(i), got[i].Position), got[i]); diff != "" {
			t.Errorf("ReadStream record %d: %s", i, diff)
		}
	}
	all, err := s.ReadAll(ctx, got[0].Position-1, 2)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	sub, err := subscribeN(ctx, s, h0, ns.filter(), 2)
	if err != nil {
		t.Fatal(err)
	}
	for name, recs := range map[string][]es.Record{"ReadAll": all, "SubscribeAll": sub} {
		if len(recs) != 2 {
			t.Errorf("%s returned %d records, want 2", name, len(recs))
			continue
		}
		for i := range recs {
			if diff := recordDiff(got[i], recs[i]); diff != "" || recs[i].Revision != got[i].Revision || recs[i].Position != got[i].Position {
				t.Errorf("%s record %d differs from ReadStream's: %s (revision %d, position %d)", name, i, diff, recs[i].Revision, recs[i].Position)
			}
		}
	}
}

func (h *harness) testCancelledAppend(t *testing.T) {
	s := h.store(t)
	ns := newNamespace()
	stream := ns.stream("cancelled")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Append(ctx, stream, es.Any, newRecords(ns.typ("Lost"), 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a cancelled context = %v, want context.Canceled", err)
	}
	if got := readStream(t, s, stream); got != nil {
		t.Errorf("Append with a cancelled context stored %d records", len(got))
	}
}

func (h *harness) testIdempotentRetry(t *testing.T) {
	s := h.store(t)
	ns := newNamespace()
	cases := []struct {
		name     string
		seeded   int
		expected es.ExpectedRevision
	}{
		{"no stream", 0, es.NoStream},
		{"exact", 1, es.Exact(0)},
		{"any", 1, es.Any},
		{"stream exists", 1, es.StreamExists},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			stream := ns.stream(uuid.NewString())
			if tc.seeded > 0 {
				mustAppend(t, s, stream, es.NoStream, newRecords(ns.typ("Seeded"), tc.seeded)...)
			}
			recs := newRecords(ns.typ("Held"), 2)
			first := mustAppend(t, s, stream, tc.expected, recs...)
			if !first.Written && !h.noWritten {
				t.Fatalf("the first append = %+v: it stored the records, so it must say Written", first)
			}
			// A retry answers like the first append, except that it did
			// not write: callers skip a read on a write they know is theirs.
			first.Written = false

			retry, err := s.Append(ctx, stream, tc.expected, recs)
			if err != nil || retry != first {
				t.Fatalf("retry = %+v, %v; want %+v (not Written), nil", retry, err, first)
			}
			if n := len(readStream(t, s, stream)); n != tc.seeded+2 {
				t.Fatalf("stream has %d records after a retry, want %d", n, tc.seeded+2)
			}

			// A retry that arrives after the stream moved on is still a
			// retry, not a conflict: the handler that sent it must learn
			// that its append landed.
			mustAppend(t, s, stream, es.Exact(first.NextRevision), newRecords(ns.typ("Later"), 1)...)
			retry, err = s.Append(ctx, stream, tc.expected, recs)
			if err != nil || retry != first {
				t.Fatalf("retry after the stream moved = %+v, %v; want %+v (not Written), nil", retry, err, first)
			}
			got := readStream(t, s, stream)
			if len(got) != tc.seeded+3 {
				t.Fatalf("stream has %d records, want %d", len(got), tc.seeded+3)
			}
			if !slices.Equal(ids(got[tc.seeded:tc.seeded+2]), ids(recs)) {
				t.Errorf("the appended records are not where the first append put them")
			}
		})
	}
}

func (h *harness) testRetryOfPart(t *testing.T) {
	s := h.store(t)
	ns := newNamespace()
	ctx := testContext(t)
	stream := ns.stream("order")
	recs := newRecords(ns.typ("Line"), 3)
	mustAppend(t, s, stream, es.NoStream, recs...)
	got := readStream(t, s, stream)

	res, err := s.Append(ctx, stream, es.NoStream, recs[:2])
	if want := (es.AppendResult{NextRevision: 1, Position: got[1].Position}); err != nil || res != want {
		t.Errorf("retry of the first two = %+v, %v; want %+v", res, err, want)
	}
	res, err = s.Append(ctx, stream, es.Exact(0), recs[1:])
	if want := (es.AppendResult{NextRevision: 2, Position: got[2].Position}); err != nil || res != want {
		t.Errorf("retry of the last two = %+v, %v; want %+v", res, err, want)
	}
	if n := len(readStream(t, s, stream)); n != 3 {
		t.Errorf("stream has %d records, want 3", n)
	}
}

func (h *harness) testReusedIDs(t *testing.T) {
	s := h.store(t)
	ns := newNamespace()
	x, y := ns.stream("x"), ns.stream("y")
	recs := newRecords(ns.typ("X"), 3) // a@0 b@1 in one append, c@2 in another
	a, b, c := recs[0], recs[1], recs[2]
	mustAppend(t, s, x, es.NoStream, a, b)
	mustAppend(t, s, x, es.Exact(1), c)
	mustAppend(t, s, y, es.NoStream, newRecords(ns.typ("Y"), 1)...)
	fresh := func() es.Record { return newRecord(ns.typ("New"), "{}") }

	cases := []struct {
		name     string
		stream   string
		expected es.ExpectedRevision
		recs     []es.Record
		// needsIndex marks reuses only a store-wide id index can see.
		needsIndex bool
	}{
		{"stored in another stream", y, es.Any, []es.Record{a}, true},
		{"stored at another revision", x, es.NoStream, []es.Record{b}, false},
		{"exact pointing past it", x, es.Exact(1), []es.Record{a}, false},
		{"stored after a new one", x, es.Any, []es.Record{fresh(), a}, true},
		{"new after a stored one", x, es.NoStream, []es.Record{a, fresh()}, false},
		{"stored ones out of order", x, es.Exact(0), []es.Record{c, b}, false},
		{"stored ones not consecutive", x, es.NoStream, []es.Record{a, c}, false},
		{"twice in one append", ns.stream("z"), es.NoStream, func() []es.Record { r := fresh(); return []es.Record{r, r} }(), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needsIndex && h.noIDIndex {
				t.Skip("this store keeps no index of ids across streams (WithoutIDIndex)")
			}
			_, err := s.Append(testContext(t), tc.stream, tc.expected, tc.recs)
			switch {
			case errors.Is(err, es.ErrDuplicateEventID):
			case h.noIDIndex && tc.name != "twice in one append" && errors.Is(err, es.ErrConflict):
			default:
				t.Errorf("Append = %v, want es.ErrDuplicateEventID", err)
			}
		})
	}
	if got := readStream(t, s, x); !slices.Equal(ids(got), ids(recs)) {
		t.Errorf("stream x changed: %d records", len(got))
	}
	if got := readStream(t, s, y); len(got) != 1 {
		t.Errorf("stream y has %d records, want 1", len(got))
	}
	if got := readStream(t, s, ns.stream("z")); got != nil {
		t.Errorf("stream z was created")
	}
}
