package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/ticketd/ticketing/domain/es"
)

func (h *harness) subscribeTests() []test {
	return []test{
		{"CatchUpLargeBacklog", h.testCatchUpBacklog},
		{"ResumeFromCheckpoint", h.testResume},
		{"Filters", h.testFilters},
		{"SlowSubscriber", h.testSlowSubscriber},
		{"HandlerErrorEndsIt", h.testHandlerError},
		{"CancelEndsIt", h.testCancel},
	}
}

// testCatchUpBacklog makes a subscriber catch up on more records than any
// adapter reads in one batch.
func (h *harness) testCatchUpBacklog(t *testing.T) {
	const appends, perAppend = 15, 100
	s := h.store(t)
	ns := newNamespace()
	from := head(t, s)
	var want []es.Record
	for i := range appends {
		recs := newRecords(ns.typ("Bulk"), perAppend)
		mustAppend(t, s, ns.stream("bulk"), es.ExpectVersion(int64(i*perAppend)-1), recs...)
		want = append(want, recs...)
	}
	got, err := subscribeN(testContext(t), s, from, ns.filter(), len(want))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("caught up on %d records, not the %d appended in order", len(got), len(want))
	}
	for i, r := range got {
		if r.Revision != uint64(i) {
			t.Fatalf("record %d has revision %d", i, r.Revision)
		}
	}
}

