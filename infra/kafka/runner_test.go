package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/infra/kafka"
)

// reactor is an inproc.Reactor made of a function.
type reactor struct {
	name  string
	react func(ctx context.Context, rec *es.Record) error
}

func (r reactor) Name() string      { return r.name }
func (r reactor) Filter() es.Filter { return es.Filter{Types: []string{"test.noted"}} }
func (r reactor) React(ctx context.Context, rec *es.Record, p es.Payload) error {
	if _, ok := p.(noted); !ok {
		return fmt.Errorf("payload %T, want noted", p)
	}
	return r.react(ctx, rec)
}

// observer counts what the runner reports.
type observer struct {
	handled, failed, dead atomic.Int64
}

func (o *observer) Handled(_, _ string, _ time.Duration, err error) {
	if err != nil {
		o.failed.Add(1)
		return
	}
	o.handled.Add(1)
}
func (o *observer) DeadLettered(string, string) { o.dead.Add(1) }
func (o *observer) Checkpointed(string, uint64) {}

// records returns perAggregate records for each aggregate, interleaved
// round by round, with revisions 0, 1, ... per aggregate.
func records(aggregates []uuid.UUID, perAggregate int) []es.Record {
	var out []es.Record
	for i := range perAggregate {
		for _, id := range aggregates {
			data, _ := json.Marshal(noted{Seq: i})
			out = append(out, es.Record{
				ID: uuid.New(), Stream: "booking-" + id.String(), Type: "test.noted", SchemaVersion: 1,
				AggregateID: id, Revision: uint64(i), Position: uint64(len(out) + 1), Time: time.Now(),
				CorrelationID: id, Data: data,
			})
		}
	}
	return out
}

// publish produces recs to service's topic, in order.
func (e *env) publish(service string, recs []es.Record) {
	e.t.Helper()
	msgs := make([]*ck.Message, len(recs))
	for i := range recs {
		msgs[i] = kafka.EncodeRecord(&recs[i], service, e.cfg.ServiceTopic(service))
	}
	e.produceAll(e.producer(), msgs...)
}

// committed returns the offsets group committed on each partition of topic.
func (e *env) committed(group, topic string, partitions int) []int64 {
	e.t.Helper()
	c, err := ck.NewConsumer(&ck.ConfigMap{"bootstrap.servers": e.cfg.Brokers, "group.id": group})
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	var tps []ck.TopicPartition
	for p := range partitions {
		tps = append(tps, ck.TopicPartition{Topic: &topic, Partition: int32(p)})
	}
	got, err := c.Committed(tps, 10_000)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]int64, len(got))
	for i, tp := range got {
		out[i] = int64(tp.Offset)
	}
	return out
}

// handledSet records which record ids were handled successfully.
type handledSet struct {
	mu  sync.Mutex
	ids map[uuid.UUID]int
	seq []es.Record
}

func newHandledSet() *handledSet { return &handledSet{ids: map[uuid.UUID]int{}} }

func (h *handledSet) add(rec *es.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ids[rec.ID]++
	h.seq = append(h.seq, *rec)
}

func (h *handledSet) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seq)
}

func (h *handledSet) has(id uuid.UUID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ids[id] > 0
}

// reactor is a reactor named name that records into h what it handles.
func (h *handledSet) reactor(name string) reactor {
	return reactor{name: name, react: func(_ context.Context, rec *es.Record) error {
		h.add(rec)
		return nil
	}}
}

// requireSequence fails the test unless h handled exactly want, once
// each, in want's order.
func (h *handledSet) requireSequence(t *testing.T, want []es.Record) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.seq) != len(want) {
		t.Fatalf("%d records handled, want %d", len(h.seq), len(want))
	}
	for i, r := range h.seq {
		if r.ID != want[i].ID {
			t.Fatalf("handled #%d is %s, want %s: order lost", i, r.ID, want[i].ID)
		}
	}
}

