package kafka

import ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"

// Hooks into unexported behaviour, for the external tests.

// ErrTestAbort makes a relay abort the transaction it was about to commit.
var ErrTestAbort = errTestAbort

// BeforeCommit sets the relay's test hook, called once a transaction's
// records are produced and before it commits.
func BeforeCommit(r *Relay, hook func(txn int) error) { r.beforeCommit = hook }

// GroupID is the consumer group of subscriber name.
func GroupID(cfg Config, name string) string { return cfg.scoped(name) }

// WedgeNextConsumer makes the runner's next consumer receive nothing from
// the partitions it is assigned.
func WedgeNextConsumer(rn *Runner) { rn.pauseOnAssign.Store(true) }

// WedgeNextSubscription makes the reader's next subscription receive
// nothing.
func WedgeNextSubscription(l *LogReader) { l.pauseOnAssign.Store(true) }

// SenderGeneration counts the producers the sender has made.
func SenderGeneration(s *Sender) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gen
}

// DropLeader tells the sender that its gen-th producer ignored a
// partition's new leader, as that producer's librdkafka log line would.
func DropLeader(s *Sender, gen uint64) { s.droppedLeader(gen) }

// RelayProducers counts the producers the relay's Run calls have made.
func RelayProducers(r *Relay) uint64 { return r.producers.Load() }

// DropRelayLeader tells the relay that its current producer ignored a
// partition's new leader, as librdkafka's log line would.
func DropRelayLeader(r *Relay) { (*r.dropLeader.Load())() }

// DroppedLeader reports whether a librdkafka log event says the client
// ignored a partition's new leader.
var DroppedLeader = droppedLeader

// RunnerConsumers counts the consumers the runner has made.
func RunnerConsumers(rn *Runner) int64 { return rn.consumers.Load() }

// LogClientError logs an error event of a client as the clients do.
var LogClientError = logClientError

// ProbeLag makes the runner's sessions ask probe, instead of the broker,
// whether they lag.
func ProbeLag(rn *Runner, probe func() (bool, error)) { rn.probeLag = probe }

// SenderProduced counts the messages the sender has handed to a producer.
func SenderProduced(s *Sender) int64 { return s.produced.Load() }

// CommitWith makes the runner's sessions commit offsets with commit.
func CommitWith(rn *Runner, commit func(c *ck.Consumer, offsets []ck.TopicPartition) ([]ck.TopicPartition, error)) {
	rn.commitOffsets = commit
}
