package kafka

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/infra/bus/inproc"
)

// Runner feeds subscribers from Kafka consumer groups: the process
// managers (the same inproc.Reactor the in-process bus runs) from the
// service topics, and the command handlers of a commands.Router from the
// command topics.
//
// Each subscriber is one consumer group, "ticketd-<name>", reading
// committed messages only. Messages are handed to a fixed set of workers
// by key, all messages of one key to the same worker, so one key's
// messages are handled in order while different keys run in parallel,
// even within one partition: a hot partition still gets concurrency.
//
// A consumer that receives nothing for StallTimeout while a partition
// assigned to it has committed messages is replaced by a new one.
//
// Delivery is at least once. Offsets are committed (every CommitEvery,
// and when partitions are revoked or the runner stops) only past messages
// that are done, per partition, so a crash redelivers what was in flight
// and never skips it. A message that keeps failing is retried MaxAttempts
// times with backoff (attempts that failed only because Kafka did not take
// a command the message causes do not count: see ErrNotDelivered), then
// copied to "<topic>.dlq" and counted as done, so
// that one bad message never blocks its partition; a message that cannot
// be decoded goes there at once. Messages already handled successfully by
// this process (by message id) are skipped when redelivered.
type Runner struct {
	cfg      Config
	reg      *es.Registry
	logger   *slog.Logger
	observer inproc.Observer

	// Workers is how many messages a subscriber handles at once.
	Workers int
	// MaxAttempts is how often a failing message is tried before it is
	// dead-lettered.
	MaxAttempts int
	// Backoff is the first pause between attempts; it doubles up to
	// MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// CommitEvery is how often offsets are committed while messages flow.
	CommitEvery time.Duration
	// DrainTimeout is how long a rebalance or a stop waits for the
	// handlers in flight before cancelling their context (they are then
	// redelivered, to this consumer or another).
	DrainTimeout time.Duration
	// StallTimeout is how long the consumer may receive nothing while a
	// partition assigned to it has committed messages it has not
	// consumed, before the runner replaces it with a new one (0 disables
	// the watchdog). librdkafka 2.x can lose a partition's leader for good
	// when a KRaft broker restarts, and a new client is the cure. A
	// consumer that cannot tell whether it lags (its coordinator is
	// loading after a broker restart, say) gets another StallTimeout to
	// find out before it is replaced.
	StallTimeout time.Duration
	// CommitTimeout bounds how long an offset commit may go unanswered.
	// A commit blocks the polling goroutine, and librdkafka can leave one
	// waiting for good on a coordinator connection wedged by a broker
	// restart; such a consumer is left behind and a new one takes over.
	CommitTimeout time.Duration
	// MaxPollInterval is librdkafka's max.poll.interval.ms: a consumer
	// that does not poll for this long leaves its group, so that its
	// partitions go to the others. It is what lets go of the partitions
	// of a consumer left behind with a commit that never returns, should
	// that consumer still reach the coordinator. At least the session
	// timeout (10 s).
	MaxPollInterval time.Duration
	// SeenIDs bounds how many handled message ids each subscriber
	// remembers to skip redeliveries; 0 turns the dedupe off.
	SeenIDs int
	// Permanent, when set, tells errors that no retry can fix (a handler
	// refusing the command for good, say): such a message is dead-lettered
	// after its first attempt.
	Permanent func(error) bool

	mu   sync.Mutex
	seen map[string]*seenSet

	// pauseOnAssign, set by tests, makes the next session's consumer
	// pause the partitions it is assigned: a consumer that receives
	// nothing, as a wedged one would.
	pauseOnAssign atomic.Bool
	// consumers counts the consumers sessions have made, for tests.
	consumers atomic.Int64
	// probeLag, set by tests, answers in place of a session's lagging.
	probeLag func() (bool, error)
	// commitOffsets, set by tests, commits in place of the consumer.
	commitOffsets func(c *ck.Consumer, offsets []ck.TopicPartition) ([]ck.TopicPartition, error)
}

