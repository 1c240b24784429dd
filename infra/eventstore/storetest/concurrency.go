package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/ticketd/ticketing/domain/es"
)

func (h *harness) concurrencyTests() []test {
	return []test{
		{"WritersToOneStream", h.testWritersToOneStream},
		{"GlobalOrderIsCommitOrder", h.testGlobalOrder},
	}
}

// testWritersToOneStream is the optimistic-concurrency loop of a command
// handler, sixteen times at once on one stream: each writer reloads the
// head, appends with Exact, and on a conflict reloads and tries again.
func (h *harness) testWritersToOneStream(t *testing.T) {
	const (
		writers   = 16
		perWriter = 12 // events per writer, appended two at a time
	)
	s := h.store(t)
	ns := newNamespace()
	ctx := testContext(t)
	stream := ns.stream("hot")

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for seq := 0; seq < perWriter; seq += 2 {
				recs := []es.Record{
					newRecord(ns.typ("Sold"), fmt.Sprintf("w%d-%d", w, seq)),
					newRecord(ns.typ("Sold"), fmt.Sprintf("w%d-%d", w, seq+1)),
				}
				if err := appendWithRetry(ctx, s, stream, recs); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	got := readStream(t, s, stream)
	if len(got) != writers*perWriter {
		t.Fatalf("stream has %d records, want %d", len(got), writers*perWriter)
	}
	next := make(map[int]int) // writer → next sequence number expected
	seen := make(map[uuid.UUID]bool)
	for i, r := range got {
		if r.Revision != uint64(i) {
			t.Fatalf("record %d has revision %d", i, r.Revision)
		}
		if seen[r.ID] {
			t.Fatalf("event %s stored twice", r.ID)
		}
		seen[r.ID] = true
		var w, seq int
		if _, err := fmt.Sscanf(string(r.Data), "w%d-%d", &w, &seq); err != nil {
			t.Fatalf("record %d: unexpected data %q", i, r.Data)
		}
		if seq != next[w] {
			t.Fatalf("revision %d holds writer %d's event %d, want its event %d", i, w, seq, next[w])
		}
		next[w]++
		// The two events of one append are adjacent.
		if seq%2 == 1 && string(got[i-1].Data) != fmt.Sprintf("w%d-%d", w, seq-1) {
			t.Fatalf("revision %d: writer %d's append was split", i, w)
		}
	}
}

// appendWithRetry appends recs at the end of stream, reloading the head
// after each conflict.
func appendWithRetry(ctx context.Context, s Store, stream string, recs []es.Record) error {
	for attempt := 0; attempt < 10_000; attempt++ {
		expected := es.NoStream
		last, err := s.ReadStream(ctx, stream, es.ReadOptions{Direction: es.Backward, FromEnd: true, Limit: 1})
		switch {
		case errors.Is(err, es.ErrStreamNotFound):
		case err != nil:
			return err
		case len(last) != 1:
			return fmt.Errorf("reading the head returned %d records", len(last))
		default:
			expected = es.Exact(last[0].Revision)
		}
		_, err = s.Append(ctx, stream, expected, recs)
		if err == nil {
			return nil
		}
		if !errors.Is(err, es.ErrConflict) {
			return err
		}
	}
	return errors.New("no progress after 10000 conflicts")
}

// appendRecord is one acknowledged append of testGlobalOrder and when it
// happened on the test's logical clock.
type appendRecord struct {
	stream     string
	ids        []uuid.UUID
	res        es.AppendResult
	start, ack int64
}

// testGlobalOrder runs writers on many streams while subscribers tail the
// log, one from before the first write and one that joins midway. Each
// must receive every record exactly once, in increasing position, each
// stream in revision order; and the global order must agree with real
// time: an append acknowledged before another one started has the lower
// positions.
func (h *harness) testGlobalOrder(t *testing.T) {
	const (
		writers           = 8
		streamsPerWriter  = 4
		appendsPerWriter  = 30
		maxRecordsPerCall = 3
	)
	s := h.store(t)
	ns := newNamespace()
	ctx := testContext(t)

	total := 0
	for i := range appendsPerWriter {
		total += i%maxRecordsPerCall + 1
	}
	total *= writers

	from := head(t, s)
	type result struct {
		recs []es.Record
		err  error
	}
	subscribe := func(out chan<- result) {
		recs, err := subscribeN(ctx, s, from, ns.filter(), total)
		out <- result{recs, err}
	}
	early, late := make(chan result, 1), make(chan result, 1)
	go subscribe(early)

	var clock atomic.Int64
	halfway := make(chan struct{})
	var halfwayOnce sync.Once
	reachHalfway := func() { halfwayOnce.Do(func() { close(halfway) }) }
	logs := make([][]appendRecord, writers)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			defer reachHalfway() // even if this writer fails early
			heads := make([]int64, streamsPerWriter)
			for i := range heads {
				heads[i] = -1
			}
			for i := range appendsPerWriter {
				if w == 0 && i == appendsPerWriter/2 {
					reachHalfway()
				}
				k := (i*7 + w) % streamsPerWriter
				stream := ns.stream(fmt.Sprintf("w%d-s%d", w, k))
				recs := newRecords(ns.typ("Step"), i%maxRecordsPerCall+1)
				start := clock.Load()
				res, err := s.Append(ctx, stream, es.ExpectVersion(heads[k]), recs)
				ack := clock.Add(1)
				if err != nil {
					errs <- fmt.Errorf("writer %d append %d: %w", w, i, err)
					return
				}
				heads[k] = int64(res.NextRevision)
				logs[w] = append(logs[w], appendRecord{stream: stream, ids: ids(recs), res: res, start: start, ack: ack})
			}
		})
	}
	<-halfway
	go subscribe(late)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	var appends []appendRecord
	for _, l := range logs {
		appends = append(appends, l...)
	}
	for name, ch := range map[string]chan result{"subscriber from the start": early, "subscriber joining midway": late} {
		r := <-ch
		if r.err != nil {
			t.Fatalf("%s: %v", name, r.err)
		}
		checkGlobalOrder(t, name, r.recs, appends)
	}

	// ReadAll pages through the same order.
	var paged []es.Record
	for pos := from; len(own(paged, ns)) < total; {
		page, err := s.ReadAll(ctx, pos, 100)
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		if len(page) == 0 {
			t.Fatalf("ReadAll ended after %d of %d records", len(own(paged, ns)), total)
		}
		paged = append(paged, page...)
		pos = page[len(page)-1].Position
	}
	checkGlobalOrder(t, "ReadAll", own(paged, ns)[:total], appends)
}

