package redis

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/infra/readstore/viewcodec"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

var (
	_ readmodels.EventReader          = (*EventViews)(nil)
	_ readmodels.VersionedEventReader = (*EventViews)(nil)
	_ projections.EventsStore         = (*EventViews)(nil)
)

// EventViews is the event read model: the reader port of the event
// queries and the store port of the events projector.
type EventViews struct {
	sp *space
}

// searchBudget is how many listing entries one call of a search may read.
// A search that finds few matches reads on in further calls, so that no
// single script holds the server for long however large the listing.
const searchBudget = 4096

// Checkpoint is the position up to which the events projection has
// committed.
func (v *EventViews) Checkpoint(ctx context.Context) (uint64, error) {
	return v.sp.checkpoint(ctx)
}

// Event returns the event id.
func (v *EventViews) Event(ctx context.Context, id uuid.UUID) (readmodels.EventView, bool, error) {
	return viewByID(ctx, v.sp, "event", id, viewcodec.DecodeEvent)
}

// ScheduledEvents returns a page of the listing from the sorted set of
// scheduled events: one round trip for a page without text, which reads
// O(log n + page) entries and the page's views. A text search filters the
// index entries in the script, and takes more calls only when it must
// read past searchBudget entries to fill its page; every call of one page
// reads the same version.
func (v *EventViews) ScheduledEvents(ctx context.Context, q readmodels.EventListing) ([]readmodels.EventView, error) {
	out, _, err := v.ScheduledEventsAt(ctx, q)
	return out, err
}

// ListingVersion is the current version of the listing: its generation
// and checkpoint, read in one round trip. Between two versions the
// listing does not change; a rebuild after Redis lost its keys replays
// the same log, so a (generation, checkpoint) pair names the same
// listing again. The zero version says there is no listing yet.
func (v *EventViews) ListingVersion(ctx context.Context) (readmodels.ListingVersion, error) {
	res, err := v.sp.run(ctx, v.sp.gen, versionScript).Slice()
	if err != nil {
		return readmodels.ListingVersion{}, fmt.Errorf("redis: listing version: %w", err)
	}
	if len(res) != 2 {
		return readmodels.ListingVersion{}, nil
	}
	g, _ := res[0].(string)
	cp, _ := res[1].(string)
	return parseVersion(g, cp)
}

func parseVersion(g, cp string) (readmodels.ListingVersion, error) {
	if cp == "" {
		// The active generation lost its checkpoint (evicted keys): its
		// projector replaces it; until then its state has no name.
		return readmodels.ListingVersion{}, nil
	}
	gen, err := strconv.ParseUint(g, 10, 64)
	if err != nil {
		return readmodels.ListingVersion{}, fmt.Errorf("redis: listing version: bad generation %q", g)
	}
	seq, err := strconv.ParseUint(cp, 10, 64)
	if err != nil {
		return readmodels.ListingVersion{}, fmt.Errorf("redis: listing version: bad checkpoint %q", cp)
	}
	// Checkpoint 0 of a generation is a real state (empty); Seq is
	// shifted so that it is not mistaken for the zero version.
	return readmodels.ListingVersion{Generation: gen, Seq: seq + 1}, nil
}

// ScheduledEventsAt is ScheduledEvents plus the version of the listing the
// page was read at. A search that took more than one call reports the
// version only if no commit came between its calls, and the zero version
// otherwise: the page may then mix two states, and must not be cached.
func (v *EventViews) ScheduledEventsAt(ctx context.Context, q readmodels.EventListing) ([]readmodels.EventView, readmodels.ListingVersion, error) {
	if q.Limit <= 0 {
		return nil, readmodels.ListingVersion{}, nil
	}
	start, stop := listingBounds(&q)
	out := make([]readmodels.EventView, 0, min(q.Limit, readmodels.MaxLimit+1))
	gen, lower := v.sp.gen, start
	var version pageVersion
	for restarts := 0; ; {
		res, err := v.sp.run(ctx, gen, listScript, lower, stop, q.Limit-len(out), q.Text, searchBudget).Slice()
		if err != nil {
			return nil, readmodels.ListingVersion{}, fmt.Errorf("redis: list events: %w", err)
		}
		if len(res) < 3 {
			// The version this page started in was promoted over between
			// two calls of a search: start the page again, in the new one.
			if restarts++; restarts > 3 || v.sp.gen != 0 {
				return nil, readmodels.ListingVersion{}, fmt.Errorf("redis: list events: the read model version went away")
			}
			gen, lower, out, version = 0, start, out[:0], pageVersion{}
			continue
		}
		for _, r := range res[3:] {
			data, ok := r.(string)
			if !ok {
				return nil, readmodels.ListingVersion{}, fmt.Errorf("redis: list events: an index entry has no view")
			}
			e, err := viewcodec.DecodeEvent([]byte(data))
			if err != nil {
				return nil, readmodels.ListingVersion{}, fmt.Errorf("redis: list events: %w", err)
			}
			out = append(out, e)
		}
		g, _ := res[0].(string)
		cp, _ := res[2].(string)
		read, err := parseVersion(g, cp)
		if err != nil {
			return nil, readmodels.ListingVersion{}, err
		}
		version.add(read)
		resume, _ := res[1].(string)
		if resume == "" || len(out) >= q.Limit {
			return out, version.page(), nil
		}
		gen = read.Generation
		lower = "(" + resume
	}
}

