package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/infra/eventstore/memory"
	"github.com/ticketd/ticketing/infra/kafka"
)

// appendForeign appends n records to streams another service owns: the
// bookings relay must leave them alone.
func appendForeign(t testing.TB, store *memory.Store, n int) {
	t.Helper()
	for range n {
		id := uuid.New()
		rec := es.Record{ID: uuid.New(), Type: "test.noted", AggregateID: id, Time: time.Now(), Data: []byte(`{"seq":0}`)}
		if _, err := store.Append(context.Background(), "event-"+id.String(), es.Any, []es.Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
}

// lastCheckpoint is the latest committed checkpoint of relay name.
func (e *env) lastCheckpoint(name string) uint64 {
	e.t.Helper()
	var pos uint64
	for _, m := range e.readTopic(e.cfg.CheckpointTopic(), false) {
		if string(m.Key) == name {
			var cp struct{ Position uint64 }
			if err := json.Unmarshal(m.Value, &cp); err != nil {
				e.t.Fatal(err)
			}
			pos = cp.Position
		}
	}
	return pos
}

// checkRelayed asserts that the firehose holds exactly want, in store
// order, and that the service topic holds each of want exactly once, every
// aggregate in one partition and in revision order.
func (e *env) checkRelayed(service string, want []es.Record) {
	e.t.Helper()
	log := e.readTopic(e.cfg.LogTopic(), false)
	if len(log) != len(want) {
		e.t.Errorf("firehose holds %d records, want %d: relaying was not exactly once", len(log), len(want))
	}
	for i := range min(len(log), len(want)) {
		rec, err := kafka.DecodeRecord(log[i])
		if err != nil {
			e.t.Fatal(err)
		}
		if rec.ID != want[i].ID || rec.Position != want[i].Position {
			e.t.Fatalf("firehose record %d is %s (store position %d), want %s (%d): store order lost", i, rec.ID, rec.Position, want[i].ID, want[i].Position)
		}
	}

	svc := e.readTopic(e.cfg.ServiceTopic(service), false)
	seen := map[uuid.UUID]int{}
	type place struct {
		partition int32
		revision  uint64
	}
	last := map[uuid.UUID]place{}
	for _, m := range svc {
		rec, err := kafka.DecodeRecord(m)
		if err != nil {
			e.t.Fatal(err)
		}
		seen[rec.ID]++
		if p, ok := last[rec.AggregateID]; ok {
			if p.partition != m.TopicPartition.Partition {
				e.t.Errorf("aggregate %s in partitions %d and %d", rec.AggregateID, p.partition, m.TopicPartition.Partition)
			}
			if rec.Revision <= p.revision {
				e.t.Errorf("aggregate %s: revision %d after %d", rec.AggregateID, rec.Revision, p.revision)
			}
		}
		last[rec.AggregateID] = place{m.TopicPartition.Partition, rec.Revision}
	}
	for _, r := range want {
		if seen[r.ID] != 1 {
			e.t.Errorf("record %s is %d times in %s, want once", r.ID, seen[r.ID], e.cfg.ServiceTopic(service))
		}
	}
	if len(svc) != len(want) {
		e.t.Errorf("%s holds %d records, want %d", e.cfg.ServiceTopic(service), len(svc), len(want))
	}
}

func TestRelayExactlyOnceAcrossCrash(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 3)
	store := memory.New()
	defer store.Close()
	ids := newIDs(40)
	recs := appendRecords(t, store, ids, 25)
	appendForeign(t, store, 100)
	recs = append(recs, appendRecords(t, store, ids, 25)...) // 2000 bookings records

	crash := errors.New("simulated crash before commit")
	first, err := kafka.NewRelay(e.cfg, "bookings", store, e.log)
	if err != nil {
		t.Fatal(err)
	}
	first.MaxBatch = 300
	var atCrash uint64
	kafka.BeforeCommit(first, func(txn int) error {
		if txn == 3 {
			atCrash = first.Committed()
			return crash
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := first.Run(ctx); !errors.Is(err, crash) {
		t.Fatalf("first relay ended with %v, want the crash", err)
	}
	if atCrash == 0 || atCrash >= recs[len(recs)-1].Position {
		t.Fatalf("crashed with checkpoint %d: want it mid-way", atCrash)
	}
	if cp := e.lastCheckpoint("bookings"); cp != atCrash {
		t.Fatalf("checkpoint topic says %d after the crash, want the last commit's %d", cp, atCrash)
	}

	second, _ := kafka.NewRelay(e.cfg, "bookings", store, e.log)
	start := time.Now()
	stop := run(t, second.Run)
	eventually(t, 30*time.Second, "second relay catches up", func() bool { return second.Committed() == recs[len(recs)-1].Position })
	caughtUp := time.Since(start)
	live := appendRecords(t, store, ids, 3)
	eventually(t, 30*time.Second, "live records relayed", func() bool { return second.Committed() == live[len(live)-1].Position })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("relay stopped with %v, want context.Canceled", err)
	}
	t.Logf("resumed from %d; relayed %d records in %v after the restart", atCrash, len(recs), caughtUp)

	all := append(recs, live...)
	e.checkRelayed("bookings", all)
	if cp := e.lastCheckpoint("bookings"); cp != all[len(all)-1].Position {
		t.Errorf("final checkpoint %d, want %d", cp, all[len(all)-1].Position)
	}
}

func TestRelayFencesZombie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 3)
	store := memory.New()
	defer store.Close()
	recs := appendRecords(t, store, newIDs(10), 100)

	zombie, _ := kafka.NewRelay(e.cfg, "bookings", store, e.log)
	zombie.MaxBatch = 200
	inTxn, release := make(chan struct{}), make(chan struct{})
	kafka.BeforeCommit(zombie, func(txn int) error {
		if txn == 2 {
			close(inTxn)
			<-release // paused (a GC pause, a partition) with its transaction open
		}
		return nil
	})
	zombieDone := make(chan error, 1)
	go func() { zombieDone <- zombie.Run(context.Background()) }()
	select {
	case <-inTxn:
	case err := <-zombieDone:
		t.Fatalf("relay ended before its second transaction: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("relay did not reach its second transaction")
	}

	successor, _ := kafka.NewRelay(e.cfg, "bookings", store, e.log)
	stop := run(t, successor.Run)
	eventually(t, 30*time.Second, "successor relays everything", func() bool { return successor.Committed() == recs[len(recs)-1].Position })
	close(release)
	select {
	case err := <-zombieDone:
		var kerr ck.Error
		if err == nil || !errors.As(err, &kerr) || !kerr.IsFatal() {
			t.Errorf("zombie ended with %v, want a fatal error (fenced)", err)
		}
		t.Logf("zombie: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the zombie's commit neither failed nor returned")
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	e.checkRelayed("bookings", recs)
}

// A producer that ignored a partition's new leader may never deliver to
// that partition again (librdkafka issue 5430): the relay relays the rest
// on a new producer, and every record exactly once.
func TestRelayMovesOffAProducerThatIgnoredALeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 3)
	store := memory.New()
	defer store.Close()
	recs := appendRecords(t, store, newIDs(10), 30)

	relay, _ := kafka.NewRelay(e.cfg, "bookings", store, e.log)
	relay.MaxBatch = 100
	kafka.BeforeCommit(relay, func(txn int) error {
		if txn == 2 {
			kafka.DropRelayLeader(relay)
		}
		return nil
	})
	stop := run(t, relay.Run)
	eventually(t, 30*time.Second, "everything relayed", func() bool { return relay.Committed() == recs[len(recs)-1].Position })
	if n := kafka.RelayProducers(relay); n != 2 {
		t.Fatalf("the relay made %d producers, want 2 (a new one after the dropped leader)", n)
	}

	// An idle relay, with no transaction open, moves at once.
	kafka.DropRelayLeader(relay)
	eventually(t, 30*time.Second, "an idle relay moves to a new producer", func() bool { return kafka.RelayProducers(relay) == 3 })
	recs = append(recs, appendRecords(t, store, newIDs(5), 4)...)
	eventually(t, 30*time.Second, "the records after the move relayed", func() bool { return relay.Committed() == recs[len(recs)-1].Position })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	e.checkRelayed("bookings", recs)
}

func TestRelayAbortedTransactionIsInvisible(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 3)
	store := memory.New()
	defer store.Close()
	recs := appendRecords(t, store, newIDs(20), 50)

	relay, _ := kafka.NewRelay(e.cfg, "bookings", store, e.log)
	relay.MaxBatch = 250
	var aborted atomic.Int32
	kafka.BeforeCommit(relay, func(txn int) error {
		if txn == 2 || txn == 4 {
			aborted.Add(1)
			// Let the records reach the broker first, so that the abort
			// leaves them in the log for readers to skip.
			time.Sleep(300 * time.Millisecond)
			return kafka.ErrTestAbort
		}
		return nil
	})
	reader := kafka.NewLogReader(e.cfg, e.log)
	defer reader.Close()
	var got []es.Record
	var n atomic.Int64
	stopSub := run(t, func(ctx context.Context) error {
		return reader.SubscribeAll(ctx, 0, es.Filter{}, func(batch []es.Record) error {
			got = append(got, batch...)
			n.Add(int64(len(batch)))
			return nil
		})
	})
	stopRelay := run(t, relay.Run)
	eventually(t, 30*time.Second, "everything relayed", func() bool { return relay.Committed() == recs[len(recs)-1].Position })
	eventually(t, 30*time.Second, "subscriber has everything", func() bool { return n.Load() >= int64(len(recs)) })
	time.Sleep(200 * time.Millisecond) // room for a duplicate to show up
	if err := stopRelay(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if err := stopSub(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if aborted.Load() != 2 {
		t.Fatalf("%d transactions aborted, want 2", aborted.Load())
	}
	if n := kafka.RelayProducers(relay); n != 3 {
		t.Fatalf("the relay made %d producers for 2 aborted transactions, want 3 (a new one after each abort)", n)
	}
	physical := len(e.readTopic(e.cfg.LogTopic(), true))
	if physical <= len(recs) {
		t.Fatalf("the log holds %d records uncommitted-read for %d relayed: the aborted records never reached it, so this test proves nothing", physical, len(recs))
	}
	if len(got) != len(recs) {
		t.Fatalf("subscriber got %d records, want %d (the log holds %d including aborted ones)", len(got), len(recs), physical)
	}
	for i := range got {
		if got[i].ID != recs[i].ID {
			t.Fatalf("record %d is %s, want %s", i, got[i].ID, recs[i].ID)
		}
		if i > 0 && got[i].Position <= got[i-1].Position {
			t.Fatalf("positions %d then %d: not increasing", got[i-1].Position, got[i].Position)
		}
	}
	t.Logf("%d records relayed; the log holds %d messages including aborted ones; none of those was delivered", len(recs), physical)
	e.checkRelayed("bookings", recs)
}

// BenchmarkRelayThroughput relays a store of 20,000 records into Kafka
// (both topics and the checkpoint, in transactions of MaxBatch records) and
// reports records per second, start-up included (producer init, fencing,
// checkpoint read) and after the first commit: run it with -benchtime=1x
// -count=3 for a median.
func BenchmarkRelayThroughput(b *testing.B) {
	const n = 20_000
	var elapsed, startup, steady time.Duration
	var steadyRecords int
	for range b.N {
		b.StopTimer()
		e := newEnv(b, 6)
		store := memory.New()
		recs := appendRecords(b, store, newIDs(500), n/500)
		relay, _ := kafka.NewRelay(e.cfg, "bookings", store, e.log)
		last := recs[len(recs)-1].Position
		b.StartTimer()

		start := time.Now()
		stop := run(b, relay.Run)
		var first time.Duration
		var atFirst uint64
		for relay.Committed() != last {
			if c := relay.Committed(); first == 0 && c > 0 {
				first, atFirst = time.Since(start), c
			}
			time.Sleep(time.Millisecond)
		}
		took := time.Since(start)
		elapsed += took
		startup += first
		steady += took - first
		steadyRecords += int(last - atFirst)

		b.StopTimer()
		if err := stop(); !errors.Is(err, context.Canceled) {
			b.Fatal(err)
		}
		store.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(steadyRecords)/steady.Seconds(), "records/s-after-first-commit")
	b.ReportMetric(float64(startup.Milliseconds())/float64(b.N), "ms-to-first-commit")
	b.ReportMetric(0, "ns/op")
}
