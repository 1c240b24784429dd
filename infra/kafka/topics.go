package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// EnsureTopics creates, at start-up, whichever topics of services (every
// service when none is named) do not exist yet:
//
//   - "<prefix>.<service>" and "<prefix>.<service>.commands" with
//     cfg.Partitions partitions;
//   - a ".dlq" topic for each of those, with one partition (dead letters
//     are few and read by people, in order);
//   - "<prefix>.log", the firehose, with exactly one partition (its order
//     is the total order the read models are built in) and no retention
//     limit (a read model is rebuilt from its first record);
//   - "<prefix>.relay-checkpoints", compacted (only each relay's latest
//     checkpoint matters), with one partition.
//
// Topics that exist are left as they are, so EnsureTopics is idempotent,
// but the single partition of the firehose and of the checkpoint topic is
// verified: with more, the total order would silently be lost.
func EnsureTopics(ctx context.Context, cfg Config, logger *slog.Logger, services ...string) error {
	if len(services) == 0 {
		services = Services()
	}
	rf := cfg.replicationFactor()
	var specs []ck.TopicSpecification
	add := func(topic string, partitions int, config map[string]string) {
		specs = append(specs, ck.TopicSpecification{Topic: topic, NumPartitions: partitions, ReplicationFactor: rf, Config: config})
	}
	for _, svc := range services {
		if _, ok := servicePrefixes[svc]; !ok {
			return fmt.Errorf("kafka: ensure topics: unknown service %q (known: %v)", svc, Services())
		}
		for _, topic := range []string{cfg.ServiceTopic(svc), cfg.CommandTopic(svc)} {
			add(topic, cfg.partitions(), nil)
			add(DeadLetterTopic(topic), 1, nil)
		}
	}
	add(cfg.LogTopic(), 1, map[string]string{"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"})
	add(cfg.CheckpointTopic(), 1, map[string]string{"cleanup.policy": "compact"})

	// An admin client derived from a producer, because the Go client only
	// forwards logs of producers and consumers to a channel.
	p, err := newProducer(cfg, ck.ConfigMap{"go.delivery.reports": false}, orDiscard(logger), nil)
	if err != nil {
		return fmt.Errorf("kafka: ensure topics: %w", err)
	}
	defer p.Close()
	admin, err := ck.NewAdminClientFromProducer(p)
	if err != nil {
		return fmt.Errorf("kafka: ensure topics: admin client: %w", err)
	}
	defer admin.Close()

	opCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	results, err := admin.CreateTopics(opCtx, specs, ck.SetAdminOperationTimeout(30*time.Second))
	if err != nil {
		return fmt.Errorf("kafka: ensure topics: %w", err)
	}
	var errs []error
	for _, r := range results {
		if c := r.Error.Code(); c != ck.ErrNoError && c != ck.ErrTopicAlreadyExists {
			errs = append(errs, fmt.Errorf("create %s: %w", r.Topic, r.Error))
		}
	}
	for _, topic := range []string{cfg.LogTopic(), cfg.CheckpointTopic()} {
		if err := singlePartition(opCtx, admin, topic); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafka: ensure topics: %w", err)
	}
	return nil
}

// singlePartition checks that topic has exactly one partition. A topic
// just created may take a moment to show in the metadata, so an unknown
// topic is asked about again until ctx is done.
func singlePartition(ctx context.Context, admin *ck.AdminClient, topic string) error {
	for {
		md, err := admin.GetMetadata(&topic, false, 10_000)
		if err != nil {
			return fmt.Errorf("metadata of %s: %w", topic, err)
		}
		t, ok := md.Topics[topic]
		switch {
		case ok && t.Error.Code() == ck.ErrNoError && len(t.Partitions) == 1:
			return nil
		case ok && t.Error.Code() == ck.ErrNoError:
			return fmt.Errorf("%s has %d partitions, want exactly 1: its order would not be total", topic, len(t.Partitions))
		case ok && t.Error.Code() != ck.ErrUnknownTopicOrPart && t.Error.Code() != ck.ErrLeaderNotAvailable:
			return fmt.Errorf("metadata of %s: %w", topic, t.Error)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("metadata of %s: topic not visible: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// newProducer returns a producer configured with cfg's base settings plus
// extra, whose logs and error events go to logger. Delivery reports of
// Produce calls without a delivery channel are dropped unless extra sets
// "go.delivery.reports"; a caller that wants them passes a channel.
// onDroppedLeader, when not nil, is called without blocking each time the
// producer ignores a partition's new leader (see droppedLeader).
func newProducer(cfg Config, extra ck.ConfigMap, logger *slog.Logger, onDroppedLeader func()) (*ck.Producer, error) {
	conf := cfg.base()
	for k, v := range extra {
		conf[k] = v
	}
	p, err := ck.NewProducer(&conf)
	if err != nil {
		return nil, err
	}
	forwardLogs(p.Logs(), logger, onDroppedLeader)
	// The events channel carries client-level errors (a broker down, say)
	// and must be drained, or the client's poller blocks once it is full.
	// Close closes it, which ends this goroutine.
	go func() {
		for ev := range p.Events() {
			switch e := ev.(type) {
			case ck.Error:
				if e.IsFatal() {
					logger.Error("kafka producer", "err", e, "fatal", true)
				} else {
					logClientError(logger, "kafka producer", e)
				}
			case *ck.Message:
				if e.TopicPartition.Error != nil {
					logger.Warn("kafka delivery failed", "topic", topicOf(e), "err", e.TopicPartition.Error)
				}
			}
		}
	}()
	return p, nil
}

func topicOf(m *ck.Message) string { return tpTopic(m.TopicPartition) }

func tpTopic(tp ck.TopicPartition) string {
	if tp.Topic == nil {
		return ""
	}
	return *tp.Topic
}
