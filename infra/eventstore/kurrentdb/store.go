// Package kurrentdb is the event store adapter for KurrentDB (formerly
// EventStoreDB), for when one machine is no longer enough: it implements
// the same ports as the embedded store (commands.EventStore,
// commands.SnapshotStore, projections.EventLog) over the gRPC client
// github.com/EventStore/EventStore-Client-Go/v4 (package esdb).
//
// It needs KurrentDB or EventStoreDB 22.10 or later: older servers do not
// report an event's $all position when a stream is read, and the port's
// records carry it.
//
// # Mapping
//
// A record's id is the event id, its type the event type; everything else
// the server has no field for (schema version, aggregate, correlation and
// causation ids, time, Meta) travels in the event's metadata as JSON (see
// codec.go). Revision is the event's stream revision and Position its
// commit position in $all: positions grow with commit order but are log
// offsets, not consecutive numbers, which the port allows.
//
// # Where KurrentDB differs from the port
//
//   - Event ids are deduplicated only where KurrentDB looks for them: an
//     append whose ids are already stored at exactly the revisions it
//     would take succeeds without storing them again (the idempotent retry
//     the port promises, also after the stream has moved on), but there is
//     no index of ids. Other reuses are not reported as
//     es.ErrDuplicateEventID: under "no stream" or an exact revision, ids
//     stored elsewhere in the same stream make the append fail as a
//     conflict (*es.ConflictError); in another stream, or under "any"
//     after an id that is new, they are stored again. The adapter itself
//     refuses an id repeated within one append, with
//     es.ErrDuplicateEventID.
//   - Under "any" or "stream exists", KurrentDB recognises a retry from a
//     bounded in-memory cache of recently written ids: a retry that comes
//     after the cache has moved on (or after a server restart) is stored
//     again. Retries under "no stream" or an exact revision are checked
//     against the stream itself and always recognised; command handlers
//     append with those.
//   - ReadAll and SubscribeAll skip KurrentDB's own events (streams and
//     event types starting with "$") and the adapter's snapshot events; so
//     does HeadPosition.
//   - Positions are byte offsets in KurrentDB's log. A position that is not
//     where an event starts (other than 0) costs ReadAll and SubscribeAll a
//     search for the nearest event before it (see read.go); positions the
//     store handed out never do.
//   - Streams and event types starting with "$" are KurrentDB's and are
//     refused by Append; a stream deleted in KurrentDB reads as
//     es.ErrStreamNotFound and refuses appends with ErrStreamDeleted.
//   - Acknowledged means durable as KurrentDB defines it: written and
//     flushed on the leader and, in a cluster, replicated to a quorum.
//
// # Connections
//
// The client connects lazily and reconnects by itself after transport
// errors. When it gives up (its node discovery failed, for example while
// the server restarted), the store replaces it on the next call, so that a
// long-running process recovers once the server is back.
package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/projections"
)

var (
	_ commands.EventStore    = (*Store)(nil)
	_ commands.SnapshotStore = (*Store)(nil)
	_ projections.EventLog   = (*Store)(nil)
)

// Options tunes a Store. The zero value is a good default.
type Options struct {
	// Logger receives the adapter's notices (a subscription dropped and
	// resumed) and, at debug level, the gRPC client's own log lines. Nil
	// means slog.Default().
	Logger *slog.Logger
	// BatchWindow is how long a subscription waits, after a record
	// arrives, for more records to hand over in the same call: while
	// catching up, batches fill at once; live, it bounds the delay a
	// record can see. Zero means 2ms.
	BatchWindow time.Duration
	// MaxBatch caps the records of one call of a subscription's handler.
	// Zero means 512.
	MaxBatch int
}

const (
	defaultBatchWindow = 2 * time.Millisecond
	defaultMaxBatch    = 512
)

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BatchWindow <= 0 {
		o.BatchWindow = defaultBatchWindow
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = defaultMaxBatch
	}
	return o
}

// Store is the KurrentDB event store. It is safe for concurrent use.
type Store struct {
	cfg  *esdb.Configuration
	opts Options
	log  *slog.Logger

	// mu guards closed and client. Every call registers in inflight under
	// mu (shared) after checking closed, so that Close, which sets closed
	// under mu (exclusive) and then waits for inflight, closes the client
	// only once nobody uses it: the client panics when it is used
	// concurrently with its Close.
	mu       sync.RWMutex
	closed   bool
	client   *esdb.Client
	inflight sync.WaitGroup

	// life ends when Close starts; it cancels every call in flight and
	// ends subscriptions.
	life      context.Context
	stop      context.CancelFunc
	closeOnce sync.Once
	closeErr  error

	// snapshotMeta holds the snapshot streams whose $maxCount this
	// process has made sure of.
	snapshotMeta sync.Map
}

