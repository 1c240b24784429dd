// Package embedded is the default event store: a single-node store on
// local disk built on Pebble, the LSM storage engine of CockroachDB.
//
// # Durability and order
//
// Every append goes through one committer goroutine. It takes the appends
// queued since its last batch, checks each against the stream heads it
// keeps in memory, assigns revisions and global positions and writes them
// as one Pebble batch. A second goroutine, the syncer, then syncs the WAL
// once for every batch written since its previous sync, and only then are
// the appends acknowledged: acknowledged means durable, and 64 concurrent
// writers cost a few fsyncs, not 64. While one sync runs, the committer
// already writes the next batch.
//
// Because one goroutine assigns positions and writes batches in order,
// positions are contiguous (1, 2, 3, ...) and a batch becomes durable
// after every batch before it. Pebble makes a batch visible to readers as
// soon as it is written, before it is synced, so readers never look past
// the durable head that the syncer publishes: a subscriber cannot see a
// record that a crash could still take back, and it cannot see position
// n+1 before position n.
//
// # Layout
//
// The log maps big-endian positions to encoded records; a stream index maps
// (stream, revision) to a position and an event-id index maps event ids to
// positions (see codec.go). An in-memory Bloom filter in front of the id
// index keeps the check that an append's ids are new off Pebble's
// memtables (see idfilter.go). Snapshots live in their own keyspace and are
// written without a sync: they are a cache.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/projections"
)

var (
	_ commands.EventStore    = (*Store)(nil)
	_ commands.SnapshotStore = (*Store)(nil)
	_ projections.EventLog   = (*Store)(nil)
)

// Options tunes a Store. The zero value is a good default for one node.
type Options struct {
	// CacheSize is the size in bytes of Pebble's block cache, which keeps
	// recently read blocks of the log and indexes in memory. Zero means
	// 64 MiB. The store reserves twice MemTableSize on top of it, because
	// Pebble charges its memtables to the same cache.
	CacheSize int64
	// MemTableSize is the size in bytes of Pebble's memtable. Recent
	// records are read from it by subscribers and by the stream-head
	// checks, so a larger one saves disk reads and makes for fewer,
	// larger flushes; it also sets how much WAL is replayed after a
	// crash. Zero means 64 MiB.
	MemTableSize uint64
	// MaxGroupSize caps how many appends the committer puts in one
	// Pebble batch. Batches are synced together, so this bounds the work
	// between two looks at the queue rather than the appends per fsync.
	// Zero means 512.
	MaxGroupSize int
	// StreamCacheSize caps how many stream heads (last revision and
	// position) the committer keeps in memory; a head that is not cached
	// costs one index lookup. Zero means 100,000.
	StreamCacheSize int
	// Logger receives Pebble's log messages (informational ones at debug
	// level). Nil means slog.Default().
	Logger *slog.Logger
}

const (
	defaultCacheSize       = 64 << 20
	defaultMemTableSize    = 64 << 20
	defaultMaxGroupSize    = 512
	defaultStreamCacheSize = 100_000
	// maxGroupBytes bounds the encoded size of one group, so that a burst
	// of large appends becomes several commits instead of one huge batch.
	maxGroupBytes = 16 << 20
)

