package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/infra/readstore/storetest"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/projections/logtest"
	"github.com/ticketd/ticketing/readmodels"
)

// newPrefix is a key prefix of its own for one test, so that tests share
// a server (with each other, and with anything else on it) without
// flushing anything: the test deletes its own keys when it ends.
func newPrefix(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	url := testServers.Redis(t)
	prefix := "ticketd-test-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { deleteKeys(t, url, prefix) })
	return prefix
}

// deleteKeys deletes every key of prefix.
func deleteKeys(t testing.TB, url, prefix string) {
	keys := keysOf(t, url, prefix)
	if len(keys) == 0 {
		return
	}
	c := rawClient(t, url)
	defer c.Close()
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := c.Unlink(context.Background(), keys[:n]...).Err(); err != nil {
			t.Errorf("delete test keys: %v", err)
			return
		}
		keys = keys[n:]
	}
}

// keysOf lists every key of prefix, sorted.
func keysOf(t testing.TB, url, prefix string) []string {
	t.Helper()
	c := rawClient(t, url)
	defer c.Close()
	var keys []string
	iter := c.Scan(context.Background(), 0, "{"+prefix+":*", 1000).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("scan test keys: %v", err)
	}
	slices.Sort(keys)
	return keys
}

func rawClient(t testing.TB, url string) *goredis.Client {
	t.Helper()
	o, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return goredis.NewClient(o)
}