// testResume stops a subscriber in the middle of a batch and resumes from
// the checkpoint of the last record it handled, as a projector does after
// a restart: it gets exactly the rest, stored and live.
func (h *harness) testResume(t *testing.T) {
	const k = 4
	s := h.store(t)
	ns := newNamespace()
	ctx := testContext(t)
	from := head(t, s)
	var want []es.Record
	for i := range 10 {
		r := newRecord(ns.typ("Tick"), "{}")
		mustAppend(t, s, ns.stream([]string{"a", "b"}[i%2]), es.Any, r)
		want = append(want, r)
	}

	var handled []es.Record
	var checkpoint uint64
	err := s.SubscribeAll(ctx, from, ns.filter(), func(batch []es.Record) error {
		for _, r := range batch {
			handled = append(handled, r)
			checkpoint = r.Position
			if len(handled) == k {
				return errStop
			}
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("SubscribeAll = %v, want the handler's error", err)
	}
	if !slices.Equal(ids(handled), ids(want[:k])) {
		t.Fatalf("first subscription handled %d records, not the first %d", len(handled), k)
	}

	for range 3 {
		r := newRecord(ns.typ("Tick"), "{}")
		mustAppend(t, s, ns.stream("c"), es.Any, r)
		want = append(want, r)
	}
	rest, err := subscribeN(ctx, s, checkpoint, ns.filter(), len(want)-k)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(rest), ids(want[k:])) {
		t.Fatalf("resumed subscription got %d records, not exactly the %d after the checkpoint", len(rest), len(want)-k)
	}

	// A subscription from the last checkpoint waits for what comes next.
	done := make(chan error, 1)
	next := newRecord(ns.typ("Tick"), "{}")
	go func() {
		got, err := subscribeN(ctx, s, rest[len(rest)-1].Position, ns.filter(), 1)
		if err == nil && (len(got) != 1 || got[0].ID != next.ID) {
			err = errors.New("live subscription delivered something other than the next record")
		}
		done <- err
	}()
	mustAppend(t, s, ns.stream("c"), es.Any, next)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func (h *harness) testFilters(t *testing.T) {
	s := h.store(t)
	ns := newNamespace()
	from := head(t, s)
	added, removed, placed, end := ns.typ("Added"), ns.typ("Removed"), ns.typ("Placed"), ns.typ("End")
	cart1, cart2, order1 := ns.stream("cart-1"), ns.stream("cart-2"), ns.stream("order-1")

	type stored struct {
		stream string
		rec    es.Record
	}
	var log []stored
	add := func(stream, typ string) {
		r := newRecord(typ, "{}")
		mustAppend(t, s, stream, es.Any, r)
		log = append(log, stored{stream, r})
	}
	add(cart1, added)
	add(order1, added)
	add(cart2, removed)
	add(order1, placed)
	add(cart1, removed)
	// The marker passes every filter below. Since delivery is in global
	// order, receiving it means everything before it has been delivered,
	// so the test knows when to stop without waiting for nothing.
	add(ns.stream("zzz-end"), end)
	marker := log[len(log)-1].rec.ID

	cases := []struct {
		name   string
		filter es.Filter
		want   func(stream, typ string) bool
	}{
		{"stream prefix", es.Filter{StreamPrefixes: []string{ns.stream("cart-"), ns.stream("zzz-")}},
			func(stream, typ string) bool { return stream != order1 }},
		{"type", es.Filter{Types: []string{added, end}},
			func(stream, typ string) bool { return typ == added || typ == end }},
		{"types", es.Filter{Types: []string{placed, removed, end}},
			func(stream, typ string) bool { return typ != added }},
		{"prefix and type", es.Filter{StreamPrefixes: []string{ns.stream("order-"), ns.stream("zzz-")}, Types: []string{added, end}},
			func(stream, typ string) bool { return (stream == order1 && typ == added) || typ == end }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []es.Record
			err := s.SubscribeAll(testContext(t), from, tc.filter, func(batch []es.Record) error {
				got = append(got, batch...)
				if batch[len(batch)-1].ID == marker {
					return errStop
				}
				return nil
			})
			if !errors.Is(err, errStop) {
				t.Fatalf("SubscribeAll = %v after %d records", err, len(got))
			}
			var want []uuid.UUID
			for _, l := range log {
				if tc.want(l.stream, l.rec.Type) {
					want = append(want, l.rec.ID)
				}
			}
			if !slices.Equal(ids(got), want) {
				t.Errorf("delivered %d records, want %d", len(got), len(want))
				for _, r := range got {
					t.Logf("  got %s %s", r.Stream, r.Type)
				}
			}
		})
	}
}

// testSlowSubscriber holds a subscriber's handler until writers have
// appended far more than one batch; it must then get all of it, in order.
func (h *harness) testSlowSubscriber(t *testing.T) {
	const writers, perWriter = 4, 150
	s := h.store(t)
	ns := newNamespace()
	ctx := testContext(t)
	from := head(t, s)

	first := newRecord(ns.typ("First"), "{}")
	mustAppend(t, s, ns.stream("first"), es.NoStream, first)
	writersDone := make(chan struct{})
	result := make(chan error, 1)
	var got []es.Record
	go func() {
		err := s.SubscribeAll(ctx, from, ns.filter(), func(batch []es.Record) error {
			if len(got) == 0 {
				<-writersDone
			}
			got = append(got, batch...)
			if len(got) >= 1+writers*perWriter {
				return errStop
			}
			return nil
		})
		result <- err
	}()

	var wg sync.WaitGroup
	want := make([][]uuid.UUID, writers)
	for w := range writers {
		wg.Go(func() {
			stream := ns.stream(uuid.NewString())
			for i := range perWriter {
				r := newRecord(ns.typ("Fast"), "{}")
				if _, err := s.Append(ctx, stream, es.ExpectVersion(int64(i)-1), []es.Record{r}); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				want[w] = append(want[w], r.ID)
			}
		})
	}
	wg.Wait()
	close(writersDone)
	if err := <-result; !errors.Is(err, errStop) {
		t.Fatalf("SubscribeAll = %v after %d records", err, len(got))
	}
	if len(got) != 1+writers*perWriter || got[0].ID != first.ID {
		t.Fatalf("slow subscriber got %d records, want %d starting with the first", len(got), 1+writers*perWriter)
	}
	byStream := make(map[string][]uuid.UUID)
	for i, r := range got[1:] {
		if r.Position <= got[i].Position {
			t.Fatalf("position %d delivered after %d", r.Position, got[i].Position)
		}
		byStream[r.Stream] = append(byStream[r.Stream], r.ID)
	}
	for w := range writers {
		found := false
		for _, delivered := range byStream {
			found = found || slices.Equal(delivered, want[w])
		}
		if !found {
			t.Errorf("writer %d's records were not delivered exactly once, in order", w)
		}
	}
}

func (h *harness) testHandlerError(t *testing.T) {
	s := h.store(t)
	ns := newNamespace()
	from := head(t, s)
	mustAppend(t, s, ns.stream("a"), es.NoStream, newRecords(ns.typ("T"), 2)...)
	boom := errors.New("projector failed")
	calls := 0
	err := s.SubscribeAll(testContext(t), from, ns.filter(), func([]es.Record) error {
		calls++
		return boom
	})
	if !errors.Is(err, boom) || calls != 1 {
		t.Errorf("SubscribeAll = %v after %d calls, want the handler's error after 1", err, calls)
	}
}

func (h *harness) testCancel(t *testing.T) {
	s := h.store(t)
	ns := newNamespace()

	t.Run("before start", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := s.SubscribeAll(ctx, 0, ns.filter(), func([]es.Record) error { return nil })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("SubscribeAll with a cancelled context = %v, want context.Canceled", err)
		}
	})
	t.Run("from the handler", func(t *testing.T) {
		from := head(t, s)
		mustAppend(t, s, ns.stream("a"), es.Any, newRecords(ns.typ("T"), 1)...)
		ctx, cancel := context.WithCancel(testContext(t))
		calls := 0
		err := s.SubscribeAll(ctx, from, ns.filter(), func([]es.Record) error {
			calls++
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) || calls != 1 {
			t.Errorf("SubscribeAll = %v after %d calls, want context.Canceled after 1", err, calls)
		}
	})
	t.Run("while live", func(t *testing.T) {
		from := head(t, s)
		ctx, cancel := context.WithCancel(testContext(t))
		delivered := make(chan struct{})
		result := make(chan error, 1)
		go func() {
			result <- s.SubscribeAll(ctx, from, ns.filter(), func([]es.Record) error {
				close(delivered)
				return nil
			})
		}()
		mustAppend(t, s, ns.stream("b"), es.Any, newRecords(ns.typ("T"), 1)...)
		select {
		case <-delivered: // now the subscription waits for the next record
		case err := <-result:
			t.Fatalf("SubscribeAll = %v before delivering", err)
		}
		cancel()
		if err := <-result; !errors.Is(err, context.Canceled) {
			t.Errorf("SubscribeAll = %v, want context.Canceled", err)
		}
	})
}
