package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
)

// Stable names of the read model projections. A store keys each
// projection's checkpoint and data by its name, so renaming one means
// rebuilding it.
const (
	NameEvents   = "events"
	NameBookings = "bookings"
	NamePayments = "payments"
	NameProfiles = "profiles"
)

var (
	// ErrInconsistent is matched by the error of a projector that met a
	// record contradicting its read model (seats sold for a booking that
	// holds none, an update of an event never created). The log is the
	// truth, so this is a bug in a projector or in the write side; the
	// projector stops rather than guess, and retrying will meet the same
	// record again.
	ErrInconsistent = errors.New("projections: record contradicts the read model")

	// ErrCheckpointConflict is matched by a commit whose expected
	// checkpoint is not the stored one: another projector instance wrote
	// the same projection, or a rebuilt version was promoted under this
	// one. Nothing was written; running the projector again resumes from
	// the stored checkpoint.
	ErrCheckpointConflict = errors.New("projections: checkpoint moved under the projector")

	// ErrRunning refuses a second Run of a projector that is running.
	ErrRunning = errors.New("projections: projector is already running")
)

// Projector keeps one read model up to date with the event log. It
// subscribes to the log from its checkpoint, decodes each batch of records
// the subscription delivers, applies the batch to a working copy of the
// views it touches (so that a thousand SeatsHeld on one event cost one
// write of that event), and commits the changed views together with the
// new checkpoint in one atomic write. A restart therefore resumes exactly
// after the last committed batch: nothing is lost and nothing is applied
// twice.
//
// A record that cannot be decoded, or that contradicts the read model, is
// a bug: Run stops with an error naming its position instead of skipping
// it, since a skipped record would silently corrupt the view for good.
//
// A Projector is safe for concurrent use; Run must not be called again
// while it runs.
type Projector struct {
	name   string
	log    EventLog
	reg    *es.Registry
	filter es.Filter
	proj   projection
	logger *slog.Logger

	// idle is how long WaitFor lets the projector sit still before it
	// looks at the log itself (see WaitFor).
	idle time.Duration

	running atomic.Bool

	mu    sync.Mutex
	pos   uint64        // the checkpoint of the last commit
	moved chan struct{} // closed and replaced whenever pos changes
}

// projection is one read model's part of a projector: where it stands,
// and how it applies and commits a batch.
type projection interface {
	checkpoint(ctx context.Context) (uint64, error)
	// apply applies batch (records with positions above from, in order)
	// and commits the result with the checkpoint moving from from to to.
	apply(ctx context.Context, from, to uint64, batch []decoded) error
}

// decoded is a record with its payload.
type decoded struct {
	rec     *es.Record
	payload es.Payload
}

func newProjector(name string, log EventLog, reg *es.Registry, filter es.Filter, proj projection, logger *slog.Logger) *Projector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Projector{
		name: name, log: log, reg: reg, filter: filter, proj: proj,
		logger: logger.With("projection", name),
		idle:   20 * time.Millisecond,
		moved:  make(chan struct{}),
	}
}

// Name is the projection's stable name.
func (p *Projector) Name() string { return p.name }

// Filter is what the projector subscribes to.
func (p *Projector) Filter() es.Filter { return p.filter }

// Checkpoint is the position of the last record the projection committed
// (records it does not read may lie after it). It is loaded from the store
// when Run starts, and 0 before.
func (p *Projector) Checkpoint() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pos
}

func (p *Projector) state() (uint64, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pos, p.moved
}

func (p *Projector) setCheckpoint(pos uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pos == p.pos {
		return
	}
	p.pos = pos
	close(p.moved)
	p.moved = make(chan struct{})
}