func (o Options) withDefaults() Options {
	if o.CacheSize <= 0 {
		o.CacheSize = defaultCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = defaultMemTableSize
	}
	if o.MaxGroupSize <= 0 {
		o.MaxGroupSize = defaultMaxGroupSize
	}
	if o.StreamCacheSize <= 0 {
		o.StreamCacheSize = defaultStreamCacheSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// ErrDirInUse is matched (with errors.Is) by the error Open returns when
// the data directory is already open, in another process or this one.
var ErrDirInUse = errors.New("embedded: data directory is in use")

type dirInUseError struct {
	dir    string
	holder string
	cause  error
}

func (e *dirInUseError) Error() string {
	msg := fmt.Sprintf("embedded: data directory %s is in use by %s; stop it or use another data directory", e.dir, e.holder)
	if e.cause != nil {
		msg += " (" + e.cause.Error() + ")"
	}
	return msg
}

func (e *dirInUseError) Is(target error) bool { return target == ErrDirInUse }
func (e *dirInUseError) Unwrap() error        { return e.cause }

// openDirs holds the absolute paths of the directories open in this
// process. Pebble's lock only reports "lock held by current process" as an
// untyped error; checking here first gives a clear, typed one.
var openDirs sync.Map

// Store is the embedded event store. It is safe for concurrent use.
type Store struct {
	dir  string
	db   *pebble.DB
	lock *pebble.Lock
	opts Options

	// mu guards closed. Readers and appenders hold it shared while they
	// use db or the request queue; Close takes it exclusively, so that
	// once it has, nobody touches either again (Pebble panics on use
	// after Close).
	mu     sync.RWMutex
	closed bool
	// closing is closed when Close starts: it wakes live subscribers and
	// tells the committer to fail what is still queued.
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error

	reqs          chan *appendReq
	committer     *committer // owned by its goroutine once started
	committerDone chan struct{}

	// ids filters the event-id checks; filterDone is closed when its
	// background build ends.
	ids        *idFilter
	filterDone chan struct{}

	// durable is the position of the last record whose group is synced.
	// Readers never read past it.
	durable atomic.Uint64
	// wakeMu guards wake, which is closed and replaced every time durable
	// moves, so that live subscribers wait without polling.
	wakeMu sync.Mutex
	wake   chan struct{}

	// Counters for tests and benchmarks: WAL syncs, and the appends that
	// stored records and were acknowledged by them.
	syncs   atomic.Uint64
	appends atomic.Uint64
}

// Open opens the event store in dir, creating it if needed. Only one Store
// may have a directory open at a time; otherwise Open returns an error
// matching ErrDirInUse.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("embedded: open: empty data directory")
	}
	opts = opts.withDefaults()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	if _, loaded := openDirs.LoadOrStore(abs, struct{}{}); loaded {
		return nil, &dirInUseError{dir: abs, holder: "another store in this process"}
	}
	s, err := open(abs, opts)
	if err != nil {
		openDirs.Delete(abs)
		return nil, err
	}
	s.start()
	return s, nil
}

// start starts the committer and the build of the id filter. The build
// reads the ids stored before the committer writes anything; the
// committer adds the ones it writes.
func (s *Store) start() {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagID}, UpperBound: []byte{tagID + 1}})
	if err != nil {
		s.opts.Logger.Error("embedded: event-id filter not built; every append checks ids in Pebble", "err", err)
		close(s.filterDone)
	} else {
		go s.buildIDFilter(it)
	}
	go s.committer.run()
}

// buildIDFilter adds every id of the index to the filter and then marks
// it ready. It gives up when the store closes.
func (s *Store) buildIDFilter(it *pebble.Iterator) {
	defer close(s.filterDone)
	seg := s.ids.segments[0]
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n%4096 == 0 {
			select {
			case <-s.closing:
				_ = it.Close()
				return
			default:
			}
		}
		if k := it.Key(); len(k) == 17 {
			seg.add(maphash.Comparable(s.ids.seed, uuid.UUID(k[1:])))
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		s.opts.Logger.Error("embedded: event-id filter not built; every append checks ids in Pebble", "err", err)
		return
	}
	s.ids.ready.Store(true)
}

