// Package embedded is the default read model store: every view in memory,
// indexed for the queries, and durable in Pebble so that a restart neither
// loses nor re-applies an event.
//
// # Memory and disk
//
// Reads are answered from memory only: a map by id per view, and ordered
// indexes (B-trees) for the event listing (scheduled events by starts_at,
// id), a user's bookings (user, created_at, id) and the holds awaiting
// payment (expires_at, id). Views in memory are immutable: a commit
// replaces them, so a reader holds a read lock only while it copies a few
// structs out, and never while the disk is written.
//
// Each projector commit is one Pebble batch, synced, holding the changed
// views and the projection's new checkpoint: after a crash a projection
// has either all of a batch or none of it, and its checkpoint says which.
// Only then is memory updated. Open loads the views back into memory.
//
// The seat holds of the events projection are its private state, read
// only by the projector: they stay on disk (Pebble's caches keep the hot
// ones) rather than in memory.
//
// # Versions
//
// Each projection's data lives under a generation number, and a small key
// names the active generation of each. A rebuild stages a fresh generation
// (Stage), runs a projector against it from position 0, and Promote
// switches readers to it in one synced write and one pointer swap: readers
// never see a half-built model. Leftovers of abandoned generations are
// deleted when the store opens.
//
// # Key layout
//
//	m/format                        format version of this layout
//	a/<projection>                  active generation (8 bytes, big-endian)
//	d/<projection>/<gen>/c          checkpoint (8 bytes, big-endian)
//	d/<projection>/<gen>/v<id>      a view (JSON, see codec.go), id as 16 bytes
//	d/<projection>/<gen>/h<id>      a seat hold of the events projection
//
// where <gen> is 8 bytes, big-endian.
package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/projections"
)

// format is the version of the key layout and view encoding. Read models
// are derived data: a store written in another format is emptied when it
// opens, and the projectors rebuild it from the log.
const format = "1"

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("embedded: read store closed")

// Options tunes a Store. The zero value is a good default.
type Options struct {
	// Logger receives the store's and Pebble's messages (Pebble's
	// informational ones at debug level). Nil discards them.
	Logger *slog.Logger

	// fs replaces the operating system's file system; tests use a
	// crashable in-memory one.
	fs vfs.FS
}

// Store holds every read model. Its views are reached through Events,
// Bookings, Payments and Profiles, each of which is both the reader port
// the queries use and the store port its projector commits to.
type Store struct {
	db     *pebble.DB
	logger *slog.Logger

	// mu guards closed: disk access takes it for reading, Close for
	// writing, so that nothing touches a closed Pebble.
	mu     sync.RWMutex
	closed bool

	// promoteMu serialises Stage and Promote and guards nextGen.
	promoteMu sync.Mutex
	nextGen   map[string]uint64

	events   *EventViews
	bookings *BookingViews
	payments *PaymentViews
	profiles *ProfileViews
}

// Open opens (creating it if needed) the store in dir, for example
// <data>/readmodels, and loads every view into memory.
func Open(dir string, opts Options) (*Store, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	po := &pebble.Options{Logger: pebbleLogger{logger}, FS: opts.fs}
	if opts.fs == nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("embedded: open read store: %w", err)
		}
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("embedded: open read store in %s: %w", dir, err)
	}
	s := &Store{db: db, logger: logger, nextGen: map[string]uint64{}}
	if err := s.load(); err != nil {
		return nil, errors.Join(fmt.Errorf("embedded: open read store in %s: %w", dir, err), db.Close())
	}
	return s, nil
}

func (s *Store) load() error {
	if err := s.checkFormat(); err != nil {
		return err
	}
	var err error
	if s.events, err = openSpace(s, projections.NameEvents, newEventsGen, loadEventsGen, wrapEvents); err != nil {
		return err
	}
	if s.bookings, err = openSpace(s, projections.NameBookings, newBookingsGen, loadBookingsGen, wrapBookings); err != nil {
		return err
	}
	if s.payments, err = openSpace(s, projections.NamePayments, newPaymentsGen, loadPaymentsGen, wrapPayments); err != nil {
		return err
	}
	if s.profiles, err = openSpace(s, projections.NameProfiles, newProfilesGen, loadProfilesGen, wrapProfiles); err != nil {
		return err
	}
	return nil
}

// checkFormat empties a store written in another format.
func (s *Store) checkFormat() error {
	v, closer, err := s.db.Get([]byte(formatKey))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read format: %w", err)
	default:
		same := string(v) == format
		closer.Close()
		if same {
			return nil
		}
		s.logger.Warn("read models were written in another format: emptying them for a rebuild from the log", "format", string(v), "want", format)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange([]byte("a/"), []byte("e"), nil); err != nil {
		return err
	}
	if err := b.Set([]byte(formatKey), []byte(format), nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// Close closes the store. Views read before stay valid.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("embedded: close read store: %w", err)
	}
	return nil
}

// Events is the event read model.
func (s *Store) Events() *EventViews { return s.events }

// Bookings is the booking read model.
func (s *Store) Bookings() *BookingViews { return s.bookings }