// openStore opens a store on the test server under prefix, closed when
// the test ends; a second store on the same prefix is a second process.
func openStore(t testing.TB, prefix string, opts Options) *Store {
	t.Helper()
	opts.Prefix = prefix
	s, err := Open(context.Background(), testServers.Redis(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t testing.TB) *Store {
	t.Helper()
	return openStore(t, newPrefix(t), Options{})
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Views { return viewsOf(newStore(t)) })
}

func equal[V any](t testing.TB, what string, got, want V) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

var t0 = time.Date(2030, 3, 1, 10, 0, 0, 0, time.UTC)

func scheduled(name, venue string, startsAt time.Time) readmodels.EventView {
	return readmodels.EventView{
		ID: uuid.New(), Name: name, Venue: venue, StartsAt: startsAt, Currency: "IDR", MaxPerBooking: 10,
		Status:      event.Scheduled,
		TicketTypes: []readmodels.TicketTypeView{{Name: "A", Price: 100, Capacity: 10, Available: 10}},
		CreatedAt:   t0, UpdatedAt: t0, Position: 1,
	}
}

// dump is every key of prefix with its type, value and time to live, to
// tell whether anything was written.
func dump(t *testing.T, url, prefix string) map[string]string {
	t.Helper()
	c := rawClient(t, url)
	defer c.Close()
	ctx := context.Background()
	out := map[string]string{}
	for _, k := range keysOf(t, url, prefix) {
		var v any
		var err error
		switch typ := c.Type(ctx, k).Val(); typ {
		case "string":
			v, err = c.Get(ctx, k).Result()
		case "hash":
			v, err = c.HGetAll(ctx, k).Result()
		case "zset":
			v, err = c.ZRange(ctx, k, 0, -1).Result()
		default:
			t.Fatalf("key %s of unexpected type %s", k, typ)
		}
		if err != nil {
			t.Fatal(err)
		}
		out[k] = fmt.Sprintf("%v ttl=%v", v, c.PTTL(ctx, k).Val() > 0)
	}
	return out
}

func TestAStaleCommitWritesNothing(t *testing.T) {
	ctx := context.Background()
	url := testServers.Redis(t)
	prefix := newPrefix(t)
	s := openStore(t, prefix, Options{})
	ev := scheduled("Jazz", "Hall", t0)
	hold := projections.SeatHold{BookingID: uuid.New(), EventID: ev.ID, TicketType: "A", Quantity: 1}
	if err := s.Events().Commit(ctx, projections.EventsCommit{From: 0, To: 5, Events: []readmodels.EventView{ev}, Holds: []projections.SeatHold{hold}}); err != nil {
		t.Fatal(err)
	}
	bk := readmodels.BookingView{ID: uuid.New(), UserID: uuid.New(), Status: booking.StatusAwaitingPayment, ExpiresAt: t0, CreatedAt: t0}
	if err := s.Bookings().Commit(ctx, projections.BookingsCommit{From: 0, To: 5, Bookings: []readmodels.BookingView{bk}}); err != nil {
		t.Fatal(err)
	}
	before := dump(t, url, prefix)

	moved, cancelled := ev, scheduled("Other", "Hall", t0)
	moved.StartsAt, moved.Name = t0.Add(time.Hour), "Moved"
	cancelled.Status = event.StatusCancelled
	paid := bk
	paid.Status = booking.StatusConfirmed
	for _, from := range []uint64{0, 4, 6} {
		err := s.Events().Commit(ctx, projections.EventsCommit{From: from, To: 9,
			Events:   []readmodels.EventView{moved, cancelled},
			Holds:    []projections.SeatHold{{BookingID: uuid.New(), EventID: ev.ID, TicketType: "A", Quantity: 2}},
			Released: []uuid.UUID{hold.BookingID}})
		if !errors.Is(err, projections.ErrCheckpointConflict) {
			t.Fatalf("events commit from %d = %v, want ErrCheckpointConflict", from, err)
		}
		err = s.Bookings().Commit(ctx, projections.BookingsCommit{From: from, To: 9, Bookings: []readmodels.BookingView{paid}})
		if !errors.Is(err, projections.ErrCheckpointConflict) {
			t.Fatalf("bookings commit from %d = %v, want ErrCheckpointConflict", from, err)
		}
	}
	equal(t, "every key after refused commits", dump(t, url, prefix), before)
}

// TestTwoProjectorInstancesApplyEachRecordOnce runs two projectors of one
// projection, each in its own "process" (its own store connection), over
// a log that grows while they run, as two projector processes kept for
// availability would. Whatever the interleaving, each batch is applied
// by exactly one of them: the event and the holds end exactly as one
// projector alone leaves them.
func TestTwoProjectorInstancesApplyEachRecordOnce(t *testing.T) {
	reg := registry()
	log := logtest.New(t, reg)
	log.BatchSize = 5
	ev := uuid.New()
	log.Append(event.Stream(ev), ev, event.Created{EventID: ev, Currency: "IDR", At: t0,
		Details:     event.Details{Name: "Hot", StartsAt: t0.Add(time.Hour), MaxPerBooking: 10},
		TicketTypes: []event.TicketType{{Name: "A", Price: 1, Capacity: 1_000_000}}})
	prefix := newPrefix(t)
	stores := []*Store{openStore(t, prefix, Options{}), openStore(t, prefix, Options{})}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var conflicts, stale [2]int
	for i, s := range stores {
		p := projections.NewEvents(log, reg, s.Events(), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				err := p.Run(runCtx)
				switch {
				case runCtx.Err() != nil:
				case errors.Is(err, projections.ErrCheckpointConflict):
					conflicts[i]++ // as a supervisor would: run it again
				case errors.Is(err, projections.ErrInconsistent) && storeAhead(s, p):
					// A stale instance applied records the other had
					// already committed on top of the newer views, and
					// met a contradiction before its commit could be
					// refused; it wrote nothing (see the report on the
					// projector's ports).
					stale[i]++
				default:
					t.Errorf("projector %d: %v", i, err)
					return
				}
			}
		}()
	}
	var bookings []uuid.UUID
	for i := range 600 {
		b := uuid.New()
		bookings = append(bookings, b)
		log.Append(event.Stream(ev), ev, event.SeatsHeld{BookingID: b, TicketType: "A", Quantity: 1 + i%3, At: t0})
		if i%3 == 1 {
			log.Append(event.Stream(ev), ev, event.SeatsSold{BookingID: bookings[i-1], At: t0})
		}
		if i%5 == 4 {
			log.Append(event.Stream(ev), ev, event.SeatsReleased{BookingID: bookings[i-3], TicketType: "A", Quantity: 1 + (i-3)%3, At: t0})
		}
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	head, _ := log.HeadPosition(ctx)
	// Either projector may be the one that applies the tail: wait on the
	// store itself.
	for {
		cp, err := stores[0].Events().Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cp >= head {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("checkpoint %d, want %d", cp, head)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	wg.Wait()

	alone := openStore(t, newPrefix(t), Options{})
	catchUp(t, log, projections.NewEvents(log, reg, alone.Events(), nil))
	got, _, _ := stores[1].Events().Event(ctx, ev)
	want, _, _ := alone.Events().Event(ctx, ev)
	equal(t, "the event after two racing projectors", got, want)
	for _, b := range bookings {
		g, ok1, _ := stores[1].Events().SeatHold(ctx, b)
		w, ok2, _ := alone.Events().SeatHold(ctx, b)
		if ok1 != ok2 || g != w {
			t.Fatalf("hold of %s: %+v (%v), want %+v (%v)", b, g, ok1, w, ok2)
		}
	}
	t.Logf("refused commits per instance: %v; stale applies stopped by a contradiction: %v", conflicts, stale)
}

// storeAhead reports whether the store's checkpoint is past p's: p is a
// stale instance.
func storeAhead(s *Store, p *projections.Projector) bool {
	cp, err := s.Events().Checkpoint(context.Background())
	return err == nil && cp > p.Checkpoint()
}

func TestAStaleProjectorCannotWriteOverAPromotedVersion(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2)
	s := newStore(t)
	staged, err := s.Bookings().Stage()
	if err != nil {
		t.Fatal(err)
	}
	catchUp(t, w.log, projections.NewBookings(w.log, w.reg, staged, nil))
	if err := s.Bookings().Promote(staged); err != nil {
		t.Fatal(err)
	}
	// The live projector never ran: it expects checkpoint 0.
	err = s.Bookings().Commit(ctx, projections.BookingsCommit{From: 0, To: 1, Bookings: []readmodels.BookingView{{ID: uuid.New()}}})
	if !errors.Is(err, projections.ErrCheckpointConflict) {
		t.Fatalf("commit = %v, want ErrCheckpointConflict", err)
	}
	if err := s.Bookings().Promote(staged); err == nil {
		t.Fatal("promoting the same version twice succeeded")
	}
	// Another process's handle on the live version sees the promoted one.
	other := openStore(t, s.prefix, Options{})
	cp, _ := other.Bookings().Checkpoint(ctx)
	if want, _ := staged.Checkpoint(ctx); cp != want || cp == 0 {
		t.Fatalf("another process reads checkpoint %d, want the promoted %d", cp, want)
	}
}

// TestPromotionIsAtomicForReaders reads the listing and an event view
// without pause while a rebuild stages, fills and promotes a new version
// in small batches: every read sees the old model whole or the new one
// whole.
func TestPromotionIsAtomicForReaders(t *testing.T) {
	ctx := context.Background()
	prefix := newPrefix(t)
	s := openStore(t, prefix, Options{})
	reader := openStore(t, prefix, Options{}) // another process
	const n = 60
	var old, rebuilt []readmodels.EventView
	for i := range n {
		e := scheduled(fmt.Sprintf("old %d", i), "Hall", t0.Add(time.Duration(i)*time.Minute))
		old = append(old, e)
		r := e
		r.Name, r.Position = fmt.Sprintf("new %d", i), 2
		rebuilt = append(rebuilt, r)
	}
	if err := s.Events().Commit(ctx, projections.EventsCommit{From: 0, To: 1, Events: old}); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var reads, sawNew int
	wg.Add(1)
	go func() {
		defer wg.Done()
		q := readmodels.NewEventQueries(reader.Events())
		for {
			select {
			case <-stop:
				return
			default:
			}
			page, err := q.ListEvents(ctx, readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "100"}})
			if err != nil {
				t.Error(err)
				return
			}
			reads++
			if len(page.Items) != n {
				t.Errorf("a reader saw %d events, want %d", len(page.Items), n)
				return
			}
			kind := strings.Fields(page.Items[0].Name)[0]
			for _, e := range page.Items {
				if !strings.HasPrefix(e.Name, kind+" ") {
					t.Errorf("a reader saw %q and %q in one page", page.Items[0].Name, e.Name)
					return
				}
			}
			if kind == "new" {
				sawNew++
			}
		}
	}()

	staged, err := s.Events().Stage()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 7 {
		cp, _ := staged.Checkpoint(ctx)
		if err := staged.Commit(ctx, projections.EventsCommit{From: cp, To: cp + 1, Events: rebuilt[i:min(i+7, n)]}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := s.Events().Promote(staged); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	if sawNew == 0 || reads == sawNew {
		t.Fatalf("%d reads, %d of the new version: the test saw no switch", reads, sawNew)
	}
	got, _, _ := reader.Events().Event(ctx, old[0].ID)
	equal(t, "the event after the promotion", got, rebuilt[0])
	for _, k := range keysOf(t, testServers.Redis(t), prefix) {
		if strings.Contains(k, ":events}:f1:g1:") {
			t.Errorf("key %s of the replaced version is left", k)
		}
	}
}

func TestStagedVersionsExpireAndDiscardLeavesNothing(t *testing.T) {
	ctx := context.Background()
	url := testServers.Redis(t)
	prefix := newPrefix(t)
	s := openStore(t, prefix, Options{StageTTL: 300 * time.Millisecond})
	w := newWorld(t, 3)
	before := keysOf(t, url, prefix)

	discarded, err := s.Payments().Stage()
	if err != nil {
		t.Fatal(err)
	}
	catchUp(t, w.log, projections.NewPayments(w.log, w.reg, discarded, nil, nil))
	if err := discarded.Discard(); err != nil {
		t.Fatal(err)
	}
	if err := discarded.Discard(); err == nil {
		t.Fatal("discarding twice succeeded")
	}
	equal(t, "keys after a discard", keysOf(t, url, prefix), before)

	abandoned, err := s.Payments().Stage()
	if err != nil {
		t.Fatal(err)
	}
	catchUp(t, w.log, projections.NewPayments(w.log, w.reg, abandoned, nil, nil))
	if p, ok, _ := s.Payments().Payment(ctx, w.payments[0]); ok {
		t.Fatalf("an unpromoted version is visible: %+v", p)
	}
	c := rawClient(t, url)
	defer c.Close()
	for _, k := range keysOf(t, url, prefix) {
		if !slices.Contains(before, k) {
			if ttl := c.PTTL(ctx, k).Val(); ttl <= 0 {
				t.Errorf("staged key %s has no time to live (%v)", k, ttl)
			}
		}
	}
	time.Sleep(400 * time.Millisecond)
	equal(t, "keys after an abandoned stage expired", keysOf(t, url, prefix), before)
	if err := s.Payments().Promote(abandoned); err == nil {
		t.Fatal("an expired stage was promoted")
	}

	promoted, _ := s.Payments().Stage()
	catchUp(t, w.log, projections.NewPayments(w.log, w.reg, promoted, nil, nil))
	if err := s.Payments().Promote(promoted); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	for _, k := range keysOf(t, url, prefix) {
		if ttl := c.PTTL(ctx, k).Val(); ttl != -1 {
			t.Errorf("key %s of the promoted version has a time to live (%v)", k, ttl)
		}
	}
	if _, ok, _ := s.Payments().Payment(ctx, w.payments[0]); !ok {
		t.Fatal("the promoted version is not visible")
	}
	if err := s.Payments().Discard(); err == nil {
		t.Fatal("discarding the live version succeeded")
	}
}

func TestAnActiveVersionThatLostKeysIsRebuilt(t *testing.T) {
	ctx := context.Background()
	url := testServers.Redis(t)
	prefix := newPrefix(t)
	s := openStore(t, prefix, Options{})
	w := newWorld(t, 4)
	catchUp(t, w.log, projections.NewProfiles(w.log, w.reg, s.Profiles(), nil))
	c := rawClient(t, url)
	defer c.Close()
	// As an eviction would: the checkpoint goes, the views stay.
	if err := c.Del(ctx, "{"+prefix+":profiles}:f1:g1:cp").Err(); err != nil {
		t.Fatal(err)
	}
	// The projector, starting again, finds a fresh version to rebuild;
	// so does a process opening the store.
	if cp, err := s.Profiles().Checkpoint(ctx); err != nil || cp != 0 {
		t.Fatalf("checkpoint %d, %v; want a fresh version at 0", cp, err)
	}
	s = openStore(t, prefix, Options{})
	if cp, err := s.Profiles().Checkpoint(ctx); err != nil || cp != 0 {
		t.Fatalf("after reopening: checkpoint %d, %v; want a fresh version at 0", cp, err)
	}
	if _, ok, _ := s.Profiles().Profile(ctx, w.users[0]); ok {
		t.Fatal("the fresh version shows views")
	}
	catchUp(t, w.log, projections.NewProfiles(w.log, w.reg, s.Profiles(), nil))
	if _, ok, _ := s.Profiles().Profile(ctx, w.users[0]); !ok {
		t.Fatal("the rebuilt version lacks a profile")
	}
}

func TestDueHoldsOrderAndLimit(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	now := t0
	var due []readmodels.BookingView
	var all []readmodels.BookingView
	for i := range 300 {
		// Deadlines a nanosecond apart around now, some tied, in no order.
		at := now.Add(time.Duration((i*7919)%250-200) * time.Nanosecond)
		if i%10 == 0 {
			at = now.Add(-time.Duration(i/10) * time.Hour)
		}
		b := readmodels.BookingView{ID: uuid.New(), UserID: uuid.New(), Status: booking.StatusAwaitingPayment, ExpiresAt: at, CreatedAt: t0}
		if i%13 == 0 {
			b.Status = booking.StatusConfirmed
		}
		all = append(all, b)
		if b.Status == booking.StatusAwaitingPayment && !at.After(now) {
			due = append(due, b)
		}
	}
	for i := 0; i < len(all); i += 40 {
		cp, _ := s.Bookings().Checkpoint(ctx)
		if err := s.Bookings().Commit(ctx, projections.BookingsCommit{From: cp, To: cp + 1, Bookings: all[i:min(i+40, len(all))]}); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(due, func(a, b readmodels.BookingView) int {
		return readmodels.BookingKey{CreatedAt: a.ExpiresAt, ID: a.ID}.Compare(readmodels.BookingKey{CreatedAt: b.ExpiresAt, ID: b.ID})
	})
	var want []uuid.UUID
	for _, b := range due {
		want = append(want, b.ID)
	}
	for _, limit := range []int{1, 7, 100, len(want), 10_000} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			got, err := s.Bookings().DueHolds(ctx, now, limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want[:min(limit, len(want))]) {
				t.Fatalf("got %d ids, want the %d earliest of %d in deadline order", len(got), min(limit, len(want)), len(want))
			}
		})
	}
	// Paying the earliest takes it off the index.
	first := due[0]
	first.Status = booking.StatusConfirmed
	cp, _ := s.Bookings().Checkpoint(ctx)
	if err := s.Bookings().Commit(ctx, projections.BookingsCommit{From: cp, To: cp + 1, Bookings: []readmodels.BookingView{first}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Bookings().DueHolds(ctx, now, 1); !slices.Equal(got, want[1:2]) {
		t.Fatalf("after paying the earliest: %v, want %v", got, want[1:2])
	}
}

func TestClosedStoreRefusesWork(t *testing.T) {
	s := newStore(t)
	s.Close()
	ctx := context.Background()
	if err := s.Profiles().Commit(ctx, projections.ProfilesCommit{From: 0, To: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after close = %v, want ErrClosed", err)
	}
	if _, _, err := s.Events().SeatHold(ctx, uuid.New()); !errors.Is(err, ErrClosed) {
		t.Fatalf("seat hold after close = %v, want ErrClosed", err)
	}
	if _, _, err := s.Feed().Subscribe(ctx, uuid.New()); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscribe after close = %v, want ErrClosed", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("ping after close = %v, want ErrClosed", err)
	}
}

func TestOpenRefusesABadPrefix(t *testing.T) {
	if _, err := Open(context.Background(), testServers.Redis(t), Options{Prefix: "a{b}"}); err == nil {
		t.Fatal("a prefix with a hash tag was accepted")
	}
}