func open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	lock, err := pebble.LockDirectory(dir, vfs.Default)
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			return nil, &dirInUseError{dir: dir, holder: "another ticketd process", cause: err}
		}
		return nil, fmt.Errorf("embedded: lock %s: %w", dir, err)
	}
	// Pebble charges its memtables to the block cache. Size the cache so
	// that the blocks keep CacheSize while one memtable fills and the
	// previous one flushes; otherwise the memtables crowd the filter and
	// index blocks out, and every event-id check reads them from disk.
	cache := pebble.NewCache(opts.CacheSize + 2*int64(opts.MemTableSize))
	defer cache.Unref()
	popts := &pebble.Options{
		Cache:        cache,
		Lock:         lock,
		MemTableSize: opts.MemTableSize,
		// Let a full memtable flush while the next one fills, instead of
		// stalling appends behind the flush.
		MemTableStopWritesThreshold: 4,
		// Pinned to this Pebble's newest stable format: new stores get
		// the current sstable format, old ones are ratcheted up on open.
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{opts.Logger},
	}
	// Bloom filters make the event-id check of every append, which
	// almost always misses, cheap on every level.
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("embedded: open %s: %w", dir, err), lock.Close())
	}
	s := &Store{
		dir:           dir,
		db:            db,
		lock:          lock,
		opts:          opts,
		closing:       make(chan struct{}),
		reqs:          make(chan *appendReq, opts.MaxGroupSize),
		committerDone: make(chan struct{}),
		filterDone:    make(chan struct{}),
		wake:          make(chan struct{}),
	}
	head, err := s.init()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("embedded: open %s: %w", dir, err), db.Close(), lock.Close())
	}
	s.durable.Store(head)
	// Every stored record has one id and positions are contiguous, so
	// head is the number of ids to build the filter for.
	s.ids = newIDFilter(head)
	s.committer = newCommitter(s, head)
	return s, nil
}

// init checks (or, for a new directory, writes) the layout marker and
// returns the last position in the log.
func (s *Store) init() (uint64, error) {
	v, closer, err := s.db.Get(formatKey)
	switch {
	case err == nil:
		defer closer.Close()
		if len(v) != 1 || v[0] != layoutVersion {
			return 0, fmt.Errorf("unsupported layout version %v (this build reads %d)", v, layoutVersion)
		}
	case errors.Is(err, pebble.ErrNotFound):
		it, err := s.db.NewIter(nil)
		if err != nil {
			return 0, err
		}
		nonEmpty := it.First()
		if err := it.Close(); err != nil {
			return 0, err
		}
		if nonEmpty {
			return 0, errors.New("the directory holds a Pebble database that is not a ticketd event store")
		}
		if err := s.db.Set(formatKey, []byte{layoutVersion}, pebble.Sync); err != nil {
			return 0, err
		}
	default:
		return 0, err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagLog}, UpperBound: []byte{tagLog + 1}})
	if err != nil {
		return 0, err
	}
	var head uint64
	if it.Last() {
		if len(it.Key()) != 9 {
			return 0, errors.Join(fmt.Errorf("%w: log key %x", errCorrupt, it.Key()), it.Close())
		}
		head = positionOf(it.Key())
	}
	return head, it.Close()
}

// Close stops the committer, fails the appends still queued with
// es.ErrClosed, ends subscriptions with es.ErrClosed and closes Pebble.
// Appends already acknowledged are durable. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		// Appenders send while holding mu shared and after checking
		// closed, so no send can follow this close.
		close(s.reqs)
		<-s.committerDone
		<-s.filterDone
		s.closeErr = errors.Join(s.db.Close(), s.lock.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("embedded: close %s: %w", s.dir, s.closeErr)
		}
		openDirs.Delete(s.dir)
	})
	return s.closeErr
}

// HeadPosition returns the position of the last durable record, 0 if the
// store is empty.
func (s *Store) HeadPosition(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, fmt.Errorf("embedded: head position: %w", es.ErrClosed)
	}
	return s.durable.Load(), nil
}

// publish makes the records up to pos visible to readers and wakes live
// subscribers.
func (s *Store) publish(pos uint64) {
	s.wakeMu.Lock()
	s.durable.Store(pos)
	close(s.wake)
	s.wake = make(chan struct{})
	s.wakeMu.Unlock()
}

// headAndWake returns the durable head and a channel closed once it moves
// past that value; reading both under one lock is what keeps a subscriber
// from missing the wake-up for a commit that lands in between.
func (s *Store) headAndWake() (uint64, <-chan struct{}) {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	return s.durable.Load(), s.wake
}

// pebbleLogger routes Pebble's messages to slog. Fatalf panics because
// Pebble calls it only on invariant violations after which it cannot go
// on; a panic at least leaves the decision to the process.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l.Enabled(context.Background(), slog.LevelDebug) {
		p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble")
	panic("embedded: pebble: " + msg)
}