// NewRunner returns a runner on cfg's cluster. reg decodes the records fed
// to reactors; logger and observer may be nil.
func NewRunner(cfg Config, reg *es.Registry, logger *slog.Logger, observer inproc.Observer) *Runner {
	return &Runner{
		cfg: cfg, reg: reg, logger: orDiscard(logger), observer: observer,
		Workers: 64, MaxAttempts: 10, Backoff: 20 * time.Millisecond, MaxBackoff: 5 * time.Second,
		CommitEvery: 100 * time.Millisecond, DrainTimeout: 10 * time.Second, StallTimeout: 15 * time.Second, CommitTimeout: 15 * time.Second, MaxPollInterval: 30 * time.Second,
		SeenIDs: 100_000,
		seen:    map[string]*seenSet{},
	}
}

// seenBy returns the dedupe set of a subscriber. It outlives a Run, so that
// a subscriber restarted in the same process skips what it already did.
func (rn *Runner) seenBy(name string) *seenSet {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	s := rn.seen[name]
	if s == nil {
		s = newSeenSet(rn.SeenIDs)
		rn.seen[name] = s
	}
	return s
}

// Run feeds reactor r from the record topics of services until ctx is
// done; it returns ctx.Err() then, having committed the offsets of what
// was finished. Records that r's filter rejects are skipped; each record is
// keyed by r's Keyer, or else by its aggregate id.
func (rn *Runner) Run(ctx context.Context, r inproc.Reactor, services ...string) error {
	if len(services) == 0 {
		return fmt.Errorf("kafka: run %s: no service topics to read", r.Name())
	}
	topics := make([]string, len(services))
	for i, svc := range services {
		topics[i] = rn.cfg.ServiceTopic(svc)
	}
	filter := r.Filter()
	keyer, _ := r.(inproc.Keyer)
	comp, _ := r.(inproc.Compensator)
	route := func(m *ck.Message) routed {
		rec, err := DecodeRecord(m)
		if err != nil {
			return routed{key: messageKey(m), kind: headerValue(m, HeaderType), poison: err}
		}
		if !filter.Match(&rec) {
			return routed{id: rec.ID.String()}
		}
		p, err := rn.reg.Decode(&rec)
		if err != nil {
			// Undecodable is a bug, not bad luck: park it where an
			// operator will see it rather than wedge its key.
			return routed{key: messageKey(m), id: rec.ID.String(), kind: rec.Type, poison: fmt.Errorf("%w: %w", ErrMalformed, err)}
		}
		key := rec.AggregateID
		if keyer != nil {
			key = keyer.Key(&rec, p)
		}
		rt := routed{key: key[:], id: rec.ID.String(), kind: rec.Type, work: func(ctx context.Context) error {
			return r.React(ctx, &rec, p)
		}}
		if comp != nil {
			rt.giveUp = func(ctx context.Context, cause error) error {
				return comp.GiveUp(ctx, &rec, p, cause)
			}
		}
		return rt
	}
	return rn.consume(ctx, r.Name(), topics, route)
}

// RunCommands dispatches the commands of service's command topic through
// router until ctx is done. Its consumer group is
// "ticketd-<service>-commands". Commands are keyed by correlation id: one
// booking's commands are handled in order.
func (rn *Runner) RunCommands(ctx context.Context, router *commands.Router, service string) error {
	route := func(m *ck.Message) routed {
		msg, cmd, err := DecodeCommand(m)
		if err != nil {
			return routed{key: messageKey(m), kind: headerValue(m, HeaderType), poison: err}
		}
		if !router.Handles(cmd.CommandType()) {
			return routed{key: msg.CorrelationID[:], id: msg.ID.String(), kind: cmd.CommandType(),
				poison: fmt.Errorf("kafka: %s on the %s command topic: no handler in this process", cmd.CommandType(), service)}
		}
		return routed{key: msg.CorrelationID[:], id: msg.ID.String(), kind: cmd.CommandType(), work: func(ctx context.Context) error {
			return router.Send(ctx, msg, cmd)
		}}
	}
	return rn.consume(ctx, service+"-commands", []string{rn.cfg.CommandTopic(service)}, route)
}

