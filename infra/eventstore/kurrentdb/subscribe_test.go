package kurrentdb

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/ticketd/ticketing/domain/es"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestServerFilter(t *testing.T) {
	excludeSystem := esdb.ExcludeSystemEventsFilter()
	cases := []struct {
		name   string
		filter es.Filter
		want   *esdb.SubscriptionFilter
	}{
		{"everything: KurrentDB's own events left out at the source", es.Filter{}, excludeSystem},
		{"stream prefixes", es.Filter{StreamPrefixes: []string{"booking-", "event-"}},
			&esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"booking-", "event-"}}},
		{"types, as prefixes", es.Filter{Types: []string{"booking.placed", "booking.expired"}},
			&esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: []string{"booking.placed", "booking.expired"}}},
		{"both: the server takes the streams", es.Filter{StreamPrefixes: []string{"booking-"}, Types: []string{"booking.placed"}},
			&esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"booking-"}}},
		{"an empty prefix matches every stream", es.Filter{StreamPrefixes: []string{"booking-", ""}, Types: []string{"booking.placed"}},
			&esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: []string{"booking.placed"}}},
		{"an empty prefix and no types", es.Filter{StreamPrefixes: []string{""}}, excludeSystem},
	}
	for _, tc := range cases {
		if got := serverFilter(tc.filter); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: serverFilter = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// The server filters types by prefix; a subscriber gets exactly its types.
func TestWanted(t *testing.T) {
	f := es.Filter{Types: []string{"booking.placed"}}
	cases := []struct {
		stream, typ string
		filter      es.Filter
		want        bool
	}{
		{"booking-1", "booking.placed", f, true},
		{"booking-1", "booking.placed.v2", f, false},
		{"booking-1", "booking.expired", es.Filter{}, true},
		{"$stats-node", "$statsCollected", es.Filter{}, false},
		{"booking-1", "$metadata", es.Filter{}, false},
		{"snapshot-event-1", snapshotType, es.Filter{}, false},
		{"snapshot-event-1", snapshotType, es.Filter{StreamPrefixes: []string{"snapshot-"}}, false},
		{"event-1", "event.created", es.Filter{StreamPrefixes: []string{"booking-"}}, false},
	}
	for _, tc := range cases {
		rec := es.Record{Stream: tc.stream, Type: tc.typ}
		if got := wanted(&rec, tc.filter); got != tc.want {
			t.Errorf("wanted(%s %s, %+v) = %v, want %v", tc.stream, tc.typ, tc.filter, got, tc.want)
		}
	}
}

// feed plays a subscription: it hands run what a pump would.
type feed chan delivery

func (f feed) event(stream, typ string, pos uint64) {
	f <- delivery{ev: &esdb.ResolvedEvent{Event: &esdb.RecordedEvent{
		EventID: uuid.New(), StreamID: stream, EventType: typ, EventNumber: pos,
		Position: esdb.Position{Commit: pos, Prepare: pos},
	}}}
}

func (f feed) drop(err error) { f <- delivery{err: err} }

// recorder is a handler that keeps the batches it gets.
type recorder struct {
	batches chan []uint64
	fail    error
}

func newRecorder() *recorder { return &recorder{batches: make(chan []uint64, 100)} }

func (r *recorder) handle(batch []es.Record) error {
	var ps []uint64
	for _, rec := range batch {
		ps = append(ps, rec.Position)
	}
	r.batches <- ps
	return r.fail
}

func (r *recorder) next(t *testing.T) []uint64 {
	t.Helper()
	select {
	case b := <-r.batches:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no batch delivered")
		return nil
	}
}

func newSubscriber(after uint64, filter es.Filter, r *recorder, window time.Duration, max int) *subscriber {
	return &subscriber{after: after, filter: filter, handle: r.handle, window: window, max: max}
}

func TestSubscriberBatchesWhatArrivesTogether(t *testing.T) {
	in, r := make(feed, 100), newRecorder()
	sub := newSubscriber(0, es.Filter{}, r, 50*time.Millisecond, 3)
	for _, p := range []uint64{10, 20, 30, 40, 50} {
		in.event("booking-1", "booking.placed", p)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sub.run(ctx, in) }()

	if b := r.next(t); !slices.Equal(b, []uint64{10, 20, 30}) {
		t.Errorf("first batch %v, want the first three (the batch size)", b)
	}
	if b := r.next(t); !slices.Equal(b, []uint64{40, 50}) {
		t.Errorf("second batch %v, want the rest", b)
	}
	// Later records come in a batch of their own, after the window.
	in.event("booking-1", "booking.placed", 60)
	if b := r.next(t); !slices.Equal(b, []uint64{60}) {
		t.Errorf("third batch %v", b)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("run = %v, want context.Canceled", err)
	}
}

func TestSubscriberSkipsWhatItMustNotDeliver(t *testing.T) {
	in, r := make(feed, 100), newRecorder()
	sub := newSubscriber(20, es.Filter{StreamPrefixes: []string{"booking-"}, Types: []string{"booking.placed"}}, r, time.Millisecond, 100)
	in.event("booking-1", "booking.placed", 20) // the position subscribed after
	in.event("$stats-node", "$statsCollected", 25)
	in.event("booking-1", "booking.placed.v2", 30) // passes the server's prefix
	in.event("snapshot-booking-1", snapshotType, 35)
	in.event("booking-2", "booking.placed", 40)
	in.event("event-1", "booking.placed", 45)
	drop := status.Error(codes.Unavailable, "server went away")
	in.drop(drop)

	err := sub.run(t.Context(), in)
	if !errors.Is(err, drop) {
		t.Fatalf("run = %v, want the drop", err)
	}
	var got []uint64
	for len(r.batches) > 0 {
		got = append(got, <-r.batches...)
	}
	if !slices.Equal(got, []uint64{40}) {
		t.Errorf("delivered %v, want only 40", got)
	}
	// Everything up to the last event seen is handled: a new subscription
	// starts after it.
	if sub.resume != 45 || sub.after != 45 {
		t.Errorf("resume %d, after %d; want 45, 45", sub.resume, sub.after)
	}
}

// A dropped subscription first hands over what arrived before the drop,
// and a resumed one skips what was handled.
func TestSubscriberResumesWithoutGapOrRepeat(t *testing.T) {
	r := newRecorder()
	sub := newSubscriber(0, es.Filter{}, r, time.Hour, 100)

	first := make(feed, 10)
	first.event("a-1", "t", 10)
	first.event("a-1", "t", 20)
	first.drop(errDropped)
	if err := sub.run(t.Context(), first); !errors.Is(err, errDropped) {
		t.Fatalf("run = %v, want the drop", err)
	}
	if b := r.next(t); !slices.Equal(b, []uint64{10, 20}) {
		t.Errorf("before the drop: %v, want 10 and 20 without waiting for the window", b)
	}

	// The new subscription starts after 20, and the server may repeat it.
	second := make(feed, 10)
	second.event("a-1", "t", 20)
	second.event("a-1", "t", 30)
	second.drop(errDropped)
	if err := sub.run(t.Context(), second); !errors.Is(err, errDropped) {
		t.Fatalf("run = %v, want the drop", err)
	}
	if b := r.next(t); !slices.Equal(b, []uint64{30}) {
		t.Errorf("after resuming: %v, want 30 only", b)
	}
}

func TestSubscriberHandlerErrorEndsIt(t *testing.T) {
	boom := errors.New("projector failed")
	r := newRecorder()
	r.fail = boom
	sub := newSubscriber(0, es.Filter{}, r, time.Millisecond, 100)
	in := make(feed, 10)
	in.event("a-1", "t", 10)
	in.event("a-1", "t", 20)
	err := sub.run(t.Context(), in)
	var herr *handlerError
	if !errors.As(err, &herr) || !errors.Is(err, boom) {
		t.Fatalf("run = %v, want the handler's error", err)
	}
	if len(r.batches) != 1 || sub.resume != 0 {
		t.Errorf("%d calls, resume %d; want 1 call and nothing handled", len(r.batches), sub.resume)
	}
}

// A cancelled subscriber stops without handing over what it collected.
func TestSubscriberCancelled(t *testing.T) {
	r := newRecorder()
	sub := newSubscriber(0, es.Filter{}, r, time.Hour, 100)
	in := make(feed, 10)
	in.event("a-1", "t", 10)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	if err := sub.run(ctx, in); !errors.Is(err, context.Canceled) {
		t.Fatalf("run = %v, want context.Canceled", err)
	}
	if len(r.batches) != 0 {
		t.Errorf("a cancelled subscriber delivered %v", <-r.batches)
	}
}

// A handler that cancels the context is not called again.
func TestSubscriberCancelledByItsHandler(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	sub := &subscriber{filter: es.Filter{}, window: time.Millisecond, max: 1, handle: func([]es.Record) error {
		calls++
		cancel()
		return nil
	}}
	in := make(feed, 10)
	in.event("a-1", "t", 10)
	in.event("a-1", "t", 20)
	if err := sub.run(ctx, in); !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("run = %v after %d calls, want context.Canceled after 1", err, calls)
	}
}