// Payments is the payment read model.
func (s *Store) Payments() *PaymentViews { return s.payments }

// Profiles is the profile read model.
func (s *Store) Profiles() *ProfileViews { return s.profiles }

// withDB runs f with the database, unless the store is closed.
func (s *Store) withDB(f func(db *pebble.DB) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return f(s.db)
}

const formatKey = "m/format"

func activeKey(name string) []byte { return []byte("a/" + name) }

// dataPrefix is the prefix of every key of one projection, all
// generations.
func dataPrefix(name string) []byte { return []byte("d/" + name + "/") }

// genPrefix is the prefix of every key of one generation of a projection.
func genPrefix(name string, num uint64) []byte {
	return append(binary.BigEndian.AppendUint64(dataPrefix(name), num), '/')
}

// prefixEnd is the smallest key greater than every key starting with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

const (
	kindCheckpoint = 'c'
	kindView       = 'v'
	kindHold       = 'h'
)

// gen is one generation of one projection: where its keys live, its
// checkpoint, and the lock that makes its commits one at a time.
type gen struct {
	name   string
	num    uint64
	prefix []byte

	// commitMu serialises commits, so that checking the checkpoint and
	// writing the batch are one step. retired, under it, refuses commits
	// to a generation that a promotion replaced.
	commitMu sync.Mutex
	retired  bool

	checkpoint atomic.Uint64
}

func (g *gen) init(name string, num uint64) {
	g.name, g.num, g.prefix = name, num, genPrefix(name, num)
}

func (g *gen) base() *gen { return g }

func (g *gen) key(kind byte, id uuid.UUID) []byte {
	k := make([]byte, 0, len(g.prefix)+1+16)
	k = append(k, g.prefix...)
	k = append(k, kind)
	return append(k, id[:]...)
}

func (g *gen) checkpointKey() []byte { return append(append([]byte(nil), g.prefix...), kindCheckpoint) }

// generation is what every projection's in-memory state embeds.
type generation interface{ base() *gen }

// space is the handle of one projection's data: the generation readers and
// writers use now, swapped atomically by Promote.
type space[T any, G interface {
	*T
	generation
}] struct {
	store  *Store
	name   string
	cur    atomic.Pointer[T]
	fresh  func(name string, num uint64) G
	staged atomic.Bool
}

func (sp *space[T, G]) gen() G { return G(sp.cur.Load()) }

// openSpace loads the active generation of projection name, deleting the
// other generations' leftovers, and wraps it in the projection's handle.
func openSpace[T any, G interface {
	*T
	generation
}, H any](s *Store, name string, fresh func(string, uint64) G, load func(G, *pebble.DB) error, wrap func(*space[T, G]) H) (H, error) {
	var zero H
	num := uint64(1)
	v, closer, err := s.db.Get(activeKey(name))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := s.db.Set(activeKey(name), binary.BigEndian.AppendUint64(nil, num), pebble.Sync); err != nil {
			return zero, fmt.Errorf("%s: %w", name, err)
		}
	case err != nil:
		return zero, fmt.Errorf("%s: read active generation: %w", name, err)
	default:
		if len(v) != 8 {
			closer.Close()
			return zero, fmt.Errorf("%s: corrupt active generation key of %d bytes", name, len(v))
		}
		num = binary.BigEndian.Uint64(v)
		closer.Close()
	}
	// Generations other than the active one are rebuilds that were
	// abandoned or promoted over: their keys are garbage.
	all, active := dataPrefix(name), genPrefix(name, num)
	b := s.db.NewBatch()
	err = errors.Join(b.DeleteRange(all, active, nil), b.DeleteRange(prefixEnd(active), prefixEnd(all), nil), b.Commit(pebble.NoSync), b.Close())
	if err != nil {
		return zero, fmt.Errorf("%s: delete old generations: %w", name, err)
	}
	g := fresh(name, num)
	start := time.Now()
	if err := load(g, s.db); err != nil {
		return zero, fmt.Errorf("%s: load generation %d: %w", name, num, err)
	}
	s.logger.Info("read model loaded", "projection", name, "generation", num,
		"checkpoint", g.base().checkpoint.Load(), "took", time.Since(start))
	s.nextGen[name] = num + 1
	sp := &space[T, G]{store: s, name: name, fresh: fresh}
	sp.cur.Store((*T)(g))
	return wrap(sp), nil
}

// loadCheckpoint reads the checkpoint of g into it.
func loadCheckpoint(g *gen, db *pebble.DB) error {
	v, closer, err := db.Get(g.checkpointKey())
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	if len(v) != 8 {
		return fmt.Errorf("corrupt checkpoint of %d bytes", len(v))
	}
	g.checkpoint.Store(binary.BigEndian.Uint64(v))
	return nil
}

// eachView calls f with the encoded value of every view of g.
func eachView(g *gen, db *pebble.DB, f func(id uuid.UUID, value []byte) error) (err error) {
	lower := append(append([]byte(nil), g.prefix...), kindView)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, it.Close()) }()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(lower)+16 {
			return fmt.Errorf("corrupt view key %x", k)
		}
		id, _ := uuid.FromBytes(k[len(lower):])
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if err := f(id, v); err != nil {
			return fmt.Errorf("view %s: %w", id, err)
		}
	}
	return nil
}