// settle waits until h stops growing for a while.
func settle(t *testing.T, h *handledSet, quiet time.Duration) {
	t.Helper()
	last, since := -1, time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if n := h.len(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= quiet {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("handling never settled")
}

func TestRunnerKeepsKeyOrderWithConcurrencyInOnePartition(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1) // one partition: any concurrency comes from the keyed workers
	recs := records(newIDs(20), 15)
	e.publish("bookings", recs)

	var inflight, peak atomic.Int64
	var mu sync.Mutex
	next := map[uuid.UUID]uint64{}
	var violations []string
	handled := newHandledSet()
	r := reactor{name: "ordered", react: func(ctx context.Context, rec *es.Record) error {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		mu.Lock()
		if rec.Revision != next[rec.AggregateID] {
			violations = append(violations, fmt.Sprintf("%s: revision %d, want %d", rec.AggregateID, rec.Revision, next[rec.AggregateID]))
		}
		next[rec.AggregateID] = rec.Revision + 1
		mu.Unlock()
		time.Sleep(3 * time.Millisecond)
		handled.add(rec)
		return nil
	}}
	runner := kafka.NewRunner(e.cfg, testRegistry(), e.log, nil)
	runner.Workers = 16
	stop := run(t, func(ctx context.Context) error { return runner.Run(ctx, r, "bookings") })
	eventually(t, 30*time.Second, "every record handled", func() bool { return handled.len() >= len(recs) })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("runner stopped with %v, want context.Canceled", err)
	}
	if len(violations) > 0 {
		t.Fatalf("key order broken %d times, first: %s", len(violations), violations[0])
	}
	if handled.len() != len(recs) {
		t.Errorf("%d handled, want %d", handled.len(), len(recs))
	}
	if peak.Load() < 2 {
		t.Errorf("at most %d record handled at once from one partition, want concurrency across keys", peak.Load())
	}
	if got := e.committed(kafka.GroupID(e.cfg, "ordered"), e.cfg.ServiceTopic("bookings"), 1); got[0] != int64(len(recs)) {
		t.Errorf("committed offset %d, want %d: everything was handled", got[0], len(recs))
	}
	t.Logf("%d records from one partition, up to %d at once, key order kept", len(recs), peak.Load())
}

func TestRunnerCommitsOnlyPastFinishedMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	ids := newIDs(10)
	recs := records(ids, 10)
	e.publish("bookings", recs)
	stuck := recs[3*len(ids)+5] // ids[5] at revision 3, offset 35
	group, topic := kafka.GroupID(e.cfg, "careful"), e.cfg.ServiceTopic("bookings")

	runner := kafka.NewRunner(e.cfg, testRegistry(), e.log, nil)
	runner.DrainTimeout = 300 * time.Millisecond
	first := newHandledSet()
	stop := run(t, func(ctx context.Context) error {
		return runner.Run(ctx, reactor{name: "careful", react: func(ctx context.Context, rec *es.Record) error {
			if rec.ID == stuck.ID {
				<-ctx.Done() // a handler that hangs until the runner gives up on it
				return ctx.Err()
			}
			first.add(rec)
			return nil
		}}, "bookings")
	})
	eventually(t, 30*time.Second, "the records before the stuck one handled", func() bool { return first.len() >= 35 })
	settle(t, first, 300*time.Millisecond)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if first.has(stuck.ID) {
		t.Fatal("the stuck record was handled")
	}
	if got := e.committed(group, topic, 1)[0]; got != 35 {
		t.Fatalf("committed offset %d after the stop, want 35: the stuck record's own offset", got)
	}

	// A restart of the subscriber in the same process: the records done
	// after the stuck one are redelivered (the commit could not pass it)
	// but skipped, so handling resumes with exactly the unfinished ones.
	second := newHandledSet()
	stop = run(t, func(ctx context.Context) error {
		return runner.Run(ctx, reactor{name: "careful", react: func(ctx context.Context, rec *es.Record) error {
			second.add(rec)
			return nil
		}}, "bookings")
	})
	eventually(t, 30*time.Second, "every record handled once", func() bool { return first.len()+second.len() >= len(recs) })
	settle(t, second, 300*time.Millisecond)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	for _, r := range recs {
		n := first.ids[r.ID] + second.ids[r.ID]
		if n != 1 {
			t.Errorf("record at offset %d handled %d times across the restart, want once", r.Position-1, n)
		}
	}
	var prev uint64
	for i, r := range second.seq {
		if r.AggregateID == stuck.AggregateID {
			if i > 0 && r.Revision != prev+1 && prev != 0 {
				t.Errorf("stuck aggregate resumed out of order: %d after %d", r.Revision, prev)
			}
			prev = r.Revision
		}
	}
	if got := e.committed(group, topic, 1)[0]; got != int64(len(recs)) {
		t.Fatalf("committed offset %d at the end, want %d", got, len(recs))
	}
	t.Logf("first run handled %d and stopped at offset 35; the restart handled the %d unfinished", first.len(), second.len())
}

