package readmodels

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/fault"
)

// EventReader is what the event queries need of the event read model.
//
// ScheduledEvents returns, in listing order (StartsAt ascending, then ID
// ascending by bytes), up to q.Limit scheduled events that come strictly
// after q.After and match q's filters. It must be answered from an index
// kept in that order, not by sorting: the listing is the hottest read.
type EventReader interface {
	Event(ctx context.Context, id uuid.UUID) (EventView, bool, error)
	ScheduledEvents(ctx context.Context, q EventListing) ([]EventView, error)
}

// ListingVersion names one state of the event listing as a reader serves
// it: two reads at the same version return the same pages. Versions are
// only compared for equality, and name states within one process only
// (they may start again when the store is reopened). The zero value means
// "unknown": a page read at an unknown version must not be cached.
type ListingVersion struct {
	// Generation tells apart the versions of the read model (a rebuild
	// promotes a new one); Seq counts the changes within one.
	Generation, Seq uint64
}

// Known reports whether v names a state.
func (v ListingVersion) Known() bool { return v != ListingVersion{} }

// VersionedEventReader is an EventReader that can name the state of the
// listing it answers from, so that callers may cache what they derive from
// a page (its encoded JSON, say) until the listing changes.
//
// ListingVersion returns the current version (one round trip for a
// remote store). ScheduledEventsAt is ScheduledEvents plus the version it
// read, taken atomically with the page: a page is never older than the
// version it is labelled with, and a change that a reader can see has
// already moved the version on.
type VersionedEventReader interface {
	EventReader
	ListingVersion(ctx context.Context) (ListingVersion, error)
	ScheduledEventsAt(ctx context.Context, q EventListing) ([]EventView, ListingVersion, error)
}

// EventKey is an event's place in the listing.
type EventKey struct {
	StartsAt time.Time
	ID       uuid.UUID
}

// IsZero reports whether k is the zero key, which means "from the start".
func (k EventKey) IsZero() bool { return k.StartsAt.IsZero() && k.ID == uuid.Nil }

// Compare orders keys as the listing does.
func (k EventKey) Compare(o EventKey) int {
	if c := k.StartsAt.Compare(o.StartsAt); c != 0 {
		return c
	}
	return bytes.Compare(k.ID[:], o.ID[:])
}

// Key returns v's place in the listing.
func (v *EventView) Key() EventKey { return EventKey{StartsAt: v.StartsAt, ID: v.ID} }

// EventListing selects a page of the listing of scheduled events.
type EventListing struct {
	// After is the key of the last event of the previous page; the zero key
	// starts at the beginning.
	After EventKey
	// From and To bound StartsAt: From <= StartsAt < To. A zero time leaves
	// that side open.
	From, To time.Time
	// Text, when not empty, is lower-cased (strings.ToLower) and selects
	// the events whose lower-cased name or venue contains it.
	Text string
	// Limit is how many events to return at most; it is positive.
	Limit int
}

// Match reports whether v passes the listing's filters (not its After and
// Limit). Adapters that cannot filter in their index may use it.
func (q *EventListing) Match(v *EventView) bool {
	if !q.From.IsZero() && v.StartsAt.Before(q.From) {
		return false
	}
	if !q.To.IsZero() && !v.StartsAt.Before(q.To) {
		return false
	}
	if q.Text == "" {
		return true
	}
	return strings.Contains(strings.ToLower(v.Name), q.Text) || strings.Contains(strings.ToLower(v.Venue), q.Text)
}

// EventListRequest is a request for a page of the event listing, as the
// client sent it; every field may be empty.
type EventListRequest struct {
	ListRequest
	// Q is text to find, case-insensitively, in the name or the venue.
	Q string
	// From and To bound starts_at, each an RFC 3339 timestamp or a date
	// (YYYY-MM-DD, UTC). From is inclusive; a timestamp To is exclusive,
	// and a date To includes that whole day.
	From, To string
}