func checkGlobalOrder(t *testing.T, name string, got []es.Record, appends []appendRecord) {
	t.Helper()
	pos := make(map[uuid.UUID]uint64, len(got))
	next := make(map[string]uint64)
	for i, r := range got {
		if _, dup := pos[r.ID]; dup {
			t.Fatalf("%s: event %s delivered twice", name, r.ID)
		}
		pos[r.ID] = r.Position
		if i > 0 && r.Position <= got[i-1].Position {
			t.Fatalf("%s: position %d delivered after %d", name, r.Position, got[i-1].Position)
		}
		if r.Revision != next[r.Stream] {
			t.Fatalf("%s: %s revision %d delivered when %d was due", name, r.Stream, r.Revision, next[r.Stream])
		}
		next[r.Stream]++
	}
	for _, a := range appends {
		for i, id := range a.ids {
			p, ok := pos[id]
			if !ok {
				t.Fatalf("%s: acknowledged event %s of %s never delivered", name, id, a.stream)
			}
			if i == len(a.ids)-1 && p != a.res.Position {
				t.Fatalf("%s: event %s delivered at position %d, its append said %d", name, id, p, a.res.Position)
			}
		}
	}
	if len(got) != len(pos) || len(pos) != countIDs(appends) {
		t.Fatalf("%s: %d records delivered, %d appended", name, len(got), countIDs(appends))
	}
	// Real-time order: a happened before b if a was acknowledged before b
	// started, and then all of a precedes all of b.
	for _, a := range appends {
		for _, b := range appends {
			if a.ack <= b.start && a.res.Position >= pos[b.ids[0]] {
				t.Fatalf("%s: append to %s acknowledged at position %d before an append to %s started, which got position %d",
					name, a.stream, a.res.Position, b.stream, pos[b.ids[0]])
			}
		}
	}
}

func countIDs(appends []appendRecord) int {
	n := 0
	for _, a := range appends {
		n += len(a.ids)
	}
	return n
}