func TestRunnerDeadLettersPoisonAndMovesOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	id := uuid.New()
	recs := records([]uuid.UUID{id}, 30) // one key: strictly one after the other
	poison := recs[10]
	msgs := make([]*ck.Message, 0, len(recs)+1)
	topic := e.cfg.ServiceTopic("bookings")
	for i := range recs {
		msgs = append(msgs, kafka.EncodeRecord(&recs[i], "bookings", topic))
		if i == 20 {
			// Not a record at all: dead-lettered without an attempt.
			msgs = append(msgs, &ck.Message{
				TopicPartition: ck.TopicPartition{Topic: &topic, Partition: ck.PartitionAny},
				Key:            []byte(id.String()), Value: []byte("garbage"),
				Headers: []ck.Header{{Key: "ce_type", Value: []byte("test.noted")}},
			})
		}
	}
	e.produceAll(e.producer(), msgs...)

	var attempts atomic.Int64
	handled := newHandledSet()
	obs := &observer{}
	runner := kafka.NewRunner(e.cfg, testRegistry(), e.log, obs)
	runner.MaxAttempts, runner.Backoff = 3, 5*time.Millisecond
	stop := run(t, func(ctx context.Context) error {
		return runner.Run(ctx, reactor{name: "picky", react: func(ctx context.Context, rec *es.Record) error {
			if rec.ID == poison.ID {
				attempts.Add(1)
				return errors.New("cannot handle this one")
			}
			handled.add(rec)
			return nil
		}}, "bookings")
	})
	eventually(t, 30*time.Second, "the records after the poison handled", func() bool { return handled.len() >= len(recs)-1 })
	eventually(t, 10*time.Second, "both dead letters written", func() bool { return obs.dead.Load() >= 2 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if attempts.Load() != 3 {
		t.Errorf("poison tried %d times, want MaxAttempts=3", attempts.Load())
	}
	for i, r := range handled.seq {
		want := uint64(i)
		if i >= 10 {
			want++
		}
		if r.Revision != want {
			t.Fatalf("handled #%d is revision %d, want %d", i, r.Revision, want)
		}
	}
	dlq := e.readTopic(kafka.DeadLetterTopic(topic), false)
	if len(dlq) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dlq))
	}
	for _, c := range []struct {
		m        *ck.Message
		attempts string
		offset   string
		errText  string
	}{
		{dlq[0], "3", "10", "cannot handle this one"},
		{dlq[1], "0", "21", "malformed"},
	} {
		for k, want := range map[string]string{
			"dlq_attempts": c.attempts, "dlq_offset": c.offset, "dlq_partition": "0",
			"dlq_topic": topic, "dlq_subscriber": "picky",
		} {
			if got, _ := header(c.m, k); got != want {
				t.Errorf("dead letter at %s: %s = %q, want %q", c.offset, k, got, want)
			}
		}
		if got, _ := header(c.m, "dlq_error"); !strings.Contains(got, c.errText) {
			t.Errorf("dead letter at %s: dlq_error %q, want it to say %q", c.offset, got, c.errText)
		}
	}
	if got, _ := header(dlq[0], "ce_id"); got != poison.ID.String() {
		t.Errorf("dead letter carries ce_id %q, want the original's %s", got, poison.ID)
	}
	if got := e.committed(kafka.GroupID(e.cfg, "picky"), topic, 1)[0]; got != int64(len(msgs)) {
		t.Errorf("committed offset %d, want %d: dead letters count as done", got, len(msgs))
	}
}

func TestRunnerReplacesStalledConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	recs := records(newIDs(10), 5)
	e.publish("bookings", recs)

	handled := newHandledSet()
	runner := kafka.NewRunner(e.cfg, testRegistry(), e.log, nil)
	runner.StallTimeout = 1500 * time.Millisecond
	kafka.WedgeNextConsumer(runner)
	start := time.Now()
	stop := run(t, func(ctx context.Context) error {
		return runner.Run(ctx, handled.reactor("wedged"), "bookings")
	})
	eventually(t, 30*time.Second, "a new consumer handles what the wedged one did not", func() bool { return handled.len() >= len(recs) })
	took := time.Since(start)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if took < runner.StallTimeout {
		t.Errorf("handled after %v, before the stall timeout: the consumer was not wedged", took)
	}
	t.Logf("wedged consumer replaced; everything handled after %v", took.Round(time.Millisecond))
}