// routed is what a message asks for.
type routed struct {
	key  []byte // messages of one key are handled in order
	id   string // ce_id, for the dedupe
	kind string // the message's type, for logs and metrics
	// work handles the message; nil means there is nothing to do.
	work func(ctx context.Context) error
	// poison, when set, is why the message cannot be handled at all: it
	// is dead-lettered without an attempt.
	poison error
	// giveUp, when set, undoes the business effect of a message that is
	// given up on after its attempts (a reactor's inproc.Compensator),
	// before it is dead-lettered.
	giveUp func(ctx context.Context, cause error) error
}

// session is one Run: a consumer, its workers, and the generation of the
// current assignment. Everything but the workers runs on the goroutine
// that polls (the rebalance callback runs inside Poll and Close).
type session struct {
	rn     *Runner
	name   string
	c      *ck.Consumer
	logger *slog.Logger
	seen   *seenSet
	route  func(*ck.Message) routed
	queues []chan job
	seed   maphash.Seed
	gen    *generation
	// handlers' contexts derive from base, which outlives ctx so that a
	// stop lets handlers in flight finish their attempt.
	base context.Context

	dlqMu sync.Mutex
	dlq   *ck.Producer

	// lost, once set (by commit, on the polling goroutine), is why the
	// consumer can go on no more: poll returns it and the consumer is
	// replaced.
	lost error
	// stuck, when not nil, is an offset commit that got no answer within
	// CommitTimeout; it is closed when that commit returns, and the
	// consumer must not be closed before (see commitBounded).
	stuck <-chan struct{}
}

// generation is the life of one assignment of partitions. A rebalance (or
// the stop) ends it: nothing more is started or retried, the handlers in
// flight finish, the offsets of what is done are committed.
type generation struct {
	ctx     context.Context // the handlers'; cancelled when draining times out
	cancel  context.CancelFunc
	stop    chan struct{}
	stopped bool // stop is closed; only the polling goroutine reads it
	active  sync.WaitGroup
	tracker *tracker
}

func (s *session) newGeneration() *generation {
	ctx, cancel := context.WithCancel(s.base)
	return &generation{ctx: ctx, cancel: cancel, stop: make(chan struct{}), tracker: newTracker()}
}

func (g *generation) isStopped() bool {
	select {
	case <-g.stop:
		return true
	default:
		return false
	}
}

type job struct {
	m   *ck.Message
	rt  routed
	gen *generation
	p   partition
	off int64
}

// ErrStalled is matched by the error of a consumer that receives nothing
// although committed messages wait for it. The runner replaces such a
// consumer itself; a LogReader subscription returns it, and running the
// projector again starts a new consumer.
var ErrStalled = errors.New("kafka: consumer stalled")

// consume runs sessions until ctx is done or one fails for another reason
// than a stall, after which a fresh consumer takes over (it resumes from
// the committed offsets, and the dedupe set skips what was done since).
func (rn *Runner) consume(ctx context.Context, name string, topics []string, route func(*ck.Message) routed) error {
	for {
		err := rn.session(ctx, name, topics, route)
		if ctx.Err() != nil {
			return err
		}
		switch {
		case errors.Is(err, ErrStalled):
			rn.logger.Warn("consumer stalled: replacing it", "subscriber", name, "stall_timeout", rn.StallTimeout)
		case errors.Is(err, errConsumerLost):
			rn.logger.Warn("consumer lost for good: replacing it", "subscriber", name, "err", err)
			// Not at once: two processes given one static id would
			// otherwise fence each other in a tight loop.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(lostCloseTimeout):
			}
		default:
			return err
		}
	}
}

// errConsumerLost is matched by the error of a session whose consumer
// librdkafka has put in a fatal state (an error event that says so, or an
// offset commit refused for good): it is replaced by a new one.
var errConsumerLost = errors.New("kafka: consumer lost")

// lagProbeTimeoutMs bounds each broker request of the watchdog's lag
// check.
const lagProbeTimeoutMs = 2000

