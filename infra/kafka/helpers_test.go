package kafka_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/infra/eventstore/memory"
	"github.com/ticketd/ticketing/infra/kafka"
)

// TestMain fails the run if goroutines outlive the tests: every client,
// worker and subscription must be closed by whoever started it.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			fmt.Fprintf(os.Stderr, "goroutine leak: %d goroutines after the tests, %d before\n%s\n", n, before, buf)
			code = 1
		}
	}
	os.Exit(code)
}

// testLogger logs to t.Log, and drops what comes after the test ended
// (librdkafka's threads may log while a client closes).
func testLogger(t testing.TB, level slog.Level) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// env is one test's corner of the broker: topics under a prefix of its
// own, deleted when the test ends.
type env struct {
	t   testing.TB
	cfg kafka.Config
	log *slog.Logger
}

func newEnv(t testing.TB, partitions int) *env {
	t.Helper()
	brokers := testServers.Kafka(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	cfg := kafka.Config{
		Brokers: brokers, TopicPrefix: "t" + hex.EncodeToString(b[:]),
		Partitions: partitions, ReplicationFactor: 1, ClientID: "ticketd-test",
	}
	e := &env{t: t, cfg: cfg, log: testLogger(t, slog.LevelWarn)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, cfg, e.log, "bookings", "events", "payments"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.deleteTopics)
	return e
}

func (e *env) deleteTopics() {
	admin, err := ck.NewAdminClient(&ck.ConfigMap{"bootstrap.servers": e.cfg.Brokers})
	if err != nil {
		return
	}
	defer admin.Close()
	md, err := admin.GetMetadata(nil, true, 10_000)
	if err != nil {
		return
	}
	var mine []string
	for name := range md.Topics {
		if strings.HasPrefix(name, e.cfg.TopicPrefix+".") {
			mine = append(mine, name)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = admin.DeleteTopics(ctx, mine)
}

// producer returns a plain producer for feeding topics directly.
func (e *env) producer() *ck.Producer {
	e.t.Helper()
	p, err := ck.NewProducer(&ck.ConfigMap{"bootstrap.servers": e.cfg.Brokers, "enable.idempotence": true, "go.delivery.reports": false, "partitioner": "murmur2_random"})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(p.Close)
	return p
}

// produceAll produces msgs and waits until the broker has every one.
func (e *env) produceAll(p *ck.Producer, msgs ...*ck.Message) {
	e.t.Helper()
	delivered := make(chan ck.Event, len(msgs))
	for _, m := range msgs {
		if err := p.Produce(m, delivered); err != nil {
			e.t.Fatal(err)
		}
	}
	for range msgs {
		if m := (<-delivered).(*ck.Message); m.TopicPartition.Error != nil {
			e.t.Fatal(m.TopicPartition.Error)
		}
	}
}

// readTopic returns every message of topic, all partitions, in partition
// then offset order. Committed messages only, unless uncommitted.
func (e *env) readTopic(topic string, uncommitted bool) []*ck.Message {
	e.t.Helper()
	isolation := "read_committed"
	if uncommitted {
		isolation = "read_uncommitted"
	}
	c, err := ck.NewConsumer(&ck.ConfigMap{
		"bootstrap.servers": e.cfg.Brokers, "group.id": "reader", "enable.auto.commit": false,
		"isolation.level": isolation, "enable.partition.eof": true,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	md, err := c.GetMetadata(&topic, false, 10_000)
	if err != nil {
		e.t.Fatal(err)
	}
	var tps []ck.TopicPartition
	for _, p := range md.Topics[topic].Partitions {
		tps = append(tps, ck.TopicPartition{Topic: &topic, Partition: p.ID, Offset: ck.OffsetBeginning})
	}
	if err := c.Assign(tps); err != nil {
		e.t.Fatal(err)
	}
	byPartition := map[int32][]*ck.Message{}
	eof := map[int32]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(eof) < len(tps) {
		if time.Now().After(deadline) {
			e.t.Fatalf("reading %s: no end after 30s", topic)
		}
		switch ev := c.Poll(100).(type) {
		case *ck.Message:
			byPartition[ev.TopicPartition.Partition] = append(byPartition[ev.TopicPartition.Partition], ev)
		case ck.PartitionEOF:
			eof[ev.Partition] = true
		}
	}
	var out []*ck.Message
	for p := int32(0); p < int32(len(tps)); p++ {
		out = append(out, byPartition[p]...)
	}
	return out
}

// noted is the payload of the test records.
type noted struct {
	Seq int `json:"seq"`
}

func (noted) EventType() string { return "test.noted" }

func testRegistry() *es.Registry {
	reg := es.NewRegistry()
	reg.Register(noted{}, 1)
	return reg
}

// appendRecords appends perAggregate records to each of aggregates
// booking streams, interleaved, and returns them as stored.
func appendRecords(t testing.TB, store *memory.Store, aggregates []uuid.UUID, perAggregate int) []es.Record {
	t.Helper()
	ctx := context.Background()
	var out []es.Record
	for i := 0; i < perAggregate; i++ {
		for _, id := range aggregates {
			data, _ := json.Marshal(noted{Seq: i})
			rec := es.Record{
				ID: uuid.New(), Type: "test.noted", SchemaVersion: 1, AggregateID: id, Time: time.Now(),
				CorrelationID: id, CausationID: uuid.New(), Data: data,
				Meta: map[string]string{"traceparent": traceparent},
			}
			stream := "booking-" + id.String()
			res, err := store.Append(ctx, stream, es.Any, []es.Record{rec})
			if err != nil {
				t.Fatal(err)
			}
			rec.Stream, rec.Revision, rec.Position = stream, res.NextRevision, res.Position
			out = append(out, rec)
		}
	}
	return out
}

func newIDs(n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
	}
	return ids
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// moduleRoot is the directory of go.mod above the test's directory.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// run starts fn in a goroutine and returns a stop function that cancels
// it and returns its error. If fn ends before stop, its error is logged at
// once, so that a test waiting for its effect says why it never came.
func run(t testing.TB, fn func(ctx context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := fn(ctx)
		if ctx.Err() == nil {
			t.Logf("ended early: %v", err)
		}
		done <- err
	}()
	return func() error {
		cancel()
		return <-done
	}
}
