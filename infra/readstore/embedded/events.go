package embedded

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/RaduBerinde/btreemap"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/infra/readstore/viewcodec"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

var (
	_ readmodels.VersionedEventReader = (*EventViews)(nil)
	_ projections.EventsStore         = (*EventViews)(nil)
)

// EventViews is the event read model: the reader port of the event
// queries and the store port of the events projector.
type EventViews struct {
	sp *space[eventsGen, *eventsGen]
}

func wrapEvents(sp *space[eventsGen, *eventsGen]) *EventViews { return &EventViews{sp: sp} }

// eventsGen is one generation of the event read model in memory.
type eventsGen struct {
	gen
	mu   sync.RWMutex
	byID map[uuid.UUID]*eventEntry
	// listing holds the scheduled events in listing order.
	listing *btreemap.BTreeMap[timeKey, *eventEntry]
	// seq counts the commits that changed views. It is written under mu
	// (held for writing) after the views, and read under mu with them or
	// alone: a reader that sees a commit's views sees its seq, and while
	// seq is not yet moved on no reader can see that commit's views.
	seq atomic.Uint64

	// holds caches the seat holds the projector wrote through this
	// process, updated after each durable commit like the views. It spares
	// a Pebble read per seat sold or released in a flash sale. A hold not
	// in it (written before a restart, or forgotten for room) is read
	// from Pebble, which stays the truth.
	holdsMu sync.Mutex
	holds   map[uuid.UUID]projections.SeatHold
}

// maxCachedHolds bounds the seat holds kept in memory.
const maxCachedHolds = 200_000

// eventEntry is one event as stored in memory. It is never changed after
// it is published: a commit replaces it.
type eventEntry struct {
	view readmodels.EventView
	key  timeKey
	// The lower-cased name and venue, computed once per change of them
	// rather than once per search.
	name, venue string
}

// btreeDegree suits in-memory indexes of small keys: wide nodes, few
// pointer hops.
const btreeDegree = 32

func newEventsGen(name string, num uint64) *eventsGen {
	g := &eventsGen{
		byID:    map[uuid.UUID]*eventEntry{},
		holds:   map[uuid.UUID]projections.SeatHold{},
		listing: btreemap.New[timeKey, *eventEntry](btreeDegree, compareTimeKeys),
	}
	g.init(name, num)
	return g
}

func loadEventsGen(g *eventsGen, db *pebble.DB) error {
	if err := loadCheckpoint(&g.gen, db); err != nil {
		return err
	}
	return eachView(&g.gen, db, func(_ uuid.UUID, value []byte) error {
		v, err := viewcodec.DecodeEvent(value)
		if err != nil {
			return err
		}
		g.put(v)
		return nil
	})
}

// put publishes v, replacing the event's previous entry. The caller holds
// g.mu for writing (or is the only user of g).
func (g *eventsGen) put(v readmodels.EventView) {
	e := &eventEntry{view: v, key: timeKeyOf(v.StartsAt, v.ID)}
	old := g.byID[v.ID]
	if old != nil && old.view.Name == v.Name && old.view.Venue == v.Venue {
		e.name, e.venue = old.name, old.venue
	} else {
		e.name, e.venue = strings.ToLower(v.Name), strings.ToLower(v.Venue)
	}
	if old != nil && old.view.Status == event.Scheduled {
		g.listing.Delete(old.key)
	}
	if v.Status == event.Scheduled {
		g.listing.ReplaceOrInsert(e.key, e)
	}
	g.byID[v.ID] = e
}

// Checkpoint is the position up to which the events projection has
// committed.
func (v *EventViews) Checkpoint(context.Context) (uint64, error) {
	return v.sp.gen().checkpoint.Load(), nil
}

// Event returns the event id. Its TicketTypes are shared with the store.
func (v *EventViews) Event(_ context.Context, id uuid.UUID) (readmodels.EventView, bool, error) {
	g := v.sp.gen()
	g.mu.RLock()
	e, ok := g.byID[id]
	g.mu.RUnlock()
	if !ok {
		return readmodels.EventView{}, false, nil
	}
	return e.view, true, nil
}

// ListingVersion is the current version of the listing: the active
// generation and the number of commits that changed it.
func (v *EventViews) ListingVersion(context.Context) (readmodels.ListingVersion, error) {
	g := v.sp.gen()
	return readmodels.ListingVersion{Generation: g.num, Seq: g.seq.Load()}, nil
}

// ScheduledEvents returns a page of the listing, walking the ordered index
// from the page's start: a page costs O(log n + page), or more only when a
// text search skips non-matching events.
func (v *EventViews) ScheduledEvents(ctx context.Context, q readmodels.EventListing) ([]readmodels.EventView, error) {
	out, _, err := v.ScheduledEventsAt(ctx, q)
	return out, err
}