// listingBounds are the BYLEX bounds of the listing's page: after the
// page's key and from From (whichever is later), before To.
func listingBounds(q *readmodels.EventListing) (start, stop string) {
	var lower []byte
	if !q.After.IsZero() {
		// Members extend their key with text, so the first member after
		// the key's own is at the least string above every extension.
		lower = prefixEnd(sortKey(q.After.StartsAt, q.After.ID.String()))
	}
	if !q.From.IsZero() {
		// uuid.Nil's string sorts first, so the key starts every event at
		// From.
		if from := sortKey(q.From, uuid.Nil.String()); lower == nil || bytes.Compare(from, lower) > 0 {
			lower = from
		}
	}
	start, stop = "-", "+"
	if lower != nil {
		start = "[" + string(lower)
	}
	if !q.To.IsZero() {
		stop = "(" + string(sortKey(q.To, uuid.Nil.String()))
	}
	return start, stop
}

// SeatHold returns the seats booking holds or bought, as the events
// projection last committed them.
func (v *EventViews) SeatHold(ctx context.Context, booking uuid.UUID) (projections.SeatHold, bool, error) {
	data, ok, err := v.sp.getOne(ctx, "h", booking.String())
	if err != nil {
		return projections.SeatHold{}, false, fmt.Errorf("redis: seat hold of booking %s: %w", booking, err)
	}
	if !ok {
		return projections.SeatHold{}, false, nil
	}
	h, err := viewcodec.DecodeHold(booking, data)
	if err != nil {
		return projections.SeatHold{}, false, fmt.Errorf("redis: seat hold of booking %s: %w", booking, err)
	}
	return h, true, nil
}

// Commit stores one batch of the events projection atomically: the
// events, their places in the listing, the seat holds and the move of the
// checkpoint, in one script that first checks the checkpoint.
func (v *EventViews) Commit(ctx context.Context, c projections.EventsCommit) error {
	events := lastOfEach(c.Events, func(e *readmodels.EventView) uuid.UUID { return e.ID })
	holds := lastOfEach(c.Holds, func(h *projections.SeatHold) uuid.UUID { return h.BookingID })
	args := make([]any, 0, 3+3*len(events)+2*len(holds)+len(c.Released))
	args = append(args, len(events), len(holds), len(c.Released))
	for i := range events {
		e := &events[i]
		data, err := viewcodec.EncodeEvent(e)
		if err != nil {
			return fmt.Errorf("redis: commit events: encode event %s: %w", e.ID, err)
		}
		member := ""
		if e.Status == event.Scheduled {
			member = listingMember(e.StartsAt, e.ID, strings.ToLower(e.Name), strings.ToLower(e.Venue))
		}
		args = append(args, e.ID.String(), data, member)
	}
	for i := range holds {
		data, err := viewcodec.EncodeHold(&holds[i])
		if err != nil {
			return fmt.Errorf("redis: commit events: encode seat hold of booking %s: %w", holds[i].BookingID, err)
		}
		args = append(args, holds[i].BookingID.String(), data)
	}
	for _, id := range c.Released {
		args = append(args, id.String())
	}
	return v.sp.commit(ctx, eventsCommitScript, c.From, c.To, args...)
}

// lastOfEach returns items with one item per id, the last given, in the
// order ids first appear. A projector sends each view once; the commit
// scripts rely on it to keep the indexes right, so it is made sure of.
func lastOfEach[T any](items []T, id func(*T) uuid.UUID) []T {
	at := make(map[uuid.UUID]int, len(items))
	out := make([]T, 0, len(items))
	for i := range items {
		k := id(&items[i])
		if j, ok := at[k]; ok {
			out[j] = items[i]
			continue
		}
		at[k] = len(out)
		out = append(out, items[i])
	}
	return out
}

// Stage returns a fresh, empty version of the event read model for a
// rebuild: run a projector against it from position 0, then Promote it.
// Readers of v do not see it until then. A staged version that no commit
// touches for Options.StageTTL is deleted by Redis.
func (v *EventViews) Stage() (*EventViews, error) {
	sp, err := v.sp.stage()
	if err != nil {
		return nil, err
	}
	return &EventViews{sp: sp}, nil
}

// Promote switches readers and writers of v, in every process, to the
// staged version in one atomic step, and deletes the version it replaces.
// Stop the live projector and let the staged one catch up to the head
// first: a live projector that commits to v afterwards gets
// ErrCheckpointConflict, and resumes from the promoted version's
// checkpoint when run again.
func (v *EventViews) Promote(staged *EventViews) error {
	if staged == nil {
		return v.sp.promote(nil)
	}
	return v.sp.promote(staged.sp)
}

// Discard deletes a staged version that will not be promoted.
func (v *EventViews) Discard() error { return v.sp.discard() }

// pageVersion folds the versions that the calls of one page read: the
// page has a version only if every call read the same one, and none when
// a commit came between two of them (the page may mix two states).
type pageVersion struct {
	v     readmodels.ListingVersion
	calls int
	mixed bool
}

func (p *pageVersion) add(read readmodels.ListingVersion) {
	p.calls++
	if p.calls == 1 {
		p.v = read
	} else if read != p.v {
		p.mixed = true
	}
}

func (p *pageVersion) page() readmodels.ListingVersion {
	if p.mixed {
		return readmodels.ListingVersion{}
	}
	return p.v
}