// Run projects the log into the read model until ctx is done, when it
// returns ctx.Err(). Any other return is a failure (a store error, an
// undecodable or contradicting record, a checkpoint conflict): the caller
// logs it and runs the projector again after a backoff, and it resumes
// from its last commit.
func (p *Projector) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return fmt.Errorf("projections: %s: %w", p.name, ErrRunning)
	}
	defer p.running.Store(false)
	for _, t := range p.filter.Types {
		if !p.reg.Known(t) {
			return fmt.Errorf("projections: %s: the registry does not know %q: register every aggregate's events", p.name, t)
		}
	}
	from, err := p.proj.checkpoint(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("projections: %s: load checkpoint: %w", p.name, err)
	}
	p.setCheckpoint(from)
	p.logger.Info("projection running", "checkpoint", from)

	var buf []decoded
	err = p.log.SubscribeAll(ctx, from, p.filter, func(batch []es.Record) error {
		var err error
		buf, err = p.handle(ctx, batch, buf[:0])
		return err
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		err = errors.New("subscription ended")
	}
	return fmt.Errorf("projections: %s: %w", p.name, err)
}

// handle decodes, applies and commits one delivered batch.
func (p *Projector) handle(ctx context.Context, batch []es.Record, buf []decoded) ([]decoded, error) {
	from := p.Checkpoint()
	last := from
	for i := range batch {
		rec := &batch[i]
		// An at-least-once subscription may deliver a record again; the
		// checkpoint tells what is already in the read model.
		if rec.Position <= last || !p.filter.Match(rec) {
			continue
		}
		payload, err := p.reg.Decode(rec)
		if err != nil {
			return buf, fmt.Errorf("record at position %d cannot be decoded: %w", rec.Position, err)
		}
		buf = append(buf, decoded{rec: rec, payload: payload})
		last = rec.Position
	}
	if len(buf) == 0 {
		return buf, nil
	}
	start := time.Now()
	if err := p.proj.apply(ctx, from, last, buf); err != nil {
		// Another instance may have committed this batch already; then
		// the contradiction met here is not a bug but a lost race, and
		// the answer is to resume from the stored checkpoint.
		if !errors.Is(err, ErrCheckpointConflict) {
			if stored, cerr := p.proj.checkpoint(ctx); cerr == nil && stored != from {
				return buf, fmt.Errorf("%w: stored %d, this instance was at %d (%v)", ErrCheckpointConflict, stored, from, err)
			}
		}
		return buf, err
	}
	p.setCheckpoint(last)
	p.logger.Debug("projection committed", "records", len(buf), "checkpoint", last, "took", time.Since(start))
	return buf, nil
}

// WaitFor blocks until the projection has applied every record it reads
// up to log position pos, or ctx is done. It is what gives a client
// read-your-writes: after an append at position pos, a GET that misses
// waits for the projector of its read model, then reads again.
//
// The subscription delivers only the records a projection reads, so the
// checkpoint stops at the last of them. When the projector has been idle
// for a moment short of pos, WaitFor reads the log after the checkpoint
// itself: if nothing up to pos is for this projection, the projection is
// already up to date with pos. So any position works, including the log's
// head, which is how CatchUp ends a rebuild.
func (p *Projector) WaitFor(ctx context.Context, pos uint64) error {
	// Everything for this projection up to covered is applied; blocker,
	// when not 0, is the position of a record for it still to apply.
	var covered, blocker uint64
	idle := time.NewTimer(p.idle)
	defer idle.Stop()
	for {
		cur, moved := p.state()
		covered = max(covered, cur)
		if blocker <= cur {
			blocker = 0
		}
		if covered >= pos {
			return nil
		}
		var tick <-chan time.Time
		if blocker == 0 {
			tick = idle.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-moved:
			idle.Reset(p.idle)
			continue
		case <-tick:
		}
		c, b, err := p.scan(ctx, covered, pos)
		if err != nil {
			return fmt.Errorf("projections: %s: wait for %d: %w", p.name, pos, err)
		}
		covered, blocker = max(covered, c), b
		idle.Reset(p.idle)
	}
}

const scanPage = 256

