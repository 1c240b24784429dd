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
	"strings"
	"syscall"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/infra/eventstore/embedded"
	"github.com/ticketd/ticketing/infra/eventstore/kurrentdb"
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
	// byteOffsets is true when log positions are offsets in the log
	// (KurrentDB's $all) rather than record numbers, so that a position
	// says nothing of how many records come before it.
	byteOffsets bool
	log         projections.EventLog
	models      []readModel
	close       func()
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

// eventStore is what ticketctl uses of an event store, embedded or
// KurrentDB: appends and stream reads for create-admin, the log for the
// projections.
type eventStore interface {
	commands.EventStore
	projections.EventLog
	Close() error
}

var (
	_ eventStore = (*embedded.Store)(nil)
	_ eventStore = (*kurrentdb.Store)(nil)
)

// openEventStore opens the event store ticketd uses: KurrentDB when
// cfg.EventStoreURL is set, else the embedded store of cfg.DataDir. When a
// running ticketd holds the embedded store, the error says so and what to
// do instead (ifRunning). mustExist refuses a data directory without an
// embedded event store rather than creating one.
func openEventStore(ctx context.Context, cfg *Config, logger *slog.Logger, mustExist bool, ifRunning string) (eventStore, error) {
	if cfg.KurrentDB() {
		return openKurrentDB(ctx, cfg, logger)
	}
	dir := filepath.Join(cfg.DataDir, "eventstore")
	if mustExist {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no event store in %s (TICKETD_DATA_DIR or --data-dir): is this ticketd's data directory? (If ticketd keeps its events in KurrentDB, set TICKETD_EVENTSTORE_URL as for ticketd.)", absDir(cfg.DataDir))
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

// openKurrentDB connects to the KurrentDB of cfg.EventStoreURL as ticketd
// does, waiting at most cfg.EventStoreTimeout for it to answer.
func openKurrentDB(ctx context.Context, cfg *Config, logger *slog.Logger) (*kurrentdb.Store, error) {
	openCtx, cancel := context.WithTimeout(ctx, cfg.EventStoreTimeout)
	defer cancel()
	s, err := kurrentdb.Open(openCtx, cfg.EventStoreURL, kurrentdb.Options{Logger: logger})
	if err == nil {
		return s, nil
	}
	where := redactURL(cfg.EventStoreURL)
	if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("KurrentDB at %s did not answer within %v: is it running and reachable from here? (TICKETD_EVENTSTORE_URL or --eventstore-url; --eventstore-timeout waits longer)", where, cfg.EventStoreTimeout)
	}
	var coded interface{ Code() esdb.ErrorCode }
	if errors.As(err, &coded) {
		switch coded.Code() {
		case esdb.ErrorUnavailable:
			// The client gave up after its discovery attempts, typically
			// on a refused connection, before the timeout.
			return nil, fmt.Errorf("KurrentDB at %s is unavailable: is it running and reachable from here? (TICKETD_EVENTSTORE_URL or --eventstore-url): %w", where, err)
		case esdb.ErrorCodeUnauthenticated, esdb.ErrorCodeAccessDenied:
			return nil, fmt.Errorf("KurrentDB at %s refused the credentials: ticketd's user must be able to read $all and write streams (check the user and password of the connection string): %w", where, err)
		}
	}
	return nil, fmt.Errorf("KurrentDB at %s: %w", where, err)
}

// redactURL hides the password of a connection string in messages. It
// does not rely on net/url, which refuses KurrentDB's cluster form
// (kurrentdb://user:pass@node1:2113,node2:2113).
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "(a connection string without a scheme)"
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		user, _, hasPassword := strings.Cut(rest[:at], ":")
		if hasPassword {
			user += ":xxxxx"
		}
		rest = user + rest[at:]
	}
	return scheme + "://" + rest
}

// openEmbedded opens the event store and read models of cfg.DataDir (or,
// when ticketd keeps its events in KurrentDB, that and the read models).
// The read models, and the embedded event store, are ticketd's own files,
// locked while it runs.
func openEmbedded(ctx context.Context, cfg *Config, logger *slog.Logger, ifRunning string) (*backend, error) {
	var (
		store eventStore
		reads *readembedded.Store
		err   error
	)
	if cfg.KurrentDB() {
		// The read models first: a running ticketd is the likelier
		// obstacle, and finding it costs no wait on the network.
		if reads, err = openReadModels(cfg, logger, true, ifRunning); err != nil {
			return nil, err
		}
		if store, err = openKurrentDB(ctx, cfg, logger); err != nil {
			reads.Close()
			return nil, err
		}
	} else {
		// The event store first: it says whether this is ticketd's data
		// directory before anything is created in it.
		if store, err = openEventStore(ctx, cfg, logger, true, ifRunning); err != nil {
			return nil, err
		}
		if reads, err = openReadModels(cfg, logger, false, ifRunning); err != nil {
			store.Close()
			return nil, err
		}
	}
	where := "embedded stores in " + absDir(cfg.DataDir)
	if cfg.KurrentDB() {
		where = fmt.Sprintf("embedded read models in %s, events in KurrentDB at %s", absDir(cfg.DataDir), redactURL(cfg.EventStoreURL))
	}
	reg := commands.NewRegistry()
	return &backend{
		where:       where,
		byteOffsets: cfg.KurrentDB(),
		log:         store,
		models:      readModels(reg, logger, reads.Events(), reads.Bookings(), reads.Payments(), reads.Profiles()),
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

// openReadModels opens the embedded read models of cfg.DataDir. mustExist
// refuses a data directory without them rather than creating them.
func openReadModels(cfg *Config, logger *slog.Logger, mustExist bool, ifRunning string) (*readembedded.Store, error) {
	dir := filepath.Join(cfg.DataDir, "readmodels")
	if mustExist {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no read models in %s (TICKETD_DATA_DIR or --data-dir): is this the data directory of a ticketd that keeps its events in KurrentDB?", absDir(cfg.DataDir))
		}
	}
	reads, err := readembedded.Open(dir, readembedded.Options{Logger: logger})
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			return nil, &dirInUse{dir: absDir(cfg.DataDir), what: ifRunning}
		}
		return nil, err
	}
	return reads, nil
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

// openBackend opens the stores of the configured mode. The distributed
// mode's read models are fed from the Kafka log (their checkpoints are
// positions in it), so they are rebuilt from that log whichever event
// store the services use.
func openBackend(ctx context.Context, cfg *Config, logger *slog.Logger, ifRunning string) (*backend, error) {
	if cfg.Distributed() {
		return openDistributed(ctx, cfg, logger)
	}
	return openEmbedded(ctx, cfg, logger, ifRunning)
}

// newLogger logs to w at the configured level, as text: ticketctl's logs
// are read by a person at a terminal.
func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	level, _ := cfg.logLevel()
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