// Open connects to the KurrentDB server or cluster named by connString, a
// kurrentdb://, kurrentdb+discover://, esdb:// or esdb+discover://
// connection string (for example "kurrentdb://admin:changeit@localhost:2113"
// or "kurrentdb://localhost:2113?tls=false").
//
// Open checks that the server answers within ctx, that the credentials
// may read $all and that the server is recent enough (22.10 or later).
func Open(ctx context.Context, connString string, opts Options) (*Store, error) {
	cfg, err := parseConnString(connString)
	if err != nil {
		return nil, err
	}
	s, err := newStore(cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// newStore returns a store over a client that has not connected yet.
func newStore(cfg *esdb.Configuration, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	cfg.Logger = clientLogger(opts.Logger)
	client, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: open: %w", err)
	}
	life, stop := context.WithCancel(context.Background())
	return &Store{cfg: cfg, opts: opts, log: opts.Logger, client: client, life: life, stop: stop}, nil
}

// check makes the first call of the store: it connects, reads $all and
// asks the server's version. The client's discovery does not watch ctx,
// so the check runs aside; if ctx ends first, the store closes once the
// check has returned.
func (s *Store) check(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.probe(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			_ = s.Close()
			return err
		}
		return nil
	case <-ctx.Done():
		go func() {
			<-done
			_ = s.Close()
		}()
		return fmt.Errorf("kurrentdb: open: %w", ctx.Err())
	}
}

func (s *Store) probe(ctx context.Context) error {
	o, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("kurrentdb: open: %w", err)
	}
	defer o.done()
	rs, err := o.client.ReadAll(o.ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err == nil {
		_, err = rs.Recv()
		rs.Close()
		if errors.Is(err, io.EOF) {
			err = nil
		}
	}
	if err != nil {
		return s.fail(ctx, o, "open: read $all", err)
	}
	v, err := o.client.GetServerVersion()
	if err != nil {
		return s.fail(ctx, o, "open: server version", err)
	}
	return supportedVersion(*v)
}

// supportedVersion refuses servers that do not report an event's $all
// position on stream reads (added in 22.6; 22.10 is the first long-term
// release with it). A server that does not report its version at all
// predates 21.10.
func supportedVersion(v esdb.ServerVersion) error {
	if v == (esdb.ServerVersion{}) {
		return errors.New("kurrentdb: open: the server does not report its version, so it predates EventStoreDB 21.10; KurrentDB or EventStoreDB 22.10 or later is required")
	}
	if v.Major < 22 || (v.Major == 22 && v.Minor < 10) {
		return fmt.Errorf("kurrentdb: open: server version %d.%d.%d is too old; KurrentDB or EventStoreDB 22.10 or later is required (older servers do not report positions on stream reads)", v.Major, v.Minor, v.Patch)
	}
	return nil
}

// Close ends every call in flight and every subscription (they return
// errors matching es.ErrClosed), waits for them, and closes the
// connection. Later calls fail with es.ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.stop()
		s.inflight.Wait()
		s.mu.RLock()
		client := s.client
		s.mu.RUnlock()
		if err := client.Close(); err != nil {
			s.closeErr = fmt.Errorf("kurrentdb: close: %w", err)
		}
	})
	return s.closeErr
}

// op is one call of the store in flight.
type op struct {
	// ctx ends when the caller's context ends or the store closes.
	ctx    context.Context
	client *esdb.Client
	done   func()
}

// begin registers a call, or fails with es.ErrClosed.
func (s *Store) begin(ctx context.Context) (op, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return op{}, es.ErrClosed
	}
	s.inflight.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(s.life, cancel)
	return op{ctx: ctx, client: s.client, done: func() {
		unhook()
		cancel()
		s.inflight.Done()
	}}, nil
}

// current returns the client new calls use (a subscription that resumes
// takes the one in use then, not the one it started with).
func (s *Store) current() *esdb.Client {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.client
}

// fail turns the error of a call into what the store returns: the
// caller's context error if the caller gave up, es.ErrClosed if the store
// closed under the call, and otherwise err with what was being done. When
// the client reports that it has given up on its connection, the store
// replaces it so that the next call connects afresh.
func (s *Store) fail(ctx context.Context, o op, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("kurrentdb: %s: %w", what, ctxErr)
	}
	if s.life.Err() != nil {
		return fmt.Errorf("kurrentdb: %s: %w", what, es.ErrClosed)
	}
	if code, ok := clientCode(err); ok && code == esdb.ErrorCodeConnectionClosed {
		s.renew(o.client)
	}
	return fmt.Errorf("kurrentdb: %s: %w", what, err)
}

// renew replaces old, a client that closed itself, by a new one. The old
// client is not closed: its connection goroutine has already ended, and
// closing it would panic a call still finishing inside it.
func (s *Store) renew(old *esdb.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.client != old {
		return
	}
	client, err := esdb.NewClient(s.cfg)
	if err != nil {
		// The configuration was valid when the store opened.
		s.log.Error("kurrentdb: cannot replace the closed client", "err", err)
		return
	}
	s.log.Warn("kurrentdb: the client gave up on its connection; reconnecting with a new one")
	s.client = client
}

// clientLogger routes the gRPC client's log lines to l at debug level:
// everything the client logs as an error is also returned to the store,
// which reports it where it matters.
func clientLogger(l *slog.Logger) esdb.LoggingFunc {
	return func(level esdb.LogLevel, format string, args ...any) {
		if !l.Enabled(context.Background(), slog.LevelDebug) {
			return
		}
		// Some of the client's calls hand their arguments over as one
		// slice.
		if len(args) == 1 {
			if inner, ok := args[0].([]any); ok {
				args = inner
			}
		}
		l.Debug(fmt.Sprintf(format, args...), "component", "kurrentdb-client", "level", level)
	}
}