// stage returns a handle on a fresh, empty generation of the projection,
// invisible to readers of sp until promoted.
func (sp *space[T, G]) stage() (*space[T, G], error) {
	s := sp.store
	s.promoteMu.Lock()
	defer s.promoteMu.Unlock()
	if err := s.withDB(func(*pebble.DB) error { return nil }); err != nil {
		return nil, fmt.Errorf("embedded: stage %s: %w", sp.name, err)
	}
	num := s.nextGen[sp.name]
	s.nextGen[sp.name] = num + 1
	st := &space[T, G]{store: s, name: sp.name, fresh: sp.fresh}
	st.staged.Store(true)
	st.cur.Store((*T)(sp.fresh(sp.name, num)))
	return st, nil
}

// promote makes staged's generation the one readers and writers of sp
// use, durably, and deletes the generation it replaces.
func (sp *space[T, G]) promote(staged *space[T, G]) error {
	s := sp.store
	if staged == nil || staged.store != s || staged.name != sp.name {
		return fmt.Errorf("embedded: promote %s: not a version staged from this store's %s", sp.name, sp.name)
	}
	s.promoteMu.Lock()
	defer s.promoteMu.Unlock()
	if !staged.staged.Load() {
		return fmt.Errorf("embedded: promote %s: the version was already promoted or discarded", sp.name)
	}
	old, next := sp.gen().base(), staged.gen().base()
	old.commitMu.Lock()
	next.commitMu.Lock()
	err := s.withDB(func(db *pebble.DB) error {
		return db.Set(activeKey(sp.name), binary.BigEndian.AppendUint64(nil, next.num), pebble.Sync)
	})
	if err == nil {
		old.retired = true
		sp.cur.Store(staged.cur.Load())
		staged.staged.Store(false)
	}
	next.commitMu.Unlock()
	old.commitMu.Unlock()
	if err != nil {
		return fmt.Errorf("embedded: promote %s generation %d: %w", sp.name, next.num, err)
	}
	s.logger.Info("read model version promoted", "projection", sp.name, "generation", next.num, "checkpoint", next.checkpoint.Load())
	// Garbage from here on: if this fails or the process stops first,
	// the next Open deletes it.
	if err := s.withDB(func(db *pebble.DB) error {
		return db.DeleteRange(old.prefix, prefixEnd(old.prefix), pebble.NoSync)
	}); err != nil {
		s.logger.Warn("old read model version not deleted", "projection", sp.name, "generation", old.num, "err", err)
	}
	return nil
}

// discard deletes a staged generation that will not be promoted.
func (sp *space[T, G]) discard() error {
	s := sp.store
	s.promoteMu.Lock()
	defer s.promoteMu.Unlock()
	if !sp.staged.Load() {
		return fmt.Errorf("embedded: discard %s: not a staged version", sp.name)
	}
	g := sp.gen().base()
	g.commitMu.Lock()
	g.retired = true
	g.commitMu.Unlock()
	sp.staged.Store(false)
	return s.withDB(func(db *pebble.DB) error {
		return db.DeleteRange(g.prefix, prefixEnd(g.prefix), pebble.NoSync)
	})
}

// commit writes one projector batch: write adds the views to the Pebble
// batch, the checkpoint is added, the batch is committed with a sync, and
// only then apply updates memory. from must be the stored checkpoint.
func (sp *space[T, G]) commit(from, to uint64, write func(g G, b *pebble.Batch) error, apply func(g G)) error {
	g := sp.gen()
	base := g.base()
	base.commitMu.Lock()
	defer base.commitMu.Unlock()
	if base.retired {
		return fmt.Errorf("embedded: commit %s: generation %d was replaced: %w", sp.name, base.num, projections.ErrCheckpointConflict)
	}
	if cp := base.checkpoint.Load(); cp != from {
		return fmt.Errorf("embedded: commit %s: stored checkpoint is %d, the batch expects %d: %w", sp.name, cp, from, projections.ErrCheckpointConflict)
	}
	if to < from {
		return fmt.Errorf("embedded: commit %s: checkpoint would move back from %d to %d", sp.name, from, to)
	}
	err := sp.store.withDB(func(db *pebble.DB) error {
		b := db.NewBatch()
		defer b.Close()
		if err := write(g, b); err != nil {
			return err
		}
		if err := b.Set(base.checkpointKey(), binary.BigEndian.AppendUint64(nil, to), nil); err != nil {
			return err
		}
		return b.Commit(pebble.Sync)
	})
	if err != nil {
		return fmt.Errorf("embedded: commit %s up to %d: %w", sp.name, to, err)
	}
	apply(g)
	base.checkpoint.Store(to)
	return nil
}

// pebbleLogger routes Pebble's messages to slog. Fatalf panics because
// Pebble calls it only on invariant violations after which it cannot go
// on.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble", "store", "readmodels")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble", "store", "readmodels")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble", "store", "readmodels")
	panic("embedded: read store: pebble: " + msg)
}
