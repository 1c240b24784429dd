package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/infra/readstore/viewcodec"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

var (
	_ readmodels.BookingReader       = (*BookingViews)(nil)
	_ projections.BookingsStore      = (*BookingViews)(nil)
	_ projections.BookingsBulkReader = (*BookingViews)(nil)
)

// BookingViews is the booking read model: the reader port of the booking
// queries (and of the booking saga's deadlines) and the store port of the
// bookings projector.
type BookingViews struct {
	sp *space
}

// Checkpoint is the position up to which the bookings projection has
// committed.
func (v *BookingViews) Checkpoint(ctx context.Context) (uint64, error) {
	return v.sp.checkpoint(ctx)
}

// Booking returns the booking id.
func (v *BookingViews) Booking(ctx context.Context, id uuid.UUID) (readmodels.BookingView, bool, error) {
	return viewByID(ctx, v.sp, "booking", id, viewcodec.DecodeBooking)
}

// Bookings returns the bookings of ids that exist, a round trip per
// thousand ids: the bookings projection reads a batch's views with it.
func (v *BookingViews) Bookings(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]readmodels.BookingView, error) {
	return viewsByID(ctx, v.sp, "bookings", ids, viewcodec.DecodeBooking)
}

// UserBookings returns a page of user's bookings, newest first, from the
// index by user: one round trip reading O(log n + page) entries whatever
// the user's total.
func (v *BookingViews) UserBookings(ctx context.Context, user uuid.UUID, before readmodels.BookingKey, limit int) ([]readmodels.BookingView, error) {
	if limit <= 0 {
		return nil, nil
	}
	u := user.String()
	// Every member of user starts with the user's id: from the least
	// string above all of them (or the cursor's member, exclusive) down
	// to the id itself.
	upper := "(" + string(prefixEnd([]byte(u)))
	if !before.IsZero() {
		upper = "(" + userMember(user, before.CreatedAt, before.ID)
	}
	res, err := v.sp.run(ctx, v.sp.gen, userScript, upper, "["+u, limit).Slice()
	if err != nil {
		return nil, fmt.Errorf("redis: bookings of user %s: %w", user, err)
	}
	out := make([]readmodels.BookingView, 0, len(res))
	for _, r := range res {
		data, ok := r.(string)
		if !ok {
			return nil, fmt.Errorf("redis: bookings of user %s: an index entry has no view", user)
		}
		b, err := viewcodec.DecodeBooking([]byte(data))
		if err != nil {
			return nil, fmt.Errorf("redis: bookings of user %s: %w", user, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// DueHolds returns the bookings awaiting payment whose hold ran out by
// now, earliest first, from the index by deadline: one round trip.
func (v *BookingViews) DueHolds(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error) {
	if limit <= 0 {
		return nil, nil
	}
	res, err := v.sp.run(ctx, v.sp.gen, dueScript, "["+string(sortKey(now, maxIDString)), limit).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redis: due holds: %w", err)
	}
	var out []uuid.UUID
	for _, s := range res {
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("redis: due holds: corrupt index entry: %w", err)
		}
		out = append(out, id)
	}
	return out, nil
}

// Commit stores one batch of the bookings projection atomically: the
// bookings, their places in the indexes by user and by deadline, and the
// move of the checkpoint, in one script that first checks the checkpoint.
func (v *BookingViews) Commit(ctx context.Context, c projections.BookingsCommit) error {
	bookings := lastOfEach(c.Bookings, func(b *readmodels.BookingView) uuid.UUID { return b.ID })
	args := make([]any, 0, 1+4*len(bookings))
	args = append(args, len(bookings))
	for i := range bookings {
		b := &bookings[i]
		data, err := viewcodec.EncodeBooking(b)
		if err != nil {
			return fmt.Errorf("redis: commit bookings: encode booking %s: %w", b.ID, err)
		}
		due := ""
		if b.Status == booking.StatusAwaitingPayment {
			due = dueMember(b.ExpiresAt, b.ID)
		}
		args = append(args, b.ID.String(), data, userMember(b.UserID, b.CreatedAt, b.ID), due)
	}
	return v.sp.commit(ctx, bookingsCommitScript, c.From, c.To, args...)
}

// Stage returns a fresh, empty version of the booking read model for a
// rebuild; see EventViews.Stage.
func (v *BookingViews) Stage() (*BookingViews, error) {
	sp, err := v.sp.stage()
	if err != nil {
		return nil, err
	}
	return &BookingViews{sp: sp}, nil
}

// Promote switches readers and writers of v to the staged version; see
// EventViews.Promote.
func (v *BookingViews) Promote(staged *BookingViews) error {
	if staged == nil {
		return v.sp.promote(nil)
	}
	return v.sp.promote(staged.sp)
}

// Discard deletes a staged version that will not be promoted.
func (v *BookingViews) Discard() error { return v.sp.discard() }
