package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/projections"
)

// Relay publishes every record of one service's store to Kafka, exactly
// once: each record to the service topic (keyed by aggregate id) and to
// the firehose, in transactions that also write the relay's checkpoint (the
// store position relayed up to) to the checkpoint topic.
//
// Why this is exactly once: a transaction commits its records and the
// checkpoint that covers them together, or none of them; read-committed
// readers never see an aborted or unfinished one. A relay starts by
// initialising its transactional producer, which fences any previous
// instance with the same transactional id (a zombie that still thinks it
// relays) and completes or aborts the transaction that instance left
// open; only then does it read its checkpoint, which is therefore the
// last one that will ever commit, and resume the store subscription after
// it.
//
// One Relay per service and cluster may run at a time; a second one fences
// the first, which then fails with a fatal error.
type Relay struct {
	cfg     Config
	service string
	source  projections.EventLog
	filter  es.Filter
	logger  *slog.Logger

	// MaxBatch caps the records of one transaction.
	MaxBatch int
	// Linger is how long a transaction waits for more records after its
	// first, so that a steady trickle is relayed in a few transactions
	// rather than one per record (each commit costs a round of
	// transaction markers). It is added to the latency of a quiet system.
	Linger time.Duration
	// TransactionTimeout is the broker's deadline for a transaction. A
	// relay that dies with a transaction open blocks every read-committed
	// reader of the topics it wrote (the firehose above all) until its
	// successor fences it or this deadline passes, so it is short; a
	// transaction normally lives Linger plus a commit.
	TransactionTimeout time.Duration
	// OpTimeout bounds each blocking call to the transaction coordinator
	// (init, commit, abort). librdkafka does not watch for cancellation,
	// so it also bounds how long a stopping relay may take.
	OpTimeout time.Duration

	committed atomic.Uint64
	producers atomic.Uint64 // made by Run, for tests
	// dropLeader, for tests, acts as if the current producer had ignored a
	// partition's new leader.
	dropLeader atomic.Pointer[func()]

	// beforeCommit, when set (by tests), is called with the transaction's
	// sequence number in this Run once its records are produced. An error
	// ends Run at once, as a crash would: without committing, without
	// aborting; errTestAbort instead aborts the transaction as a broker
	// error would.
	beforeCommit func(txn int) error
}

// NewRelay returns the relay of service, reading its records from source
// (the service's store).
func NewRelay(cfg Config, service string, source projections.EventLog, logger *slog.Logger) (*Relay, error) {
	filter, err := ServiceFilter(service)
	if err != nil {
		return nil, err
	}
	return &Relay{
		cfg: cfg, service: service, source: source, filter: filter,
		logger:   orDiscard(logger).With("relay", service),
		MaxBatch: 1000, Linger: 20 * time.Millisecond,
		TransactionTimeout: 10 * time.Second, OpTimeout: 30 * time.Second,
	}, nil
}

// Name is the relay's name: its key in the checkpoint topic.
func (r *Relay) Name() string { return r.service }

// TransactionalID is the id that fences a previous instance of the relay.
func (r *Relay) TransactionalID() string { return r.cfg.scoped("relay-" + r.service) }

// Committed is the store position up to which records are known to be in
// Kafka: the checkpoint read at start, then that of each commit.
func (r *Relay) Committed() uint64 { return r.committed.Load() }

// Run relays until ctx is done, when it aborts the open transaction and
// returns ctx.Err(). A transaction that fails in a way a producer can
// recover from is aborted and the records after the last checkpoint are
// relayed again, on a new producer; any other failure (a fatal producer
// error such as being fenced, the store's subscription ending, the broker
// unreachable for longer than OpTimeout) is returned, and the caller runs
// the relay again after a backoff, which resumes from the checkpoint in
// Kafka.
//
// Why a new producer after every abort: the usual cause is a message that
// timed out, and librdkafka 2.x can leave a partition without a leader for
// good after a KRaft broker restart (it drops a "leader -1" metadata
// update and never asks again), so every later transaction on the same
// producer would time out the same way. A new producer costs an
// InitTransactions and a checkpoint read, on a path that is taken only when
// something already went wrong.
func (r *Relay) Run(ctx context.Context) error {
	txn, failures := 0, 0
	for {
		progressed, err := r.runProducer(ctx, &txn)
		var again errRelayAgain
		if !errors.As(err, &again) {
			return err
		}
		if progressed {
			failures = 0
		}
		if failures++; failures > 5 {
			return fmt.Errorf("kafka: relay %s: %d transactions in a row aborted, the last: %w", r.service, failures, again.err)
		}
		if errors.Is(again.err, errDroppedLeader) {
			r.logger.Warn("relaying on a new producer", "cause", again.err)
		} else {
			r.logger.Warn("transaction aborted; relaying again from the checkpoint on a new producer", "err", again.err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(25<<failures) * time.Millisecond):
		}
	}
}