// A consumer that waits for a busy worker is not stalled: while a slow
// handler holds the only worker, the poll loop waits to hand it more, and
// that wait, longer than the stall timeout, must not count as receiving
// nothing. The same consumer handles everything.
func TestRunnerBusyWorkerIsNotAStall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	recs := records(newIDs(1), 200) // one aggregate: one queue, in order
	e.publish("bookings", recs)

	handled := newHandledSet()
	runner := kafka.NewRunner(e.cfg, testRegistry(), e.log, nil)
	runner.Workers = 1
	runner.StallTimeout = time.Second
	slow := 4 * runner.StallTimeout
	stop := run(t, func(ctx context.Context) error {
		return runner.Run(ctx, reactor{name: "busy", react: func(ctx context.Context, rec *es.Record) error {
			if rec.ID == recs[0].ID {
				time.Sleep(slow)
			}
			handled.add(rec)
			return nil
		}}, "bookings")
	})
	eventually(t, 30*time.Second, "everything handled", func() bool { return handled.len() >= len(recs) })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if n := kafka.RunnerConsumers(runner); n != 1 {
		t.Errorf("the runner made %d consumers, want 1: waiting %v for a busy worker was taken for a stall of %v", n, slow, runner.StallTimeout)
	}
	handled.requireSequence(t, recs)
}

// A consumer that cannot tell whether it lags, as after a broker restart
// while the group coordinator loads, is given another StallTimeout to
// find out: replacing it then would make the group wait for the old
// member's session. One that still cannot tell after that is replaced.
func TestRunnerGivesAConsumerTimeToTellItsLag(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	runner := kafka.NewRunner(e.cfg, testRegistry(), e.log, nil)
	runner.StallTimeout = 1500 * time.Millisecond
	var (
		probes    atomic.Int64
		failing   atomic.Bool // every probe fails from now on
		firstFail atomic.Int64
	)
	errLoading := ck.NewError(ck.ErrCoordinatorLoadInProgress, "Broker: Coordinator load in progress", false)
	kafka.ProbeLag(runner, func() (bool, error) {
		if failing.Load() {
			firstFail.CompareAndSwap(0, time.Now().UnixNano())
			return false, errLoading
		}
		if probes.Add(1) <= 2 { // two in a row, 500 ms apart: less than StallTimeout
			return false, errLoading
		}
		return false, nil
	})
	stop := run(t, func(ctx context.Context) error {
		return runner.Run(ctx, reactor{name: "idle", react: func(context.Context, *es.Record) error { return nil }}, "bookings")
	})
	defer func() {
		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	}()
	eventually(t, 30*time.Second, "the watchdog probes past the failures", func() bool { return probes.Load() >= 6 })
	if n := kafka.RunnerConsumers(runner); n != 1 {
		t.Fatalf("the runner made %d consumers, want 1: a lag unknown for less than the stall timeout replaced the consumer", n)
	}

	failing.Store(true)
	eventually(t, 30*time.Second, "a consumer that cannot tell its lag for good is replaced", func() bool { return kafka.RunnerConsumers(runner) == 2 })
	if waited := time.Since(time.Unix(0, firstFail.Load())); waited < runner.StallTimeout {
		t.Errorf("replaced %v after its lag became unknown, before the stall timeout %v", waited, runner.StallTimeout)
	}
}

