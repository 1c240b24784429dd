package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/domain/user"
)

// Defaults applied to the zero fields of a Config.
const (
	DefaultTopicPrefix       = "ticketing"
	DefaultPartitions        = 6
	DefaultReplicationFactor = 1
	DefaultClientID          = "ticketd"
)

// Config is what every Kafka adapter of this package needs. It is read
// once, in cmd, and handed down; zero fields take the defaults above.
type Config struct {
	// Brokers is the bootstrap list, "host:port[,host:port...]".
	Brokers string
	// TopicPrefix starts every topic name ("<prefix>.bookings",
	// "<prefix>.log", ...), so that several deployments can share a
	// cluster.
	TopicPrefix string
	// Partitions is the partition count of the service and command topics
	// that EnsureTopics creates. It bounds how many consumers of one group
	// share a topic's load; within one consumer the runner's keyed workers
	// give concurrency regardless.
	Partitions int
	// ReplicationFactor of every topic EnsureTopics creates. 1 suits a
	// single test broker; production wants 3 (with min.insync.replicas=2
	// on the brokers, since the producers here use acks=all).
	ReplicationFactor int
	// ClientID names this process in the brokers' logs and quotas.
	ClientID string
	// InstanceID, when set, makes this process a static member of its
	// consumer groups (group.instance.id = InstanceID + "-" + subscriber).
	// A process restarted with the same InstanceID takes back its
	// partitions at once, instead of waiting for the group to notice the
	// old member is gone. It must be stable across restarts of one process
	// and different for every process; empty means dynamic membership.
	InstanceID string
}

func (c Config) prefix() string {
	if c.TopicPrefix == "" {
		return DefaultTopicPrefix
	}
	return c.TopicPrefix
}

func (c Config) partitions() int {
	if c.Partitions <= 0 {
		return DefaultPartitions
	}
	return c.Partitions
}

func (c Config) replicationFactor() int {
	if c.ReplicationFactor <= 0 {
		return DefaultReplicationFactor
	}
	return c.ReplicationFactor
}

func (c Config) clientID() string {
	if c.ClientID == "" {
		return DefaultClientID
	}
	return c.ClientID
}

// ServiceTopic is the topic a service's records are relayed to,
// "<prefix>.<service>".
func (c Config) ServiceTopic(service string) string { return c.prefix() + "." + service }

// CommandTopic is the topic of the commands a service handles,
// "<prefix>.<service>.commands".
func (c Config) CommandTopic(service string) string {
	return c.prefix() + "." + service + ".commands"
}

// LogTopic is the firehose: one partition holding every relayed record of
// every service, kept forever, in the order the read models apply them.
func (c Config) LogTopic() string { return c.prefix() + ".log" }

// CheckpointTopic is the compacted topic in which each relay keeps the
// store position it has relayed up to, keyed by the relay's name.
func (c Config) CheckpointTopic() string { return c.prefix() + ".relay-checkpoints" }

// DeadLetterTopic is where a consumer of topic parks a message it gave up
// on.
func DeadLetterTopic(topic string) string { return topic + ".dlq" }

// scoped names a consumer group or a transactional id. Under the default
// prefix it is "ticketd-<name>"; under another it also carries the prefix,
// because deployments that share a cluster under different prefixes must
// neither share consumer groups nor fence each other's relays.
func (c Config) scoped(name string) string {
	if c.prefix() == DefaultTopicPrefix {
		return "ticketd-" + name
	}
	return "ticketd-" + c.prefix() + "-" + name
}

// base is the librdkafka configuration every client shares. Its logs go
// to the client's Logs channel, which forwardLogs drains into slog, instead
// of librdkafka's default of writing to stderr.
func (c Config) base() ck.ConfigMap {
	return ck.ConfigMap{
		"bootstrap.servers":      c.Brokers,
		"client.id":              c.clientID(),
		"go.logs.channel.enable": true,
	}
}

// The services of the system, each owning the streams under its prefixes.
var servicePrefixes = map[string][]string{
	"users":    {user.StreamPrefix},
	"events":   {event.StreamPrefix},
	"bookings": {booking.StreamPrefix},
	"payments": {payment.StreamPrefix},
}

// Services returns the names of the services, in a stable order.
func Services() []string {
	names := make([]string, 0, len(servicePrefixes))
	for name := range servicePrefixes {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// ServiceFilter selects the streams that service owns: what its relay
// publishes.
func ServiceFilter(service string) (es.Filter, error) {
	prefixes, ok := servicePrefixes[service]
	if !ok {
		return es.Filter{}, fmt.Errorf("kafka: unknown service %q (known: %v)", service, Services())
	}
	return es.Filter{StreamPrefixes: slices.Clone(prefixes)}, nil
}

// forwardLogs drains a client's librdkafka log channel into logger until
// the client is closed (which closes the channel). librdkafka logs with
// syslog levels. onDroppedLeader, when not nil, is called (on the
// draining goroutine, so it must not block) each time the client says it
// ignored a partition's new leader (see droppedLeader).
func forwardLogs(logs chan ck.LogEvent, logger *slog.Logger, onDroppedLeader func()) {
	if logs == nil {
		return
	}
	go func() {
		for ev := range logs {
			level := slog.LevelDebug
			switch {
			case ev.Level <= 3:
				level = slog.LevelWarn // librdkafka says "error" for every refused connection it retries
			case ev.Level == 4:
				level = slog.LevelWarn
			case ev.Level <= 6:
				level = slog.LevelInfo
			}
			logger.Log(context.Background(), level, ev.Message, "client", ev.Name, "tag", ev.Tag)
			if onDroppedLeader != nil && droppedLeader(ev) {
				onDroppedLeader()
			}
		}
	}()
}

// droppedLeader reports whether ev is librdkafka saying that it ignored a
// partition's new leader because it does not know that broker:
//
//	[thrd:main]: Partition t.events.commands(…)[1]: new leader-1 not found in cache
//
// A broker that stops, or a KRaft controller that fences one, answers a
// produce request with "not leader, and the leader is now -1"; librdkafka
// 2.x then skips the partition's update and, from then on, may never send
// to that partition again, even after full metadata names its leader
// (librdkafka issue 5430, open as of 2.15.1). Its messages wait for their
// timeout. This line is the only sign of it a client gives; only a new
// client is sure to recover.
func droppedLeader(ev ck.LogEvent) bool {
	return ev.Tag == "METADATAUPDATE" &&
		strings.Contains(ev.Message, ": new leader") &&
		strings.HasSuffix(ev.Message, " not found in cache")
}

// errDroppedLeader is the cause given for replacing a producer that
// ignored a partition's new leader.
var errDroppedLeader = errors.New("the producer ignored a partition's new leader")

// logClientError logs an error event of a client that goes on (not
// fatal). A broker connection that failed (ErrTransport) is logged at
// debug: librdkafka's own log line already says it, at warn, and during an
// outage every client repeats it for every broker it knows, several times a
// second.
func logClientError(logger *slog.Logger, msg string, e ck.Error) {
	level := slog.LevelWarn
	if e.Code() == ck.ErrTransport {
		level = slog.LevelDebug
	}
	logger.Log(context.Background(), level, msg, "err", e, "code", e.Code().String())
}

// orDiscard returns logger, or a logger that drops everything.
func orDiscard(logger *slog.Logger) *slog.Logger {
	if logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return logger
}
