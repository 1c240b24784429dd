package redis

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

var (
	_ readmodels.EventReader  = (*EventViews)(nil)
	_ projections.EventsStore = (*EventViews)(nil)
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
	data, ok, err := v.sp.getOne(ctx, "v", id.String())
	if err != nil {
		return readmodels.EventView{}, false, fmt.Errorf("redis: event %s: %w", id, err)
	}
	if !ok {
		return readmodels.EventView{}, false, nil
	}
	e, err := decodeEvent(data)
	if err != nil {
		return readmodels.EventView{}, false, fmt.Errorf("redis: event %s: %w", id, err)
	}
	return e, true, nil
}

// ScheduledEvents returns a page of the listing from the sorted set of
// scheduled events: one round trip for a page without text, which reads
// O(log n + page) entries and the page's views. A text search filters the
// index entries in the script, and takes more calls only when it must
// read past searchBudget entries to fill its page; every call of one page
// reads the same version.
func (v *EventViews) ScheduledEvents(ctx context.Context, q readmodels.EventListing) ([]readmodels.EventView, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	start, stop := listingBounds(&q)
	out := make([]readmodels.EventView, 0, min(q.Limit, readmodels.MaxLimit+1))
	gen, lower := v.sp.gen, start
	for restarts := 0; ; {
		res, err := v.sp.run(ctx, gen, listScript, lower, stop, q.Limit-len(out), q.Text, searchBudget).Slice()
		if err != nil {
			return nil, fmt.Errorf("redis: list events: %w", err)
		}
		if len(res) < 2 {
			// The version this page started in was promoted over between
			// two calls of a search: start the page again, in the new one.
			if restarts++; restarts > 3 || v.sp.gen != 0 {
				return nil, fmt.Errorf("redis: list events: the read model version went away")
			}
			gen, lower, out = 0, start, out[:0]
			continue
		}
		for _, r := range res[2:] {
			data, ok := r.(string)
			if !ok {
				return nil, fmt.Errorf("redis: list events: an index entry has no view")
			}
			e, err := decodeEvent([]byte(data))
			if err != nil {
				return nil, fmt.Errorf("redis: list events: %w", err)
			}
			out = append(out, e)
		}
		resume, _ := res[1].(string)
		if resume == "" || len(out) >= q.Limit {
			return out, nil
		}
		g, _ := res[0].(string)
		if gen, err = strconv.ParseUint(g, 10, 64); err != nil {
			return nil, fmt.Errorf("redis: list events: bad generation %q", g)
		}
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
	h, err := decodeHold(booking, data)
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
		data, err := encodeEvent(e)
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
		data, err := encodeHold(&holds[i])
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