// An offset commit that gets no answer (librdkafka can leave one waiting
// for good on a coordinator connection wedged by a broker restart) must
// not hold the consumer: it blocks the polling goroutine, and with it the
// watchdog. The runner leaves that consumer behind, unclosed while its
// commit waits, and a new one handles what follows, each record once.
func TestRunnerLeavesBehindAConsumerWhoseCommitHangs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	ids := newIDs(5)
	first := records(ids, 2)
	e.publish("bookings", first)

	handled := newHandledSet()
	runner := kafka.NewRunner(e.cfg, testRegistry(), e.log, nil)
	runner.CommitTimeout = time.Second
	// The consumer left behind still heartbeats here (only the test's
	// commit hangs, not its connection): it lets go of the partition once
	// it has not polled for this long.
	runner.MaxPollInterval = 10 * time.Second
	release := make(chan struct{})
	var (
		hung    atomic.Bool
		commits atomic.Int64
	)
	kafka.CommitWith(runner, func(c *ck.Consumer, offsets []ck.TopicPartition) ([]ck.TopicPartition, error) {
		commits.Add(1)
		if hung.CompareAndSwap(false, true) {
			<-release // as a commit stuck on a wedged coordinator connection
			return nil, ck.NewError(ck.ErrTimedOut, "released by the test", false)
		}
		return c.CommitOffsets(offsets)
	})
	stop := run(t, func(ctx context.Context) error {
		return runner.Run(ctx, handled.reactor("hung-commit"), "bookings")
	})
	defer close(release)
	eventually(t, 30*time.Second, "the first records handled", func() bool { return handled.len() >= len(first) })
	eventually(t, 30*time.Second, "a new consumer after the unanswered commit", func() bool { return kafka.RunnerConsumers(runner) == 2 })

	second := records(newIDs(5), 2)
	e.publish("bookings", second)
	all := append(append([]es.Record(nil), first...), second...)
	eventually(t, 30*time.Second, "the records after it handled by the new consumer", func() bool { return handled.len() >= len(all) })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	for _, r := range all {
		if n := handled.ids[r.ID]; n != 1 {
			t.Errorf("record at offset %d handled %d times, want once", r.Position-1, n)
		}
	}
	if commits.Load() < 2 {
		t.Errorf("%d commits, want the new consumer to commit too", commits.Load())
	}
}

// compensatingReactor is a reactor that is also an inproc.Compensator.
type compensatingReactor struct {
	reactor
	giveUp func(ctx context.Context, rec *es.Record, cause error) error
}

func (r compensatingReactor) GiveUp(ctx context.Context, rec *es.Record, p es.Payload, cause error) error {
	if _, ok := p.(noted); !ok {
		return fmt.Errorf("payload %T, want noted", p)
	}
	return r.giveUp(ctx, rec, cause)
}