// lostCloseTimeout is how long closing a lost consumer may take before it
// is left behind.
const lostCloseTimeout = 2 * time.Second

// session runs one consumer until ctx is done or it fails.
func (rn *Runner) session(ctx context.Context, name string, topics []string, route func(*ck.Message) routed) error {
	logger := rn.logger.With("subscriber", name)
	conf := ck.ConfigMap{
		"group.id":                 rn.cfg.scoped(name),
		"enable.auto.commit":       false,
		"enable.auto.offset.store": false,
		"isolation.level":          "read_committed",
		"auto.offset.reset":        "earliest",
		// Records arrive in transactions; a fetch waiting for more data
		// is not always woken when a commit makes data readable, so keep
		// its wait short for the sake of latency.
		"fetch.wait.max.ms": 100,
		// A member that died without leaving is noticed within this.
		"session.timeout.ms":    10_000,
		"heartbeat.interval.ms": 3_000,
	}
	if rn.MaxPollInterval > 0 {
		conf["max.poll.interval.ms"] = int(max(rn.MaxPollInterval, 10*time.Second).Milliseconds())
	}
	if rn.cfg.InstanceID != "" {
		// Static membership: a restarted process rejoins as itself and gets
		// its partitions back without a rebalance or a session timeout.
		conf["group.instance.id"] = rn.cfg.InstanceID + "-" + name
	}
	c, err := newConsumer(rn.cfg, conf, logger)
	if err != nil {
		return fmt.Errorf("kafka: %s: consumer: %w", name, err)
	}
	rn.consumers.Add(1)
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	s := &session{rn: rn, name: name, c: c, logger: logger, seen: rn.seenBy(name), route: route, seed: maphash.MakeSeed(), base: base}
	s.gen = s.newGeneration()
	s.queues = make([]chan job, max(1, rn.Workers))
	var workers sync.WaitGroup
	for i := range s.queues {
		s.queues[i] = make(chan job, 64)
		workers.Add(1)
		go func(q chan job) {
			defer workers.Done()
			for j := range q {
				s.handle(j)
				j.gen.active.Done()
			}
		}(s.queues[i])
	}
	defer func() {
		for _, q := range s.queues {
			close(q)
		}
		workers.Wait()
		s.dlqMu.Lock()
		if s.dlq != nil {
			s.dlq.Close()
		}
		s.dlqMu.Unlock()
	}()

	if err := c.SubscribeTopics(topics, s.rebalance); err != nil {
		_ = c.Close()
		return fmt.Errorf("kafka: %s: subscribe to %v: %w", name, topics, err)
	}
	logger.Info("consumer running", "group", rn.cfg.scoped(name), "topics", topics)
	runErr := s.poll(ctx)
	s.drain(false)
	// Close leaves the group; it calls the rebalance callback, which finds
	// nothing left to drain. Closing a consumer librdkafka holds in a
	// fatal state never returned before confluent-kafka-go v2.15.1 (it
	// waited for a close protocol that never started); should it block
	// again, it is given up on after lostCloseTimeout (left to idle until
	// the process ends) so that a new one can take over: it has nothing
	// left to commit.
	closed := make(chan error, 1)
	if stuck := s.stuck; stuck != nil {
		// Closing a consumer while a commit of its own still waits would
		// destroy what that commit waits on: close it once the commit
		// returns, if it ever does.
		logger.Warn("a consumer with an unanswered commit is left behind")
		go func() { <-stuck; _ = c.Close() }()
		closed <- nil
	} else {
		go func() { closed <- c.Close() }()
	}
	var wait <-chan time.Time
	if errors.Is(runErr, errConsumerLost) {
		wait = time.After(lostCloseTimeout)
	}
	select {
	case err := <-closed:
		if err != nil {
			logger.Warn("closing consumer", "err", err)
		}
	case <-wait:
		logger.Warn("a lost consumer did not close: left behind", "timeout", lostCloseTimeout)
	}
	if runErr != nil {
		return fmt.Errorf("kafka: %s: %w", name, runErr)
	}
	return ctx.Err()
}

