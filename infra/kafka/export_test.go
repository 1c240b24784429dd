package kafka

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