// errRelayAgain is the failure of one transaction, aborted, or a producer
// given up on between transactions: Run goes on from the checkpoint on a
// new producer.
type errRelayAgain struct{ err error }

func (e errRelayAgain) Error() string { return e.err.Error() }
func (e errRelayAgain) Unwrap() error { return e.err }

// runProducer relays on one new transactional producer until a
// transaction fails (errRelayAgain, once it is aborted), the producer
// cannot go on, or ctx is done. It reports whether any transaction
// committed.
func (r *Relay) runProducer(ctx context.Context, txn *int) (progressed bool, _ error) {
	// Closed when the producer ignores a partition's new leader, after
	// which it may never deliver to that partition again (see
	// droppedLeader). The relay goes on on a new producer as soon as no
	// transaction is open (at once when idle, else once the one under way
	// commits), rather than let a later one time out on that partition.
	// The one under way is left to end on its own:
	// purging a transactional producer's records, even those not yet
	// sent, or aborting while records are in flight, makes the broker
	// refuse the abort (INVALID_TXN_STATE, fatal to the producer). So a
	// transaction whose records the producer will never send still fails
	// only at its timeout.
	dropped := make(chan struct{})
	var dropOnce sync.Once
	drop := func() { dropOnce.Do(func() { close(dropped) }) }
	r.dropLeader.Store(&drop)
	p, err := newProducer(r.cfg, ck.ConfigMap{
		"transactional.id":       r.TransactionalID(),
		"enable.idempotence":     true,
		"acks":                   "all",
		"transaction.timeout.ms": int(r.TransactionTimeout.Milliseconds()),
		"go.delivery.reports":    false, // a failed record fails the commit
		// The murmur2 partitioner places keys as the Java client does, so
		// any client agrees on which partition holds an aggregate.
		"partitioner": "murmur2_random",
		"linger.ms":   5,
		// Coordinator requests answered "concurrent transactions" are
		// retried after retry.backoff.ms; librdkafka's 100 ms default
		// puts most of a second's idle time into every few commits.
		"retry.backoff.ms":     10,
		"retry.backoff.max.ms": 200,
	}, r.logger, drop)
	if err != nil {
		return false, fmt.Errorf("kafka: relay %s: producer: %w", r.service, err)
	}
	r.producers.Add(1)
	defer p.Close()

	initCtx, cancel := context.WithTimeout(ctx, r.OpTimeout)
	err = p.InitTransactions(initCtx)
	cancel()
	if err != nil {
		return false, r.stopped(ctx, fmt.Errorf("kafka: relay %s: init transactions: %w", r.service, err))
	}
	from, err := r.loadCheckpoint(ctx, p)
	if err != nil {
		return false, r.stopped(ctx, fmt.Errorf("kafka: relay %s: %w", r.service, err))
	}
	r.committed.Store(from)
	r.logger.Info("relay running", "checkpoint", from, "transactional_id", r.TransactionalID())

	start := from
	err = r.pump(ctx, p, dropped, &from, txn)
	progressed = from != start
	var crash errCrash
	if errors.As(err, &crash) && !errors.Is(err, errTestAbort) {
		return progressed, crash.err // a simulated crash: no abort, no clean-up
	}
	if ctx.Err() != nil {
		_ = r.abort(p)
		return progressed, ctx.Err()
	}
	var kerr ck.Error
	if errors.As(err, &kerr) && kerr.IsFatal() {
		// Fenced, or the producer's state is lost: only a new
		// producer (a new Run) can go on.
		return progressed, fmt.Errorf("kafka: relay %s: %w", r.service, err)
	}
	// Abort rather than leave the transaction open: until it ends,
	// every read-committed reader of the firehose waits at it.
	if aerr := r.abort(p); aerr != nil {
		return progressed, fmt.Errorf("kafka: relay %s: %w (and aborting failed: %v)", r.service, err, aerr)
	}
	if !errors.Is(err, errTestAbort) && !errors.Is(err, errDroppedLeader) && !(errors.As(err, &kerr) && kerr.TxnRequiresAbort()) {
		return progressed, fmt.Errorf("kafka: relay %s: %w", r.service, err)
	}
	return progressed, errRelayAgain{err}
}

// stopped prefers ctx's error when ctx ended the call that failed.
func (r *Relay) stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (r *Relay) abort(p *ck.Producer) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.OpTimeout)
	defer cancel()
	err := p.AbortTransaction(ctx)
	var kerr ck.Error
	if errors.As(err, &kerr) && kerr.Code() == ck.ErrState {
		return nil // no transaction open
	}
	return err
}