// poll consumes until ctx is done (nil), the consumer fails for good, or
// the watchdog finds it stalled (ErrStalled).
func (s *session) poll(ctx context.Context) error {
	tick := time.NewTicker(s.rn.CommitEvery)
	defer tick.Stop()
	var watch <-chan time.Time
	if s.rn.StallTimeout > 0 {
		w := time.NewTicker(s.rn.StallTimeout / 3)
		defer w.Stop()
		watch = w.C
	}
	lastMessage := time.Now()
	var lagUnknownSince time.Time
	for {
		if s.lost != nil {
			return s.lost
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			s.commit()
		case <-watch:
			if time.Since(lastMessage) < s.rn.StallTimeout {
				lagUnknownSince = time.Time{}
				continue
			}
			lag, err := s.lagging()
			switch {
			case lag:
				return ErrStalled
			case err == nil:
				lagUnknownSince = time.Time{}
			case lagUnknownSince.IsZero():
				// Right after a broker restart the coordinator answers
				// "not coordinator" or "loading" for a while, and the
				// consumer is about to rejoin; replacing it then would
				// make the group wait for the old member's session.
				lagUnknownSince = time.Now()
				s.logger.Debug("consumer cannot tell its lag yet", "err", err)
			case time.Since(lagUnknownSince) >= s.rn.StallTimeout:
				// A consumer that still cannot tell its lag (its
				// coordinator lost for good) is as stuck as one that
				// lags; replacing it only reconnects.
				s.logger.Warn("consumer cannot tell its lag: replacing it", "err", err)
				return ErrStalled
			}
		default:
		}
		switch e := s.c.Poll(100).(type) {
		case *ck.Message:
			lastMessage = time.Now()
			if err := e.TopicPartition.Error; err != nil {
				s.logger.Warn("consume", "topic", topicOf(e), "partition", e.TopicPartition.Partition, "err", err)
				continue
			}
			if !s.dispatch(ctx, e, tick.C) {
				return nil
			}
			// Waiting for a busy worker is not receiving nothing: the
			// watchdog counts from when the consumer could poll again.
			lastMessage = time.Now()
		case ck.Error:
			if e.IsFatal() {
				return fmt.Errorf("%w: %w", errConsumerLost, e)
			}
			logClientError(s.logger, "consumer", e)
		}
	}
}

// lagging reports whether a partition assigned to the consumer has
// committed messages after its position: the consumer should be receiving
// them. The watermark asked for is, reading committed, the last stable
// offset, so an open transaction is not mistaken for lag.
//
// It runs on the poll loop, so each broker request is given little time:
// a loop blocked here does not serve the rebalance that a consumer
// rejoining after a broker restart is waiting for.
func (s *session) lagging() (bool, error) {
	if s.rn.probeLag != nil {
		return s.rn.probeLag()
	}
	assigned, err := s.c.Assignment()
	if err != nil {
		return false, err
	}
	if len(assigned) == 0 {
		return false, nil
	}
	positions, err := s.c.Position(assigned)
	if err != nil {
		return false, err
	}
	var unknown []ck.TopicPartition
	for _, tp := range positions {
		if tp.Offset < 0 {
			unknown = append(unknown, tp) // nothing consumed yet: from the committed offset
		}
	}
	if len(unknown) > 0 {
		committed, err := s.c.Committed(unknown, lagProbeTimeoutMs)
		if err != nil {
			return false, err
		}
		byPartition := map[partition]ck.Offset{}
		for _, tp := range committed {
			byPartition[partition{tpTopic(tp), tp.Partition}] = tp.Offset
		}
		for i, tp := range positions {
			if tp.Offset < 0 {
				positions[i].Offset = byPartition[partition{tpTopic(tp), tp.Partition}]
			}
		}
	}
	for _, tp := range positions {
		low, end, err := s.c.QueryWatermarkOffsets(tpTopic(tp), tp.Partition, lagProbeTimeoutMs)
		if err != nil {
			return false, err
		}
		// A partition never committed (offset still logical) lags if it
		// holds anything at all; auto.offset.reset=earliest starts there.
		if (tp.Offset < 0 && end > low) || (tp.Offset >= 0 && int64(tp.Offset) < end) {
			s.logger.Warn("consumer receives nothing though a partition has messages for it", "topic", tpTopic(tp), "partition", tp.Partition, "position", tp.Offset, "end", end)
			return true, nil
		}
	}
	return false, nil
}

