package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/infra/eventstore/embedded"
	"github.com/ticketd/ticketing/infra/kafka"
	readembedded "github.com/ticketd/ticketing/infra/readstore/embedded"
	readredis "github.com/ticketd/ticketing/infra/readstore/redis"
	"github.com/ticketd/ticketing/projections"
)

// projectionInfo names a projection and says what it serves.
type projectionInfo struct {
	name   string
	serves string
}

// projectionList is every read model projection, in the order ticketd
// starts them.
var projectionList = []projectionInfo{
	{projections.NameEvents, "event listing and details, with the seats available per ticket type (GET /events, GET /events/{id})"},
	{projections.NameBookings, "booking status and each user's bookings (GET /bookings, GET /bookings/{id}); the holds the expirer ends; what the payments service knows of a booking"},
	{projections.NamePayments, "payment status (GET /payment/status/{id}) and the first state of its live stream"},
	{projections.NameProfiles, "user profiles (GET /profile)"},
}

func projectionNames() []string {
	names := make([]string, len(projectionList))
	for i, p := range projectionList {
		names[i] = p.name
	}
	return names
}

// readModel is one projection's read model in whichever store keeps it:
// what the live version has committed, and how to build a fresh version
// beside it.
type readModel struct {
	name string
	// filter is what the projection reads of the log.
	filter es.Filter
	// checkpoint is the live version's checkpoint.
	checkpoint func(ctx context.Context) (uint64, error)
	// stage creates a fresh, empty version that readers do not see.
	stage func() (*stagedModel, error)
}

// stagedModel is a fresh version of a read model being rebuilt.
type stagedModel struct {
	// projector builds the version from log.
	projector func(log projections.EventLog) *projections.Projector
	// promote switches readers to the version, atomically; discard
	// deletes it instead.
	promote, discard func() error
}

// versioned is what both read stores offer for each view type V (a
// pointer such as *readembedded.EventViews): the rebuild procedure of
// their doc comments.
type versioned[V any] interface {
	Checkpoint(ctx context.Context) (uint64, error)
	Stage() (V, error)
	Promote(staged V) error
	Discard() error
}

// newReadModel describes the read model live of projection name; project
// returns the projector that feeds a version of it from a log.
func newReadModel[V versioned[V]](name string, live V, project func(projections.EventLog, V) *projections.Projector) readModel {
	return readModel{
		name:       name,
		filter:     project(nil, live).Filter(),
		checkpoint: live.Checkpoint,
		stage: func() (*stagedModel, error) {
			staged, err := live.Stage()
			if err != nil {
				return nil, err
			}
			return &stagedModel{
				projector: func(log projections.EventLog) *projections.Projector { return project(log, staged) },
				promote:   func() error { return live.Promote(staged) },
				discard:   staged.Discard,
			}, nil
		},
	}
}

// readModels describes the four read models of one store. The payments
// projector of a rebuild publishes to no feed: the states it replays are
// history, and announcing them would send old statuses to live streams.
func readModels[E interface {
	versioned[E]
	projections.EventsStore
}, B interface {
	versioned[B]
	projections.BookingsStore
}, P interface {
	versioned[P]
	projections.PaymentsStore
}, U interface {
	versioned[U]
	projections.ProfilesStore
}](reg *es.Registry, logger *slog.Logger, events E, bookings B, payments P, profiles U) []readModel {
	return []readModel{
		newReadModel(projections.NameEvents, events, func(log projections.EventLog, s E) *projections.Projector {
			return projections.NewEvents(log, reg, s, logger)
		}),
		newReadModel(projections.NameBookings, bookings, func(log projections.EventLog, s B) *projections.Projector {
			return projections.NewBookings(log, reg, s, logger)
		}),
		newReadModel(projections.NamePayments, payments, func(log projections.EventLog, s P) *projections.Projector {
			return projections.NewPayments(log, reg, s, nil, logger)
		}),
		newReadModel(projections.NameProfiles, profiles, func(log projections.EventLog, s U) *projections.Projector {
			return projections.NewProfiles(log, reg, s, logger)
		}),
	}
}

// backend is the log and the read models of the configured mode.
type backend struct {
	// where names the stores, for messages: the data directory, or the
	// Redis and Kafka the distributed mode uses.
	where string
	// online is true when services may be writing while ticketctl works
	// (distributed mode): the log head moves and a live projector keeps
	// committing to the read models.
	online bool
	log    projections.EventLog
	models []readModel
	close  func()
}

