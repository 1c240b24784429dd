package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/ticketd/ticketing/commands"
)

var _ commands.Sender = (*Sender)(nil)

// Sender sends commands to the command topic of the service that handles
// them ("<prefix>.<service>.commands", the service named by the command's
// type). It is the bus port's command half in the distributed mode.
//
// Send returns only once the broker has acknowledged the command (acks=all,
// idempotent producer, so a retried send is never written twice): the
// process manager that sends moves its checkpoint past a record only when
// the commands the record causes are durable in Kafka. A Send that fails or
// is cancelled may still have been delivered; the sender's redelivery then
// sends it again under the same message id, which the consumer dedupes.
type Sender struct {
	cfg    Config
	source string
	logger *slog.Logger

	mu     sync.RWMutex
	p      *ck.Producer
	gen    uint64    // p is the gen-th producer
	since  time.Time // when p was made
	closed bool

	produced atomic.Int64 // messages handed to a producer, for tests
}

// NewSender returns a sender whose messages name the sending service
// (ce_source "/ticketd/<service>"). Close it when done.
func NewSender(cfg Config, service string, logger *slog.Logger) (*Sender, error) {
	s := &Sender{cfg: cfg, source: service, logger: orDiscard(logger).With("sender", service)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.renewLocked(); err != nil {
		return nil, fmt.Errorf("kafka: sender: %w", err)
	}
	return s, nil
}

// renewLocked makes a new producer the current one, and retires the one it
// replaces.
func (s *Sender) renewLocked() error {
	gen := s.gen + 1
	p, err := newProducer(s.cfg, ck.ConfigMap{
		"enable.idempotence":        true,
		"acks":                      "all",
		"partitioner":               "murmur2_random",
		"linger.ms":                 2,
		"go.delivery.reports":       false, // each Send waits on its own channel
		"go.delivery.report.fields": "none",
		// Bounded, so that Send fails rather than hangs when the producer
		// cannot deliver (see replaceIfBroken), and the caller retries.
		"message.timeout.ms":                 int(deliveryTimeout.Milliseconds()),
		"retry.backoff.ms":                   50,
		"retry.backoff.max.ms":               1000,
		"reconnect.backoff.max.ms":           1000,
		"socket.connection.setup.timeout.ms": 10000,
	}, s.logger, func() { go s.droppedLeader(gen) })
	if err != nil {
		return err
	}
	if s.p != nil {
		// No Produce can reach the old producer any more (they run under
		// the read lock); its pending sends fail and their callers retry.
		go retire(s.p, 2*time.Second)
	}
	s.p, s.gen, s.since = p, gen, time.Now()
	return nil
}

// retire fails what p still holds (each Send waiting on it returns
// ErrNotDelivered, and its caller sends again on the current producer)
// and releases p. Closing p without purging it first would stop the
// delivery reports of its pending messages, and their Sends would wait
// for their contexts.
//
// Messages still queued are failed at once (those of a partition p no
// longer sends to wait there). Messages in flight get a moment to be
// acknowledged first: failing one the broker has written would have its
// caller send it again, and a second copy reach the topic.
func retire(p *ck.Producer, inFlightGrace time.Duration) {
	_ = p.Purge(ck.PurgeQueue)
	p.Flush(int(inFlightGrace.Milliseconds()))
	_ = p.Purge(ck.PurgeInFlight)
	p.Flush(1000) // serves the purged messages' reports
	p.Close()
}

// Send implements commands.Sender.
func (s *Sender) Send(ctx context.Context, msg commands.Msg, cmd commands.Command) error {
	topic := s.cfg.CommandTopic(commands.Service(cmd.CommandType()))
	m, err := EncodeCommand(msg, cmd, s.source, topic, time.Now())
	if err != nil {
		return err
	}
	// Buffered, so that a report arriving after ctx gave up does not block
	// the client's poller.
	delivered := make(chan ck.Event, 1)
	p, err := s.produce(ctx, m, delivered)
	if err != nil {
		if p != nil {
			s.replaceIfBroken(p, err)
		}
		return fmt.Errorf("kafka: send %s %s: %w: %w", cmd.CommandType(), msg.ID, ErrNotDelivered, err)
	}
	// librdkafka reports every message within its timeout; the timer is a
	// backstop, so that a report lost for whatever reason costs a retry
	// rather than a caller waiting for good.
	backstop := time.NewTimer(deliveryTimeout + 5*time.Second)
	defer backstop.Stop()
	select {
	case ev := <-delivered:
		dm, ok := ev.(*ck.Message)
		if !ok {
			return fmt.Errorf("kafka: send %s %s: %w: unexpected delivery event %v", cmd.CommandType(), msg.ID, ErrNotDelivered, ev)
		}
		if err := dm.TopicPartition.Error; err != nil {
			s.replaceIfBroken(p, err)
			return fmt.Errorf("kafka: send %s %s: %w: %w", cmd.CommandType(), msg.ID, ErrNotDelivered, err)
		}
		return nil
	case <-backstop.C:
		err := ck.NewError(ck.ErrMsgTimedOut, "no delivery report", false)
		s.replaceIfBroken(p, err)
		return fmt.Errorf("kafka: send %s %s: %w: %w", cmd.CommandType(), msg.ID, ErrNotDelivered, err)
	case <-ctx.Done():
		return fmt.Errorf("kafka: send %s %s: %w: not acknowledged: %w", cmd.CommandType(), msg.ID, ErrNotDelivered, ctx.Err())
	}
}

// ErrNotDelivered is matched by the error of a Send that Kafka did not
// acknowledge: the bus failed, not the command. (The command may still
// have been written; a retry is deduped by its message id.)
var ErrNotDelivered = errors.New("not delivered")

// produce enqueues m on the current producer, waiting while its queue is
// full, and returns the producer used. The read lock keeps Close (and
// replaceIfBroken's swap) from releasing the producer under a Produce call.
func (s *Sender) produce(ctx context.Context, m *ck.Message, delivered chan ck.Event) (*ck.Producer, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errSenderClosed
	}
	for {
		err := s.p.Produce(m, delivered)
		if err == nil {
			s.produced.Add(1)
			return s.p, nil
		}
		var kerr ck.Error
		if !errors.As(err, &kerr) || kerr.Code() != ck.ErrQueueFull {
			return s.p, err
		}
		select {
		case <-ctx.Done():
			return s.p, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

var errSenderClosed = errors.New("kafka: sender closed")

// deliveryTimeout bounds how long a command may wait for the broker's
// acknowledgement, retries included. It is also how long a producer wedged
// by a librdkafka bug (see droppedLeader) goes unnoticed if it gave no
// sign, so it is short: a Send that times out is retried by its caller on
// a new producer.
const deliveryTimeout = 15 * time.Second

// minProducerLife spaces replacements for dropped leaders: the hints come
// in bursts, one per partition, and a broker that is still restarting may
// give the new producer the same hint.
const minProducerLife = time.Second

// replaceIfBroken replaces the producer after a fatal error (an idempotent
// producer whose sequence the broker no longer accepts, say), which makes
// it refuse every later message, and after a delivery timeout, which is
// how a producer wedged without a sign shows (see droppedLeader). A spare
// replacement costs a reconnect; a wedged producer would cost every
// command after it.
func (s *Sender) replaceIfBroken(failed *ck.Producer, err error) {
	// A delivery report of a producer in fatal state says ErrFatal; the
	// error of a call says IsFatal.
	var kerr ck.Error
	if !errors.As(err, &kerr) || !(kerr.IsFatal() || kerr.Code() == ck.ErrFatal || kerr.Code() == ck.ErrMsgTimedOut) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.p != failed {
		return // closed, or replaced by a concurrent Send already
	}
	s.replaceLocked(err)
}

// droppedLeader replaces the gen-th producer, which ignored a partition's
// new leader and may never send to that partition again (see the
// function of the same name), unless it was replaced already.
func (s *Sender) droppedLeader(gen uint64) {
	s.mu.RLock()
	wait := time.Until(s.since.Add(minProducerLife))
	s.mu.RUnlock()
	if wait > 0 {
		time.Sleep(wait)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.gen != gen {
		return
	}
	s.replaceLocked(errDroppedLeader)
}

func (s *Sender) replaceLocked(cause error) {
	if err := s.renewLocked(); err != nil {
		s.logger.Error("replacing a failed producer", "err", err, "cause", cause)
		return
	}
	s.logger.Warn("producer replaced", "cause", cause)
}

// Close waits up to a few seconds for sends in flight, then releases the
// producer; sends still pending then fail. Sends after Close fail at once.
func (s *Sender) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	p := s.p
	s.mu.Unlock()
	// Outside the lock, so that sends racing with Close fail at once
	// rather than wait for the flush. No Produce can reach p any more.
	p.Flush(5000)
	retire(p, 0)
}