// EventPage is a page of the listing. NextCursor is empty on the last page.
type EventPage struct {
	Items      []EventView
	NextCursor string
	// Version is the state of the listing the page was read from; the
	// zero version when the reader cannot tell.
	Version ListingVersion
}

// MaxQueryLength bounds the text of a listing search.
const MaxQueryLength = 200

// EventQueries answers the event service's reads.
type EventQueries struct {
	events    EventReader
	versioned VersionedEventReader // events, when it can name versions
}

// NewEventQueries returns the event queries over events.
func NewEventQueries(events EventReader) *EventQueries {
	q := &EventQueries{events: events}
	q.versioned, _ = events.(VersionedEventReader)
	return q
}

// ListingVersion returns the current version of the listing, or the zero
// version when the reader cannot tell (then nothing derived from a page
// may be cached). A page that ListEvents returned with this same version
// is what the listing shows now.
func (q *EventQueries) ListingVersion(ctx context.Context) (ListingVersion, error) {
	if q.versioned == nil {
		return ListingVersion{}, nil
	}
	v, err := q.versioned.ListingVersion(ctx)
	if err != nil {
		return ListingVersion{}, fmt.Errorf("readmodels: listing version: %w", err)
	}
	return v, nil
}

// Event returns the event id, whatever its status: a cancelled event stays
// readable by id. An unknown id is a *NotFoundError.
func (q *EventQueries) Event(ctx context.Context, id uuid.UUID) (EventView, error) {
	v, ok, err := q.events.Event(ctx, id)
	if err != nil {
		return EventView{}, fmt.Errorf("readmodels: get event %s: %w", id, err)
	}
	if !ok {
		return EventView{}, &NotFoundError{View: "event", ID: id}
	}
	return v, nil
}

// ParseEventList validates a listing request. Every invalid parameter is
// reported at once, as a *fault.Input naming the fields limit, cursor, q,
// from and to.
func ParseEventList(req EventListRequest) (EventListing, error) {
	var in fault.Input
	q := EventListing{Limit: parseLimit(&in, req.Limit)}
	if req.Cursor != "" {
		t, id, ok := decodeCursor(cursorEvents, req.Cursor)
		in.Check(ok, "cursor", "is not a cursor of this listing: pass next_cursor of the previous page as it is")
		q.After = EventKey{StartsAt: t, ID: id}
	}
	text := strings.TrimSpace(req.Q)
	in.Check(utf8.RuneCountInString(text) <= MaxQueryLength, "q", fmt.Sprintf("must be at most %d characters", MaxQueryLength))
	q.Text = strings.ToLower(text)
	q.From = parseTime(&in, "from", req.From, false)
	q.To = parseTime(&in, "to", req.To, true)
	if !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From) {
		in.Add("to", "must be after from")
	}
	if err := in.Err(); err != nil {
		return EventListing{}, err
	}
	return q, nil
}

// ListEvents returns a page of the scheduled events, by starts_at then id.
// Invalid parameters are a *fault.Input.
func (q *EventQueries) ListEvents(ctx context.Context, req EventListRequest) (EventPage, error) {
	listing, err := ParseEventList(req)
	if err != nil {
		return EventPage{}, err
	}
	limit := listing.Limit
	// One more than asked tells whether there is a next page without a
	// second query.
	listing.Limit++
	var (
		items   []EventView
		version ListingVersion
	)
	if q.versioned != nil {
		items, version, err = q.versioned.ScheduledEventsAt(ctx, listing)
	} else {
		items, err = q.events.ScheduledEvents(ctx, listing)
	}
	if err != nil {
		return EventPage{}, fmt.Errorf("readmodels: list events: %w", err)
	}
	page := EventPage{Items: items, Version: version}
	if len(items) > limit {
		page.Items = items[:limit]
		last := &items[limit-1]
		page.NextCursor = encodeCursor(cursorEvents, last.StartsAt, last.ID)
	}
	return page, nil
}