// dispatch hands m to the worker of its key, committing while it waits
// for room. It reports false if ctx ended the wait.
func (s *session) dispatch(ctx context.Context, m *ck.Message, tick <-chan time.Time) bool {
	g := s.gen
	p, off := partition{topicOf(m), m.TopicPartition.Partition}, int64(m.TopicPartition.Offset)
	rt := s.route(m)
	if rt.poison == nil && (rt.work == nil || s.seen.contains(rt.id)) {
		if rt.work != nil {
			s.logger.Debug("skipped: handled before", "type", rt.kind, "id", rt.id, "topic", p.topic, "partition", p.id, "offset", off)
		}
		g.tracker.skipped(p, off)
		return true
	}
	g.tracker.dispatched(p, off)
	g.active.Add(1)
	q := s.queues[maphash.Bytes(s.seed, rt.key)%uint64(len(s.queues))]
	j := job{m: m, rt: rt, gen: g, p: p, off: off}
	for {
		select {
		case q <- j:
			return true
		case <-tick:
			s.commit()
		case <-ctx.Done():
			g.active.Done()
			return false
		}
	}
}

// handle runs one job to success or to the dead-letter topic. It gives up
// early only when the generation ends: the message is then left undone,
// and redelivered to whoever gets its partition.
func (s *session) handle(j job) {
	if j.gen.isStopped() {
		s.logger.Debug("left for redelivery: its assignment ended", "type", j.rt.kind, "id", j.rt.id, "topic", j.p.topic, "partition", j.p.id, "offset", j.off)
		return
	}
	if j.rt.poison != nil {
		s.deadLetter(j, j.rt.poison, 0)
		return
	}
	// Checked again here, not only at dispatch: a redelivery queued behind
	// the first copy on the same worker must see that copy's outcome.
	if j.rt.id != "" && s.seen.contains(j.rt.id) {
		j.gen.tracker.completed(j.p, j.off)
		return
	}
	rn := s.rn
	backoff := rn.Backoff
	// failed counts the attempts that failed for the message's own sake. A
	// command it causes that Kafka did not take (ErrNotDelivered) is the
	// bus failing, not the message: compensating a booking because the
	// broker restarted would turn an outage into lost sales, and the dead
	// letter could not be written either. Such attempts go on, backing
	// off, until the bus is back.
	failed := 0
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := j.rt.work(j.gen.ctx)
		if rn.observer != nil {
			rn.observer.Handled(s.name, j.rt.kind, time.Since(start), err)
		}
		if err == nil {
			s.seen.add(j.rt.id)
			j.gen.tracker.completed(j.p, j.off)
			s.logger.Debug("handled", "type", j.rt.kind, "id", j.rt.id, "topic", j.p.topic, "partition", j.p.id, "offset", j.off, "attempt", attempt)
			return
		}
		if j.gen.isStopped() {
			return
		}
		if !errors.Is(err, ErrNotDelivered) {
			failed++
		}
		if failed >= rn.MaxAttempts || (rn.Permanent != nil && rn.Permanent(err)) {
			s.compensate(j, err)
			s.deadLetter(j, err, attempt)
			return
		}
		s.logger.Warn("handler failed, retrying", "type", j.rt.kind, "topic", j.p.topic, "partition", j.p.id, "offset", j.off, "attempt", attempt, "err", err)
		select {
		case <-time.After(backoff):
		case <-j.gen.stop:
			return
		}
		backoff = min(2*backoff, rn.MaxBackoff)
	}
}

