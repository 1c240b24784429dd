package readmodels

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/fault"
)

// BookingReader is what the booking queries need of the booking read
// model.
//
// UserBookings returns up to limit of user's bookings, newest first
// (CreatedAt descending, then ID descending by bytes), that come strictly
// after before in that order; the zero key starts with the newest.
//
// DueHolds returns the ids of up to limit bookings awaiting payment whose
// ExpiresAt is at or before now, earliest deadline first. It must be
// answered from an index of the bookings awaiting payment ordered by
// deadline: the booking saga polls it every fraction of a second.
type BookingReader interface {
	Booking(ctx context.Context, id uuid.UUID) (BookingView, bool, error)
	UserBookings(ctx context.Context, user uuid.UUID, before BookingKey, limit int) ([]BookingView, error)
	DueHolds(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error)
}

// BookingKey is a booking's place in its user's listing.
type BookingKey struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// IsZero reports whether k is the zero key, which means "from the newest".
func (k BookingKey) IsZero() bool { return k.CreatedAt.IsZero() && k.ID == uuid.Nil }

// Compare orders keys by CreatedAt, then ID (ascending: the listing walks
// it backwards).
func (k BookingKey) Compare(o BookingKey) int {
	if c := k.CreatedAt.Compare(o.CreatedAt); c != 0 {
		return c
	}
	return bytes.Compare(k.ID[:], o.ID[:])
}

// Key returns v's place in its user's listing.
func (v *BookingView) Key() BookingKey { return BookingKey{CreatedAt: v.CreatedAt, ID: v.ID} }

// BookingPage is a page of a user's bookings. NextCursor is empty on the
// last page.
type BookingPage struct {
	Items      []BookingView
	NextCursor string
}

// Bounds of DueHolds' limit.
const (
	DefaultDueHoldsLimit = 100
	MaxDueHoldsLimit     = 10_000
)

// BookingQueries answers the booking service's reads.
type BookingQueries struct {
	bookings BookingReader
}

// NewBookingQueries returns the booking queries over bookings.
func NewBookingQueries(bookings BookingReader) *BookingQueries {
	return &BookingQueries{bookings: bookings}
}

// Booking returns the booking id. An unknown id is a *NotFoundError.
// Whether the caller may see it (owner or admin) is the caller's decision:
// answer someone else's booking as not found too, so as not to reveal it.
func (q *BookingQueries) Booking(ctx context.Context, id uuid.UUID) (BookingView, error) {
	v, ok, err := q.bookings.Booking(ctx, id)
	if err != nil {
		return BookingView{}, fmt.Errorf("readmodels: get booking %s: %w", id, err)
	}
	if !ok {
		return BookingView{}, &NotFoundError{View: "booking", ID: id}
	}
	return v, nil
}

// ListUserBookings returns a page of user's own bookings, newest first.
// Invalid parameters are a *fault.Input naming limit or cursor.
func (q *BookingQueries) ListUserBookings(ctx context.Context, user uuid.UUID, req ListRequest) (BookingPage, error) {
	var in fault.Input
	limit := parseLimit(&in, req.Limit)
	var before BookingKey
	if req.Cursor != "" {
		t, id, ok := decodeCursor(cursorBookings, req.Cursor)
		in.Check(ok, "cursor", "is not a cursor of this listing: pass next_cursor of the previous page as it is")
		before = BookingKey{CreatedAt: t, ID: id}
	}
	if err := in.Err(); err != nil {
		return BookingPage{}, err
	}
	items, err := q.bookings.UserBookings(ctx, user, before, limit+1)
	if err != nil {
		return BookingPage{}, fmt.Errorf("readmodels: list bookings of user %s: %w", user, err)
	}
	page := BookingPage{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		last := &items[limit-1]
		page.NextCursor = encodeCursor(cursorBookings, last.CreatedAt, last.ID)
	}
	return page, nil
}

// DueHolds returns the ids of up to limit bookings whose hold ran out by
// now while they still await payment, earliest deadline first. It is the
// durable deadline source of the booking saga: a hold that ran out while
// the process was down is listed as soon as it is back. A limit of zero or
// less means DefaultDueHoldsLimit; it is capped at MaxDueHoldsLimit.
func (q *BookingQueries) DueHolds(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error) {
	if limit <= 0 {
		limit = DefaultDueHoldsLimit
	}
	limit = min(limit, MaxDueHoldsLimit)
	ids, err := q.bookings.DueHolds(ctx, now, limit)
	if err != nil {
		return nil, fmt.Errorf("readmodels: due holds at %s: %w", now.Format(time.RFC3339), err)
	}
	return ids, nil
}