func TestRunnerCompensatesBeforeDeadLettering(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	id := uuid.New()
	recs := records([]uuid.UUID{id}, 5)
	poison := recs[2]
	topic := e.cfg.ServiceTopic("bookings")
	msgs := make([]*ck.Message, 0, len(recs))
	for i := range recs {
		msgs = append(msgs, kafka.EncodeRecord(&recs[i], "bookings", topic))
	}
	e.produceAll(e.producer(), msgs...)

	type compensation struct {
		rec       uuid.UUID
		cause     string
		deadSoFar int64
	}
	var (
		mu   sync.Mutex
		comp []compensation
	)
	handled := newHandledSet()
	obs := &observer{}
	runner := kafka.NewRunner(e.cfg, testRegistry(), e.log, obs)
	runner.MaxAttempts, runner.Backoff = 2, 5*time.Millisecond
	r := compensatingReactor{
		reactor: reactor{name: "compensating", react: func(ctx context.Context, rec *es.Record) error {
			if rec.ID == poison.ID {
				return errors.New("seat map unavailable")
			}
			handled.add(rec)
			return nil
		}},
		giveUp: func(ctx context.Context, rec *es.Record, cause error) error {
			mu.Lock()
			defer mu.Unlock()
			comp = append(comp, compensation{rec: rec.ID, cause: cause.Error(), deadSoFar: obs.dead.Load()})
			return nil
		},
	}
	stop := run(t, func(ctx context.Context) error { return runner.Run(ctx, r, "bookings") })
	eventually(t, 30*time.Second, "the other records handled", func() bool { return handled.len() >= len(recs)-1 })
	eventually(t, 10*time.Second, "the dead letter written", func() bool { return obs.dead.Load() >= 1 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(comp) != 1 {
		t.Fatalf("%d compensations, want 1 (for the record given up on)", len(comp))
	}
	if c := comp[0]; c.rec != poison.ID || c.cause != "seat map unavailable" || c.deadSoFar != 0 {
		t.Errorf("compensation %+v, want record %s, the handler's error, and before its dead letter", c, poison.ID)
	}
	if dlq := e.readTopic(kafka.DeadLetterTopic(topic), false); len(dlq) != 1 {
		t.Errorf("%d dead letters, want 1: a compensated record is still parked for an operator", len(dlq))
	}
}

// A handler that fails because the commands it sends are not delivered
// (the broker is away) is not failing for the message's sake: it is tried
// until the bus is back, however many attempts that takes, and neither
// compensated nor dead-lettered.
func TestRunnerDoesNotGiveUpWhileCommandsAreNotDelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	id := uuid.New()
	recs := records([]uuid.UUID{id}, 3)
	topic := e.cfg.ServiceTopic("bookings")
	msgs := make([]*ck.Message, 0, len(recs))
	for i := range recs {
		msgs = append(msgs, kafka.EncodeRecord(&recs[i], "bookings", topic))
	}
	e.produceAll(e.producer(), msgs...)

	const outage = 6 // attempts, twice MaxAttempts
	var attempts, compensations atomic.Int64
	handled := newHandledSet()
	obs := &observer{}
	runner := kafka.NewRunner(e.cfg, testRegistry(), e.log, obs)
	runner.MaxAttempts, runner.Backoff, runner.MaxBackoff = 3, 5*time.Millisecond, 20*time.Millisecond
	r := compensatingReactor{
		reactor: reactor{name: "sending", react: func(ctx context.Context, rec *es.Record) error {
			if rec.ID == recs[1].ID && attempts.Add(1) <= outage {
				return fmt.Errorf("saga: %w", fmt.Errorf("kafka: send hold-seats: %w: %w", kafka.ErrNotDelivered, ck.NewError(ck.ErrMsgTimedOut, "Local: Message timed out", false)))
			}
			handled.add(rec)
			return nil
		}},
		giveUp: func(context.Context, *es.Record, error) error {
			compensations.Add(1)
			return nil
		},
	}
	stop := run(t, func(ctx context.Context) error { return runner.Run(ctx, r, "bookings") })
	eventually(t, 30*time.Second, "every record handled", func() bool { return handled.len() >= len(recs) })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if got := attempts.Load(); got != outage+1 {
		t.Errorf("the record was tried %d times, want %d (through the outage, then once more)", got, outage+1)
	}
	if compensations.Load() != 0 || obs.dead.Load() != 0 {
		t.Errorf("%d compensations and %d dead letters, want none: the bus failed, not the message", compensations.Load(), obs.dead.Load())
	}
	handled.requireSequence(t, recs)
}

// A static member fenced by another consumer with its group.instance.id
// (after a broker restart, librdkafka does this to itself when it
// rejoins) is left in a fatal state that no Poll reports and no Close
// ends. The runner notices at its next offset commit, leaves the consumer
// behind, and goes on with a new one.
func TestRunnerReplacesAFencedStaticMember(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	cfg := e.cfg
	cfg.InstanceID = "member-1"
	const name = "static"
	topic := cfg.ServiceTopic("bookings")
	first := records(newIDs(5), 4)
	e.publish("bookings", first)

	handled := newHandledSet()
	runner := kafka.NewRunner(cfg, testRegistry(), e.log, nil)
	stop := run(t, func(ctx context.Context) error {
		return runner.Run(ctx, handled.reactor(name), "bookings")
	})
	eventually(t, 30*time.Second, "the first records handled", func() bool { return handled.len() >= len(first) })

	// An impostor joins as the same static member: the broker fences the
	// runner's consumer. It leaves without a LeaveGroup (static members
	// do not), as a dead process would.
	impostor, err := ck.NewConsumer(&ck.ConfigMap{
		"bootstrap.servers": cfg.Brokers, "group.id": kafka.GroupID(cfg, name),
		"group.instance.id": cfg.InstanceID + "-" + name, "enable.auto.commit": false,
		"session.timeout.ms": 10_000,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := impostor.SubscribeTopics([]string{topic}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the impostor is assigned the partition", func() bool {
		impostor.Poll(100)
		a, err := impostor.Assignment()
		return err == nil && len(a) > 0
	})
	if err := impostor.Close(); err != nil {
		t.Logf("closing the impostor: %v", err)
	}

	// The fenced consumer finds out when it next commits: new records give
	// it something to commit, and a new consumer must handle them.
	second := records(newIDs(5), 4)
	e.publish("bookings", second)
	eventually(t, 60*time.Second, "the records after the fence handled", func() bool {
		return handled.len() >= len(first)+len(second)
	})
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("the runner ended with %v; want it to have gone on until stopped", err)
	}
	seen := map[uuid.UUID]bool{}
	for _, r := range handled.seq {
		seen[r.ID] = true
	}
	for _, r := range append(first, second...) {
		if !seen[r.ID] {
			t.Fatalf("record %s never handled", r.ID)
		}
	}
}
