package embedded

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/RaduBerinde/btreemap"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/infra/readstore/viewcodec"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

var (
	_ readmodels.BookingReader  = (*BookingViews)(nil)
	_ projections.BookingsStore = (*BookingViews)(nil)
)

// BookingViews is the booking read model: the reader port of the booking
// queries (and of the booking saga's deadlines) and the store port of the
// bookings projector.
type BookingViews struct {
	sp *space[bookingsGen, *bookingsGen]
}

func wrapBookings(sp *space[bookingsGen, *bookingsGen]) *BookingViews { return &BookingViews{sp: sp} }

type bookingsGen struct {
	gen
	mu   sync.RWMutex
	byID map[uuid.UUID]*readmodels.BookingView
	// byUser orders every booking by user, then creation, for a user's
	// listing; due orders the bookings awaiting payment by deadline.
	byUser *btreemap.BTreeMap[userKey, *readmodels.BookingView]
	due    *btreemap.BTreeMap[timeKey, struct{}]
}

type userKey struct {
	user uuid.UUID
	at   timeKey
}

func compareUserKeys(a, b userKey) int {
	if c := bytes.Compare(a.user[:], b.user[:]); c != 0 {
		return c
	}
	return compareTimeKeys(a.at, b.at)
}

func userKeyOf(v *readmodels.BookingView) userKey {
	return userKey{user: v.UserID, at: timeKeyOf(v.CreatedAt, v.ID)}
}

var maxID = uuid.UUID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func newBookingsGen(name string, num uint64) *bookingsGen {
	g := &bookingsGen{
		byID:   map[uuid.UUID]*readmodels.BookingView{},
		byUser: btreemap.New[userKey, *readmodels.BookingView](btreeDegree, compareUserKeys),
		due:    btreemap.New[timeKey, struct{}](btreeDegree, compareTimeKeys),
	}
	g.init(name, num)
	return g
}

func loadBookingsGen(g *bookingsGen, db *pebble.DB) error {
	if err := loadCheckpoint(&g.gen, db); err != nil {
		return err
	}
	return eachView(&g.gen, db, func(_ uuid.UUID, value []byte) error {
		v, err := viewcodec.DecodeBooking(value)
		if err != nil {
			return err
		}
		g.put(v)
		return nil
	})
}

func awaiting(v *readmodels.BookingView) bool { return v.Status == booking.StatusAwaitingPayment }

// put publishes v and keeps the indexes in step. The caller holds g.mu for
// writing (or is the only user of g).
func (g *bookingsGen) put(v readmodels.BookingView) {
	nv := &v
	if old := g.byID[v.ID]; old != nil {
		if k := userKeyOf(old); compareUserKeys(k, userKeyOf(nv)) != 0 {
			g.byUser.Delete(k)
		}
		if awaiting(old) {
			g.due.Delete(timeKeyOf(old.ExpiresAt, old.ID))
		}
	}
	g.byID[v.ID] = nv
	g.byUser.ReplaceOrInsert(userKeyOf(nv), nv)
	if awaiting(nv) {
		g.due.ReplaceOrInsert(timeKeyOf(nv.ExpiresAt, nv.ID), struct{}{})
	}
}

// Checkpoint is the position up to which the bookings projection has
// committed.
func (v *BookingViews) Checkpoint(context.Context) (uint64, error) {
	return v.sp.gen().checkpoint.Load(), nil
}

// Booking returns the booking id.
func (v *BookingViews) Booking(_ context.Context, id uuid.UUID) (readmodels.BookingView, bool, error) {
	g := v.sp.gen()
	g.mu.RLock()
	b, ok := g.byID[id]
	g.mu.RUnlock()
	if !ok {
		return readmodels.BookingView{}, false, nil
	}
	return *b, true, nil
}

// UserBookings returns a page of user's bookings, newest first, from the
// index by user: a page costs O(log n + page) whatever the user's total.
func (v *BookingViews) UserBookings(_ context.Context, user uuid.UUID, before readmodels.BookingKey, limit int) ([]readmodels.BookingView, error) {
	if limit <= 0 {
		return nil, nil
	}
	start := btreemap.LE(userKey{user: user, at: timeKey{sec: math.MaxInt64, nsec: math.MaxInt32, id: maxID}})
	if !before.IsZero() {
		start = btreemap.LT(userKey{user: user, at: timeKeyOf(before.CreatedAt, before.ID)})
	}
	stop := btreemap.GE(userKey{user: user, at: timeKey{sec: math.MinInt64}})
	out := make([]readmodels.BookingView, 0, min(limit, readmodels.MaxLimit+1))
	g := v.sp.gen()
	g.mu.RLock()
	g.byUser.DescendFunc(start, stop, func(_ userKey, b *readmodels.BookingView) bool {
		out = append(out, *b)
		return len(out) < limit
	})
	g.mu.RUnlock()
	return out, nil
}

// DueHolds returns the bookings awaiting payment whose hold ran out by
// now, earliest first, from the index by deadline.
func (v *BookingViews) DueHolds(_ context.Context, now time.Time, limit int) ([]uuid.UUID, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []uuid.UUID
	g := v.sp.gen()
	g.mu.RLock()
	g.due.AscendFunc(btreemap.Min[timeKey](), btreemap.LE(timeKeyOf(now, maxID)), func(k timeKey, _ struct{}) bool {
		out = append(out, k.id)
		return len(out) < limit
	})
	g.mu.RUnlock()
	return out, nil
}

// Commit stores one batch of the bookings projection atomically and
// durably, then publishes it to readers.
func (v *BookingViews) Commit(_ context.Context, c projections.BookingsCommit) error {
	return v.sp.commit(c.From, c.To, func(g *bookingsGen, b *pebble.Batch) error {
		for i := range c.Bookings {
			data, err := viewcodec.EncodeBooking(&c.Bookings[i])
			if err != nil {
				return fmt.Errorf("encode booking %s: %w", c.Bookings[i].ID, err)
			}
			if err := b.Set(g.key(kindView, c.Bookings[i].ID), data, nil); err != nil {
				return err
			}
		}
		return nil
	}, func(g *bookingsGen) {
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, b := range c.Bookings {
			g.put(b)
		}
	})
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