// compensate runs j's compensation, if it has one, before j is
// dead-lettered: no booking stays pending and no seat stays held because
// of one message given up on. A compensation that fails is logged (and
// the dead letter carries the original cause for an operator).
func (s *session) compensate(j job, cause error) {
	if j.rt.giveUp == nil {
		return
	}
	if err := j.rt.giveUp(j.gen.ctx, cause); err != nil {
		s.logger.Error("compensation failed", "type", j.rt.kind, "topic", j.p.topic, "partition", j.p.id, "offset", j.off, "err", err)
	}
}

// deadLetter copies j's message to its topic's dead-letter topic, with its
// headers and why it was given up, and then counts it as done. Until the
// copy is acknowledged the message is not done: a dead letter is never
// lost, at worst written twice.
func (s *session) deadLetter(j job, cause error, attempts int) {
	s.logger.Error("giving up on a message: dead-lettered", "type", j.rt.kind, "topic", j.p.topic, "partition", j.p.id, "offset", j.off, "attempts", attempts, "err", cause)
	topic := DeadLetterTopic(j.p.topic)
	headers := append([]ck.Header(nil), j.m.Headers...)
	for _, h := range [][2]string{
		{HeaderDLQError, cause.Error()},
		{HeaderDLQAttempts, strconv.Itoa(attempts)},
		{HeaderDLQSubscriber, s.name},
		{HeaderDLQTopic, j.p.topic},
		{HeaderDLQPartition, strconv.Itoa(int(j.p.id))},
		{HeaderDLQOffset, strconv.FormatInt(j.off, 10)},
	} {
		headers = append(headers, ck.Header{Key: h[0], Value: []byte(h[1])})
	}
	m := &ck.Message{
		TopicPartition: ck.TopicPartition{Topic: &topic, Partition: ck.PartitionAny},
		Key:            j.m.Key, Value: j.m.Value, Headers: headers, Timestamp: j.m.Timestamp,
	}
	backoff := s.rn.Backoff
	for {
		err := s.produceDeadLetter(m)
		if err == nil {
			break
		}
		s.logger.Error("writing dead letter", "topic", topic, "err", err)
		select {
		case <-time.After(backoff):
		case <-j.gen.stop:
			return
		}
		backoff = min(2*backoff, s.rn.MaxBackoff)
	}
	if s.rn.observer != nil {
		s.rn.observer.DeadLettered(s.name, j.rt.kind)
	}
	j.gen.tracker.completed(j.p, j.off)
}

func (s *session) produceDeadLetter(m *ck.Message) error {
	s.dlqMu.Lock()
	if s.dlq == nil {
		p, err := newProducer(s.rn.cfg, ck.ConfigMap{
			"enable.idempotence":        true,
			"acks":                      "all",
			"go.delivery.reports":       false,
			"go.delivery.report.fields": "none",
			"message.timeout.ms":        30_000,
		}, s.logger, nil)
		if err != nil {
			s.dlqMu.Unlock()
			return err
		}
		s.dlq = p
	}
	p := s.dlq
	delivered := make(chan ck.Event, 1)
	err := p.Produce(m, delivered)
	s.dlqMu.Unlock()
	if err != nil {
		return err
	}
	if dm, ok := (<-delivered).(*ck.Message); ok && dm.TopicPartition.Error != nil {
		return dm.TopicPartition.Error
	}
	return nil
}

// rebalance is the consumer's rebalance callback. On revocation it ends
// the generation (drain) before librdkafka unassigns, so that the next
// owner of the partitions starts after the last committed done message;
// on assignment it starts a new generation. The callback does not assign
// itself: the Go client then does the default (eager) assignment.
func (s *session) rebalance(c *ck.Consumer, ev ck.Event) error {
	switch e := ev.(type) {
	case ck.AssignedPartitions:
		s.drain(false) // a no-op unless an assignment came without a revocation
		s.gen = s.newGeneration()
		s.logger.Info("partitions assigned", "partitions", describe(e.Partitions))
		if s.rn.pauseOnAssign.CompareAndSwap(true, false) {
			if err := c.Assign(e.Partitions); err != nil {
				return err
			}
			return c.Pause(e.Partitions)
		}
	case ck.RevokedPartitions:
		lost := c.AssignmentLost()
		s.logger.Info("partitions revoked", "partitions", describe(e.Partitions), "lost", lost)
		s.drain(lost)
	}
	return nil
}

