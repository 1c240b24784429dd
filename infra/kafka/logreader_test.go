package kafka_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/infra/eventstore/memory"
	"github.com/ticketd/ticketing/infra/kafka"
)

// collector gathers what a subscription delivers.
type collector struct {
	mu      sync.Mutex
	recs    []es.Record
	batches int
	maxSize int
}

func (c *collector) handle(batch []es.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, batch...)
	c.batches++
	c.maxSize = max(c.maxSize, len(batch))
	return nil
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.recs)
}

func (c *collector) records() []es.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]es.Record(nil), c.recs...)
}

// sameRecords fails unless got are want's records (by id), in order.
func sameRecords(t *testing.T, what string, got, want []es.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].Position != want[i].Position {
			t.Fatalf("%s: record %d is %s at %d, want %s at %d", what, i, got[i].ID, got[i].Position, want[i].ID, want[i].Position)
		}
	}
}

func TestLogReaderCatchUpThenLiveThenResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 3)
	store := memory.New()
	defer store.Close()
	ids := newIDs(10)
	stored := appendRecords(t, store, ids, 30)
	relay, _ := kafka.NewRelay(e.cfg, "bookings", store, e.log)
	stopRelay := run(t, relay.Run)
	defer func() { _ = stopRelay() }()

	reader := kafka.NewLogReader(e.cfg, e.log)
	defer reader.Close()
	reader.BatchSize = 64
	all := &collector{}
	stopSub := run(t, func(ctx context.Context) error { return reader.SubscribeAll(ctx, 0, es.Filter{}, all.handle) })
	eventually(t, 30*time.Second, "catch-up delivers what was stored", func() bool { return all.len() >= len(stored) })
	stored = append(stored, appendRecords(t, store, ids, 10)...)
	eventually(t, 30*time.Second, "live records delivered", func() bool { return all.len() >= len(stored) })
	time.Sleep(100 * time.Millisecond) // room for a duplicate to show up
	if err := stopSub(); !errors.Is(err, context.Canceled) {
		t.Fatalf("subscription ended with %v, want context.Canceled", err)
	}
	got := all.records()
	if len(got) != len(stored) {
		t.Fatalf("subscriber got %d records, want %d", len(got), len(stored))
	}
	for i := range got {
		if got[i].ID != stored[i].ID {
			t.Fatalf("record %d is %s, want %s: not the store's order", i, got[i].ID, stored[i].ID)
		}
		if got[i].Meta["traceparent"] != traceparent {
			t.Fatalf("record %d lost its trace context: %v", i, got[i].Meta)
		}
		if i > 0 && got[i].Position <= got[i-1].Position {
			t.Fatalf("positions %d then %d", got[i-1].Position, got[i].Position)
		}
	}
	if all.maxSize > reader.BatchSize {
		t.Errorf("a batch of %d records, want at most %d", all.maxSize, reader.BatchSize)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Run("resume after a position", func(t *testing.T) {
		from := got[249].Position
		rest := &collector{}
		stop := run(t, func(ctx context.Context) error { return reader.SubscribeAll(ctx, from, es.Filter{}, rest.handle) })
		eventually(t, 30*time.Second, "resumed subscription delivers the rest", func() bool { return rest.len() >= len(got)-250 })
		time.Sleep(100 * time.Millisecond)
		_ = stop()
		sameRecords(t, "after "+strconv.FormatUint(from, 10), rest.records(), got[250:])
	})
	t.Run("filter", func(t *testing.T) {
		one := &collector{}
		filter := es.Filter{StreamPrefixes: []string{"booking-" + ids[3].String()}}
		stop := run(t, func(ctx context.Context) error { return reader.SubscribeAll(ctx, 0, filter, one.handle) })
		var want []es.Record
		for _, r := range got {
			if filter.Match(&r) {
				want = append(want, r)
			}
		}
		eventually(t, 30*time.Second, "filtered records delivered", func() bool { return one.len() >= len(want) })
		time.Sleep(100 * time.Millisecond)
		_ = stop()
		sameRecords(t, "filtered", one.records(), want)
	})
	t.Run("read all in pages", func(t *testing.T) {
		page, err := reader.ReadAll(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		sameRecords(t, "first page", page, got[:100])
		rest, err := reader.ReadAll(ctx, page[99].Position, 0)
		if err != nil {
			t.Fatal(err)
		}
		sameRecords(t, "the rest", rest, got[100:])
	})
	t.Run("a wedged subscription gives up", func(t *testing.T) {
		reader.StallTimeout = time.Second
		defer func() { reader.StallTimeout = 30 * time.Second }()
		kafka.WedgeNextSubscription(reader)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := reader.SubscribeAll(ctx, 0, es.Filter{}, func([]es.Record) error { return nil })
		if !errors.Is(err, kafka.ErrStalled) {
			t.Fatalf("wedged subscription ended with %v, want ErrStalled (the projector then runs again on a new consumer)", err)
		}
		// An idle subscription at the end of the log is not stalled.
		idle, cancelIdle := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		defer cancelIdle()
		if err := reader.SubscribeAll(idle, got[len(got)-1].Position, es.Filter{}, func([]es.Record) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("idle subscription ended with %v, want it to run until its context ends", err)
		}
	})
	t.Run("head and past it", func(t *testing.T) {
		head, err := reader.HeadPosition(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := got[len(got)-1].Position; head != want {
			t.Fatalf("HeadPosition %d, want the last record's %d", head, want)
		}
		// A transaction aborted at the end of the log must change nothing
		// a reader sees, including where the head is.
		abortedTransaction(t, e, 5)
		if again, err := reader.HeadPosition(ctx); err != nil || again != head {
			t.Fatalf("after an aborted transaction HeadPosition = %d, %v; want %d", again, err, head)
		}
		past, err := reader.ReadAll(ctx, head, 10)
		if err != nil || len(past) != 0 {
			t.Fatalf("ReadAll after the head = %d records, %v; want none", len(past), err)
		}
	})
}

// abortedTransaction writes n records to the firehose in a transaction
// and aborts it, after making sure the broker has them.
func abortedTransaction(t *testing.T, e *env, n int) {
	t.Helper()
	p, err := ck.NewProducer(&ck.ConfigMap{"bootstrap.servers": e.cfg.Brokers, "transactional.id": "test-abort-" + uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	go func() {
		for range p.Events() {
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.InitTransactions(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	topic := e.cfg.LogTopic()
	for range n {
		rec := es.Record{ID: uuid.New(), Stream: "booking-" + uuid.NewString(), Type: "test.noted", Data: []byte(`{}`)}
		m := kafka.EncodeRecord(&rec, "bookings", topic)
		m.TopicPartition.Partition = 0
		if err := p.Produce(m, nil); err != nil {
			t.Fatal(err)
		}
	}
	p.Flush(10_000)
	if err := p.AbortTransaction(ctx); err != nil {
		t.Fatal(err)
	}
}
