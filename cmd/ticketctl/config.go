package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Config is what ticketctl is told about the deployment it administers. It
// is read once per invocation from the subcommand's flags and the same
// TICKETD_* environment variables ticketd reads (a flag wins over its
// variable), so that an operator points ticketctl at a deployment exactly
// as they point ticketd at it.
type Config struct {
	// DataDir holds the embedded event store (<data>/eventstore) and the
	// embedded read models (<data>/readmodels).
	DataDir string
	// EventStoreURL, when set, is the KurrentDB (or EventStoreDB)
	// connection string of the event store, which ticketd then uses
	// instead of the embedded store of DataDir.
	EventStoreURL string
	// EventStoreTimeout bounds how long opening KurrentDB waits for the
	// server to answer.
	EventStoreTimeout time.Duration
	// RedisURL and KafkaBrokers, both set, select the distributed mode:
	// read models in Redis, fed from the Kafka firehose.
	RedisURL     string
	RedisPrefix  string
	KafkaBrokers string
	// KafkaTopicPrefix starts every topic name; the firehose is
	// "<prefix>.log".
	KafkaTopicPrefix string
	LogLevel         string
}

// Distributed reports whether the read models live in Redis and are fed
// from Kafka, rather than on the embedded stores of DataDir.
func (c *Config) Distributed() bool { return c.KafkaBrokers != "" }

// Mode names where the read models live, for messages.
func (c *Config) Mode() string {
	if c.Distributed() {
		return "distributed"
	}
	return "embedded"
}

// checkMode refuses half a distributed configuration, as ticketd does:
// Kafka without Redis (or the reverse) would silently read the wrong
// stores.
func (c *Config) checkMode() error {
	if (c.KafkaBrokers == "") != (c.RedisURL == "") {
		return errors.New("distributed mode needs both TICKETD_KAFKA_BROKERS and TICKETD_REDIS_URL (or neither, for the embedded mode on TICKETD_DATA_DIR)")
	}
	return nil
}

// KurrentDB reports whether events live in KurrentDB rather than in the
// embedded store of the data directory.
func (c *Config) KurrentDB() bool { return c.EventStoreURL != "" }

// eventStoreSchemes are the connection strings ticketd accepts in
// TICKETD_EVENTSTORE_URL.
var eventStoreSchemes = []string{"kurrentdb://", "kurrentdb+discover://", "esdb://", "esdb+discover://"}

// checkEventStore refuses what ticketd would refuse, before anything is
// opened: a connection string of another kind, a timeout that is not one.
func (c *Config) checkEventStore() error {
	if c.EventStoreURL != "" && !slices.ContainsFunc(eventStoreSchemes, func(s string) bool { return strings.HasPrefix(c.EventStoreURL, s) }) {
		return errors.New("eventstore-url: want a kurrentdb:// or esdb:// connection string (for example kurrentdb://localhost:2113?tls=false), or nothing for the embedded event store of the data directory")
	}
	if c.EventStoreTimeout <= 0 {
		return fmt.Errorf("eventstore-timeout: want a positive duration such as 10s, got %v", c.EventStoreTimeout)
	}
	return nil
}

// defaultEventStoreTimeout is shorter than ticketd's 30 s: a person waits
// at the terminal, and a server that has not answered in 10 s is most
// likely not there.
const defaultEventStoreTimeout = 10 * time.Second

// logLevel is the configured level; an unknown one is a usage error.
func (c *Config) logLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("log-level: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	return l, nil
}

// settings says which parts of the configuration a subcommand uses, so
// that its help lists only the flags that matter to it.
type settings int

const (
	useDataDir settings = 1 << iota
	useDistributed
)

// bindConfig registers the configuration flags a subcommand uses on fs,
// each defaulting to its TICKETD_* variable.
func bindConfig(fs *flag.FlagSet, getenv func(string) string, c *Config, use settings) {
	env := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	if use&useDataDir != 0 {
		fs.StringVar(&c.DataDir, "data-dir", env("TICKETD_DATA_DIR", "./data"), "ticketd's data directory: embedded event store and read models (TICKETD_DATA_DIR)")
		fs.StringVar(&c.EventStoreURL, "eventstore-url", env("TICKETD_EVENTSTORE_URL", ""), "KurrentDB connection string (kurrentdb:// or esdb://); empty = the embedded event store of the data directory (TICKETD_EVENTSTORE_URL)")
		fs.DurationVar(&c.EventStoreTimeout, "eventstore-timeout", defaultEventStoreTimeout, "how long to wait for KurrentDB to answer before giving up")
	}
	if use&useDistributed != 0 {
		fs.StringVar(&c.RedisURL, "redis-url", env("TICKETD_REDIS_URL", ""), "redis:// URL of the read models; with --kafka-brokers selects the distributed mode (TICKETD_REDIS_URL)")
		fs.StringVar(&c.RedisPrefix, "redis-prefix", env("TICKETD_REDIS_PREFIX", "ticketd"), "prefix of every Redis key (TICKETD_REDIS_PREFIX)")
		fs.StringVar(&c.KafkaBrokers, "kafka-brokers", env("TICKETD_KAFKA_BROKERS", ""), "Kafka bootstrap servers of the log; with --redis-url selects the distributed mode (TICKETD_KAFKA_BROKERS)")
		fs.StringVar(&c.KafkaTopicPrefix, "kafka-topic-prefix", env("TICKETD_KAFKA_TOPIC_PREFIX", "ticketing"), "prefix of every Kafka topic; the log is <prefix>.log (TICKETD_KAFKA_TOPIC_PREFIX)")
	}
	fs.StringVar(&c.LogLevel, "log-level", env("TICKETD_LOG_LEVEL", "warn"), "debug, info, warn or error; logs go to stderr (TICKETD_LOG_LEVEL)")
}