// drain ends the current generation: it stops dispatching and retrying,
// waits for the handlers in flight (cancelling their context after
// DrainTimeout), and commits what is done, unless the assignment was lost,
// when the group has moved on and a commit would be refused.
func (s *session) drain(lost bool) {
	g := s.gen
	if g.stopped {
		return
	}
	g.stopped = true
	close(g.stop)
	done := make(chan struct{})
	go func() {
		g.active.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.rn.DrainTimeout):
		s.logger.Warn("handlers still running after the drain timeout: cancelling them", "timeout", s.rn.DrainTimeout)
		g.cancel()
		<-done
	}
	if !lost {
		s.commit()
	}
	g.cancel()
}

// commit commits the current generation's done offsets.
func (s *session) commit() {
	offsets := s.gen.tracker.committable()
	if len(offsets) == 0 {
		return
	}
	committed, err := s.commitBounded(offsets)
	if err != nil {
		var kerr ck.Error
		if errors.As(err, &kerr) && kerr.Code() == ck.ErrNoOffset {
			return
		}
		s.logger.Warn("committing offsets", "err", err)
		if errors.As(err, &kerr) && (kerr.IsFatal() || kerr.Code() == ck.ErrFatal || kerr.Code() == ck.ErrFencedInstanceID) && s.lost == nil {
			// A static member that rejoined after a broker restart can
			// be fenced by its own new incarnation; librdkafka then holds
			// the consumer in a fatal state, with no partitions and no
			// error event for Poll to return. Only a new consumer goes on.
			s.lost = fmt.Errorf("%w: %w", errConsumerLost, err)
		}
		return
	}
	s.gen.tracker.committed(committed)
	if s.rn.observer != nil {
		for _, tp := range committed {
			if tp.Error == nil && tp.Topic != nil {
				s.rn.observer.Checkpointed(fmt.Sprintf("%s/%s/%d", s.name, *tp.Topic, tp.Partition), uint64(tp.Offset))
			}
		}
	}
}

// commitBounded commits offsets, waiting at most CommitTimeout. A commit
// that gets no answer in time loses the consumer (s.lost): it is left
// waiting on its own goroutine, and s.stuck closes when it returns. While
// one is stuck, no other is started.
func (s *session) commitBounded(offsets []ck.TopicPartition) ([]ck.TopicPartition, error) {
	if s.stuck != nil {
		return nil, errCommitUnanswered
	}
	commit := s.rn.commitOffsets
	if commit == nil {
		commit = (*ck.Consumer).CommitOffsets
	}
	if s.rn.CommitTimeout <= 0 {
		return commit(s.c, offsets)
	}
	type result struct {
		committed []ck.TopicPartition
		err       error
	}
	done, returned := make(chan result, 1), make(chan struct{})
	go func() {
		defer close(returned)
		committed, err := commit(s.c, offsets)
		done <- result{committed, err}
	}()
	timer := time.NewTimer(s.rn.CommitTimeout)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.committed, r.err
	case <-timer.C:
		s.stuck = returned
		if s.lost == nil {
			s.lost = fmt.Errorf("%w: %w after %v", errConsumerLost, errCommitUnanswered, s.rn.CommitTimeout)
		}
		return nil, errCommitUnanswered
	}
}

var errCommitUnanswered = errors.New("kafka: offset commit unanswered")

func describe(tps []ck.TopicPartition) []string {
	out := make([]string, len(tps))
	for i, tp := range tps {
		out[i] = fmt.Sprintf("%s[%d]", tpTopic(tp), tp.Partition)
	}
	return out
}

// messageKey is the ordering key of a message that could not be decoded:
// the id in its Kafka key when there is one (so that it queues behind the
// other messages of its aggregate or booking, as a decoded one would),
// else the raw key.
func messageKey(m *ck.Message) []byte {
	if id, err := uuid.ParseBytes(m.Key); err == nil {
		return id[:]
	}
	return m.Key
}

func headerValue(m *ck.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
