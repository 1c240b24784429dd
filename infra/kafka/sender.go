package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
	closed bool
}

// NewSender returns a sender whose messages name the sending service
// (ce_source "/ticketd/<service>"). Close it when done.
func NewSender(cfg Config, service string, logger *slog.Logger) (*Sender, error) {
	s := &Sender{cfg: cfg, source: service, logger: orDiscard(logger).With("sender", service)}
	p, err := s.newProducer()
	if err != nil {
		return nil, fmt.Errorf("kafka: sender: %w", err)
	}
	s.p = p
	return s, nil
}

func (s *Sender) newProducer() (*ck.Producer, error) {
	return newProducer(s.cfg, ck.ConfigMap{
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
	}, s.logger)
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
		var kerr ck.Error
		if err == nil || !errors.As(err, &kerr) || kerr.Code() != ck.ErrQueueFull {
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
// by the librdkafka bug below goes unnoticed, so it is short: a Send that
// times out is retried by its caller on a new producer.
const deliveryTimeout = 15 * time.Second

// replaceIfBroken replaces the producer after a fatal error (an idempotent
// producer whose sequence the broker no longer accepts, say), which makes
// it refuse every later message, and after a delivery timeout: librdkafka
// 2.x can leave a partition without a leader for good when a KRaft broker
// restarts (the producer drops a "leader -1" hint and never asks again),
// and only a new client recovers from that. A spare replacement costs a
// reconnect; a wedged producer would cost every command after it.
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
	p, perr := s.newProducer()
	if perr != nil {
		s.logger.Error("replacing a failed producer", "err", perr, "cause", err)
		return
	}
	s.logger.Warn("producer replaced", "cause", err)
	s.p = p
	// No Produce can reach the failed producer any more (they run under
	// the read lock); its pending sends fail and their callers retry.
	go failed.Close()
}

// Close waits up to a few seconds for sends in flight, then releases the
// producer. Sends after Close fail.
func (s *Sender) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.p.Flush(5000)
	s.p.Close()
}