// scan reads the log after from, up to pos, and returns how far it holds
// nothing for this projection, and the position of the first record that
// is for it, if any. It stops early when the log ends before pos.
func (p *Projector) scan(ctx context.Context, from, pos uint64) (covered, blocker uint64, err error) {
	for from < pos {
		recs, err := p.log.ReadAll(ctx, from, scanPage)
		if err != nil {
			return from, 0, err
		}
		if len(recs) == 0 {
			return from, 0, nil
		}
		for i := range recs {
			r := &recs[i]
			switch {
			case r.Position > pos:
				return pos, 0, nil
			case p.filter.Match(r):
				return from, r.Position, nil
			}
			from = r.Position
		}
	}
	return from, 0, nil
}

// CatchUp runs the projector until it has applied everything up to log
// position target, then stops it. Against a fresh store version and with
// target = the log's head, it is a rebuild; Checkpoint shows the progress.
func (p *Projector) CatchUp(ctx context.Context, target uint64) error {
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- p.Run(runCtx) }()
	waited := make(chan error, 1)
	go func() { waited <- p.WaitFor(runCtx, target) }()
	select {
	case err := <-ran:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	case err := <-waited:
		stop()
		runErr := <-ran
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if runErr != nil && !errors.Is(runErr, context.Canceled) {
			return runErr
		}
		return nil
	}
}

// aggregateID is the id of the aggregate rec belongs to: its AggregateID,
// or else the id in its stream name.
func aggregateID(rec *es.Record, prefix string) (uuid.UUID, error) {
	if rec.AggregateID != uuid.Nil {
		return rec.AggregateID, nil
	}
	if s, ok := strings.CutPrefix(rec.Stream, prefix); ok {
		if id, err := uuid.Parse(s); err == nil {
			return id, nil
		}
	}
	return uuid.Nil, inconsistent(rec, "no aggregate id and no id in the stream name")
}

// inconsistent describes a record the read model cannot apply.
func inconsistent(rec *es.Record, format string, args ...any) error {
	return fmt.Errorf("%w: %s at position %d (%s@%d): %s",
		ErrInconsistent, rec.Type, rec.Position, rec.Stream, rec.Revision, fmt.Sprintf(format, args...))
}

// workset is a batch's working copy of the views it touches: each view is
// loaded once, changed in place by every record of the batch, and written
// once at commit, in the order first touched.
type workset[V any] struct {
	items map[uuid.UUID]*V
	order []uuid.UUID
	// loaded holds views read in bulk ahead of the batch (prime): get
	// takes them from here before asking the store, one by one.
	loaded map[uuid.UUID]V
}

func newWorkset[V any]() workset[V] {
	return workset[V]{items: make(map[uuid.UUID]*V)}
}

// get returns the working copy of view id, loading it with load and
// making it safe to change with own (views from a store share their
// slices). It returns nil when the view does not exist.
func (w *workset[V]) get(ctx context.Context, id uuid.UUID, load func(context.Context, uuid.UUID) (V, bool, error), own func(*V)) (*V, error) {
	if v, ok := w.items[id]; ok {
		return v, nil
	}
	v, ok := w.loaded[id]
	if ok {
		delete(w.loaded, id)
	} else {
		var err error
		if v, ok, err = load(ctx, id); err != nil || !ok {
			return nil, err
		}
	}
	if own != nil {
		own(&v)
	}
	w.put(id, &v)
	return &v, nil
}

// prime makes views read in bulk available to get, without counting them
// as changed: a batch reads the views it will touch in one round trip
// rather than one per view.
func (w *workset[V]) prime(views map[uuid.UUID]V) {
	w.loaded = views
}

// put adds or replaces the working copy of view id.
func (w *workset[V]) put(id uuid.UUID, v *V) {
	if _, ok := w.items[id]; !ok {
		w.order = append(w.order, id)
	}
	w.items[id] = v
}

// values returns the changed views in the order first touched.
func (w *workset[V]) values() []V {
	out := make([]V, len(w.order))
	for i, id := range w.order {
		out[i] = *w.items[id]
	}
	return out
}