// model returns the read model of projection name.
func (b *backend) model(name string) (readModel, bool) {
	for _, m := range b.models {
		if m.name == name {
			return m, true
		}
	}
	return readModel{}, false
}

// dirInUse is the error for a data directory a running ticketd holds;
// what says what the user can do instead.
type dirInUse struct {
	dir  string
	what string
}

func (e *dirInUse) Error() string { return fmt.Sprintf("ticketd is running on %s; %s", e.dir, e.what) }

// absDir is dir made absolute for messages, or dir as given.
func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// openEventStore opens the embedded event store of cfg.DataDir. When a
// running ticketd holds it, the error says so and what to do instead
// (ifRunning). mustExist refuses a data directory without an event store
// rather than creating one.
func openEventStore(cfg *Config, logger *slog.Logger, mustExist bool, ifRunning string) (*embedded.Store, error) {
	dir := filepath.Join(cfg.DataDir, "eventstore")
	if mustExist {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no event store in %s (TICKETD_DATA_DIR or --data-dir): is this ticketd's data directory?", absDir(cfg.DataDir))
		}
	}
	store, err := embedded.Open(dir, embedded.Options{Logger: logger})
	if errors.Is(err, embedded.ErrDirInUse) {
		return nil, &dirInUse{dir: absDir(cfg.DataDir), what: ifRunning}
	}
	if err != nil {
		return nil, err
	}
	return store, nil
}

// openEmbedded opens the event store and read models of cfg.DataDir. They
// are ticketd's own files, locked while it runs.
func openEmbedded(cfg *Config, logger *slog.Logger, ifRunning string) (*backend, error) {
	store, err := openEventStore(cfg, logger, true, ifRunning)
	if err != nil {
		return nil, err
	}
	reads, err := readembedded.Open(filepath.Join(cfg.DataDir, "readmodels"), readembedded.Options{Logger: logger})
	if err != nil {
		store.Close()
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			return nil, &dirInUse{dir: absDir(cfg.DataDir), what: ifRunning}
		}
		return nil, err
	}
	reg := commands.NewRegistry()
	return &backend{
		where:  "embedded stores in " + absDir(cfg.DataDir),
		log:    store,
		models: readModels(reg, logger, reads.Events(), reads.Bookings(), reads.Payments(), reads.Profiles()),
		close: func() {
			if err := reads.Close(); err != nil {
				logger.Warn("close read models", "err", err)
			}
			if err := store.Close(); err != nil {
				logger.Warn("close event store", "err", err)
			}
		},
	}, nil
}

// openDistributed connects to the Redis read models and the Kafka log
// that ticketd's projector process builds them from.
func openDistributed(ctx context.Context, cfg *Config, logger *slog.Logger) (*backend, error) {
	reads, err := readredis.Open(ctx, cfg.RedisURL, readredis.Options{Prefix: cfg.RedisPrefix, Logger: logger})
	if err != nil {
		return nil, err
	}
	kcfg := kafka.Config{Brokers: cfg.KafkaBrokers, TopicPrefix: cfg.KafkaTopicPrefix, ClientID: "ticketctl"}
	log := kafka.NewLogReader(kcfg, logger)
	reg := commands.NewRegistry()
	return &backend{
		where:  fmt.Sprintf("Redis read models (prefix %q) and the Kafka log %s", cfg.RedisPrefix, kcfg.LogTopic()),
		online: true,
		log:    log,
		models: readModels(reg, logger, reads.Events(), reads.Bookings(), reads.Payments(), reads.Profiles()),
		close: func() {
			if err := log.Close(); err != nil {
				logger.Warn("close log reader", "err", err)
			}
			if err := reads.Close(); err != nil {
				logger.Warn("close read models", "err", err)
			}
		},
	}, nil
}

// openBackend opens the stores of the configured mode.
func openBackend(ctx context.Context, cfg *Config, logger *slog.Logger, ifRunning string) (*backend, error) {
	if cfg.Distributed() {
		return openDistributed(ctx, cfg, logger)
	}
	return openEmbedded(cfg, logger, ifRunning)
}

// newLogger logs to w at the configured level, as text: ticketctl's logs
// are read by a person at a terminal.
func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	level, _ := cfg.logLevel()
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