// ScheduledEventsAt is ScheduledEvents plus the version of the listing the
// page was read at.
func (v *EventViews) ScheduledEventsAt(_ context.Context, q readmodels.EventListing) ([]readmodels.EventView, readmodels.ListingVersion, error) {
	g := v.sp.gen()
	if q.Limit <= 0 {
		return nil, readmodels.ListingVersion{Generation: g.num, Seq: g.seq.Load()}, nil
	}
	start := btreemap.Min[timeKey]()
	var lower timeKey
	if !q.After.IsZero() {
		lower = timeKeyOf(q.After.StartsAt, q.After.ID)
		start = btreemap.GT(lower)
	}
	if !q.From.IsZero() {
		// uuid.Nil sorts first, so the key starts every event at From.
		if from := timeKeyOf(q.From, uuid.Nil); q.After.IsZero() || compareTimeKeys(from, lower) > 0 {
			start = btreemap.GE(from)
		}
	}
	stop := btreemap.Max[timeKey]()
	if !q.To.IsZero() {
		stop = btreemap.LT(timeKeyOf(q.To, uuid.Nil))
	}
	out := make([]readmodels.EventView, 0, min(q.Limit, readmodels.MaxLimit+1))
	g.mu.RLock()
	version := readmodels.ListingVersion{Generation: g.num, Seq: g.seq.Load()}
	g.listing.AscendFunc(start, stop, func(_ timeKey, e *eventEntry) bool {
		if q.Text == "" || strings.Contains(e.name, q.Text) || strings.Contains(e.venue, q.Text) {
			out = append(out, e.view)
		}
		return len(out) < q.Limit
	})
	g.mu.RUnlock()
	return out, version, nil
}

// SeatHold returns the seats booking holds or bought, as the events
// projection last committed them.
func (v *EventViews) SeatHold(_ context.Context, booking uuid.UUID) (projections.SeatHold, bool, error) {
	g := v.sp.gen()
	g.holdsMu.Lock()
	cached, hit := g.holds[booking]
	g.holdsMu.Unlock()
	if hit {
		return cached, true, nil
	}
	var (
		h  projections.SeatHold
		ok bool
	)
	err := v.sp.store.withDB(func(db *pebble.DB) error {
		value, closer, err := db.Get(g.key(kindHold, booking))
		if errors.Is(err, pebble.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		defer closer.Close()
		h, err = viewcodec.DecodeHold(booking, value)
		ok = err == nil
		return err
	})
	if err != nil {
		return projections.SeatHold{}, false, fmt.Errorf("embedded: seat hold of booking %s: %w", booking, err)
	}
	return h, ok, nil
}

// Commit stores one batch of the events projection atomically and
// durably, then publishes it to readers.
func (v *EventViews) Commit(_ context.Context, c projections.EventsCommit) error {
	events := make([]readmodels.EventView, len(c.Events))
	for i, e := range c.Events {
		// The store keeps its own copy: the projector may reuse its slices.
		e.TicketTypes = slices.Clone(e.TicketTypes)
		events[i] = e
	}
	return v.sp.commit(c.From, c.To, func(g *eventsGen, b *pebble.Batch) error {
		for i := range events {
			data, err := viewcodec.EncodeEvent(&events[i])
			if err != nil {
				return fmt.Errorf("encode event %s: %w", events[i].ID, err)
			}
			if err := b.Set(g.key(kindView, events[i].ID), data, nil); err != nil {
				return err
			}
		}
		for i := range c.Holds {
			data, err := viewcodec.EncodeHold(&c.Holds[i])
			if err != nil {
				return fmt.Errorf("encode seat hold of booking %s: %w", c.Holds[i].BookingID, err)
			}
			if err := b.Set(g.key(kindHold, c.Holds[i].BookingID), data, nil); err != nil {
				return err
			}
		}
		for _, id := range c.Released {
			if err := b.Delete(g.key(kindHold, id), nil); err != nil {
				return err
			}
		}
		return nil
	}, func(g *eventsGen) {
		g.cacheHolds(c.Holds, c.Released)
		if len(events) == 0 {
			return // seat holds only: the listing did not change
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, e := range events {
			g.put(e)
		}
		g.seq.Add(1)
	})
}

// cacheHolds records a commit's seat holds in memory, once it is durable.
func (g *eventsGen) cacheHolds(holds []projections.SeatHold, released []uuid.UUID) {
	g.holdsMu.Lock()
	defer g.holdsMu.Unlock()
	for _, id := range released {
		delete(g.holds, id)
	}
	for _, h := range holds {
		if _, ok := g.holds[h.BookingID]; !ok && len(g.holds) >= maxCachedHolds {
			for k := range g.holds { // forget one arbitrarily: Pebble has it
				delete(g.holds, k)
				break
			}
		}
		g.holds[h.BookingID] = h
	}
}

// Stage returns a fresh, empty version of the event read model for a
// rebuild: run a projector against it from position 0, then Promote it.
// Readers of v do not see it until then.
func (v *EventViews) Stage() (*EventViews, error) {
	sp, err := v.sp.stage()
	if err != nil {
		return nil, err
	}
	return &EventViews{sp: sp}, nil
}

// Promote switches readers and writers of v to the staged version, in
// one durable step, and deletes the version it replaces. Stop the live
// projector and let the staged one catch up to the head first: a live
// projector that commits to v afterwards gets ErrCheckpointConflict, and
// resumes from the promoted version's checkpoint when run again.
func (v *EventViews) Promote(staged *EventViews) error {
	if staged == nil {
		return v.sp.promote(nil)
	}
	return v.sp.promote(staged.sp)
}

// Discard deletes a staged version that will not be promoted.
func (v *EventViews) Discard() error { return v.sp.discard() }