// errCrash carries the error of the beforeCommit test hook.
type errCrash struct{ err error }

func (e errCrash) Error() string { return e.err.Error() }
func (e errCrash) Unwrap() error { return e.err }

// errTestAbort, returned by beforeCommit, makes the relay treat the
// transaction as failed in a way that needs an abort, as a broker error
// would.
var errTestAbort = errors.New("kafka: test: abort this transaction")

// pump subscribes to the store after *from and relays what comes in
// transactions, advancing *from at each commit, until something fails or
// dropped is closed.
func (r *Relay) pump(ctx context.Context, p *ck.Producer, dropped <-chan struct{}, from *uint64, txn *int) error {
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	feed := make(chan []es.Record, 4)
	subDone := make(chan error, 1)
	go func() {
		subDone <- r.source.SubscribeAll(subCtx, *from, r.filter, func(batch []es.Record) error {
			select {
			case feed <- append([]es.Record(nil), batch...):
				return nil
			case <-subCtx.Done():
				return subCtx.Err()
			}
		})
	}()
	subscribed := true
	defer func() {
		stop()
		if subscribed {
			<-subDone
		}
	}()
	ended := func(err error) error {
		subscribed = false
		if err == nil {
			err = errors.New("subscription ended")
		}
		return fmt.Errorf("store subscription: %w", err)
	}

	logTopic, cpTopic, svcTopic := r.cfg.LogTopic(), r.cfg.CheckpointTopic(), r.cfg.ServiceTopic(r.service)
	maxBatch := max(1, r.MaxBatch)
	var pending []es.Record
	linger := time.NewTimer(0)
	defer linger.Stop()
	for {
		for len(pending) == 0 {
			select {
			case pending = <-feed:
			case <-dropped:
				return errDroppedLeader // no transaction open: leave now
			case err := <-subDone:
				return ended(err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		select {
		case <-dropped:
			return errDroppedLeader // before beginning one on this producer
		default:
		}
		if err := p.BeginTransaction(); err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
		*txn++
		start, n, last := time.Now(), 0, *from
		linger.Reset(r.Linger)
	fill:
		for {
			take := min(len(pending), maxBatch-n)
			for i := range pending[:take] {
				rec := &pending[i]
				m := EncodeRecord(rec, r.service, svcTopic)
				if err := produce(ctx, p, m); err != nil {
					return err
				}
				m.TopicPartition = ck.TopicPartition{Topic: &logTopic, Partition: 0}
				if err := produce(ctx, p, m); err != nil {
					return err
				}
				last = rec.Position
			}
			n += take
			pending = pending[take:]
			if n >= maxBatch {
				break
			}
			select {
			case pending = <-feed:
			case <-linger.C:
				break fill
			case err := <-subDone:
				return ended(err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		value, _ := json.Marshal(checkpoint{Position: last})
		key := r.service
		if err := produce(ctx, p, &ck.Message{
			TopicPartition: ck.TopicPartition{Topic: &cpTopic, Partition: 0},
			Key:            []byte(key), Value: value,
		}); err != nil {
			return err
		}
		if r.beforeCommit != nil {
			if err := r.beforeCommit(*txn); err != nil {
				return errCrash{err}
			}
		}
		if err := r.commit(p); err != nil {
			return err
		}
		*from = last
		r.committed.Store(last)
		r.logger.Debug("relayed", "records", n, "checkpoint", last, "took", time.Since(start))
		select {
		case <-dropped:
			return errDroppedLeader
		default:
		}
	}
}

// commit commits the open transaction, retrying what the producer says is
// retriable (the commit's outcome is then still undecided, and only a
// retried commit decides it).
func (r *Relay) commit(p *ck.Producer) error {
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), r.OpTimeout)
		err := p.CommitTransaction(ctx)
		cancel()
		var kerr ck.Error
		if err == nil || !errors.As(err, &kerr) || !kerr.IsRetriable() || attempt == 3 {
			if err != nil {
				return fmt.Errorf("commit transaction: %w", err)
			}
			return nil
		}
		r.logger.Warn("commit failed, retrying", "attempt", attempt, "err", err)
	}
}

// produce enqueues m, waiting while the producer's queue is full.
func produce(ctx context.Context, p *ck.Producer, m *ck.Message) error {
	for {
		err := p.Produce(m, nil)
		var kerr ck.Error
		if err == nil || !errors.As(err, &kerr) || kerr.Code() != ck.ErrQueueFull {
			if err != nil {
				return fmt.Errorf("produce to %s: %w", topicOf(m), err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// checkpoint is the value of a relay's record in the checkpoint topic.
type checkpoint struct {
	Position uint64 `json:"position"`
}

// loadCheckpoint reads the relay's latest committed checkpoint. It reads
// the checkpoint topic up to its high watermark as it is now, after
// InitTransactions: every checkpoint of this relay that will ever commit is
// below it. Reading committed, the reader waits at the first transaction
// still open (another relay's, as each relay writes this topic), so it
// reads to the watermark itself rather than stopping at "end of
// partition", which would be that open transaction's start.
func (r *Relay) loadCheckpoint(ctx context.Context, p *ck.Producer) (uint64, error) {
	topic := r.cfg.CheckpointTopic()
	// The producer lists offsets read-uncommitted: the high watermark.
	var high int64
	err := retry(ctx, time.Now().Add(r.OpTimeout), func(ms int) (err error) {
		_, high, err = p.QueryWatermarkOffsets(topic, 0, ms)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("load checkpoint: watermarks of %s: %w", topic, err)
	}
	if high == 0 {
		return 0, nil
	}
	c, err := newConsumer(r.cfg, ck.ConfigMap{
		"group.id":             r.cfg.scoped("relay-" + r.service), // never joined: partitions are assigned
		"enable.auto.commit":   false,
		"isolation.level":      "read_committed",
		"enable.partition.eof": true,
	}, r.logger)
	if err != nil {
		return 0, fmt.Errorf("load checkpoint: consumer: %w", err)
	}
	defer c.Close()
	if err := c.Assign([]ck.TopicPartition{{Topic: &topic, Partition: 0, Offset: ck.OffsetBeginning}}); err != nil {
		return 0, fmt.Errorf("load checkpoint: assign %s: %w", topic, err)
	}
	deadline := time.Now().Add(r.OpTimeout + r.TransactionTimeout)
	var pos uint64
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("load checkpoint: %s not read up to offset %d within %v", topic, high, r.OpTimeout+r.TransactionTimeout)
		}
		switch e := c.Poll(100).(type) {
		case *ck.Message:
			if e.TopicPartition.Error != nil {
				return 0, fmt.Errorf("load checkpoint: %w", e.TopicPartition.Error)
			}
			if string(e.Key) == r.service {
				if e.Value == nil {
					pos = 0 // a tombstone: an operator reset the relay
				} else {
					var cp checkpoint
					if err := json.Unmarshal(e.Value, &cp); err != nil {
						return 0, fmt.Errorf("load checkpoint: %w: %s[0]@%d: %v", ErrMalformed, topic, e.TopicPartition.Offset, err)
					}
					pos = cp.Position
				}
			}
			if int64(e.TopicPartition.Offset)+1 >= high {
				return pos, nil
			}
		case ck.PartitionEOF:
			if int64(e.Offset) >= high {
				return pos, nil
			}
		case ck.Error:
			if e.IsFatal() {
				return 0, fmt.Errorf("load checkpoint: %w", e)
			}
			logClientError(r.logger, "reading checkpoints", e)
		}
	}
}

// newConsumer returns a consumer configured with cfg's base settings plus
// extra, whose logs go to logger.
func newConsumer(cfg Config, extra ck.ConfigMap, logger *slog.Logger) (*ck.Consumer, error) {
	conf := cfg.base()
	for k, v := range extra {
		conf[k] = v
	}
	c, err := ck.NewConsumer(&conf)
	if err != nil {
		return nil, err
	}
	forwardLogs(c.Logs(), logger, nil)
	return c, nil
}

// retry calls fn (with the milliseconds left) until it succeeds, fails
// with an error that waiting will not cure, or deadline passes. Partitions
// that are moving or were just created answer "not leader" or "unknown"
// for a moment, which is no reason to give up.
func retry(ctx context.Context, deadline time.Time, fn func(ms int) error) error {
	backoff := 20 * time.Millisecond
	for {
		err := fn(max(1, int(time.Until(deadline).Milliseconds())))
		if err == nil || !transient(err) || time.Now().Add(backoff).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// transient reports whether err is one a client gets while partitions or
// brokers move, and that a later attempt may not get.
func transient(err error) bool {
	var kerr ck.Error
	if !errors.As(err, &kerr) {
		return false
	}
	switch kerr.Code() {
	case ck.ErrNotLeaderForPartition, ck.ErrLeaderNotAvailable, ck.ErrUnknownTopicOrPart,
		ck.ErrTimedOut, ck.ErrTransport, ck.ErrAllBrokersDown, ck.ErrNotCoordinator, ck.ErrCoordinatorLoadInProgress:
		return true
	}
	return kerr.IsRetriable()
}
