package embedded

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/domain/user"
	"github.com/ticketd/ticketing/infra/readstore/storetest"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/projections/logtest"
	"github.com/ticketd/ticketing/readmodels"
)

func open(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func viewsOf(s *Store) storetest.Views {
	return storetest.Views{Events: s.Events(), Bookings: s.Bookings(), Payments: s.Payments(), Profiles: s.Profiles()}
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Views { return viewsOf(open(t, t.TempDir(), Options{})) })
}

func registry() *es.Registry {
	r := es.NewRegistry()
	booking.Register(r)
	event.Register(r)
	payment.Register(r)
	user.Register(r)
	return r
}

var t0 = time.Date(2030, 3, 1, 10, 0, 0, 0, time.UTC)

// world is a log with something of every kind in it: users, two events,
// a confirmed booking, one awaiting payment past its deadline, a
// rejected one.
type world struct {
	log                 *logtest.Log
	reg                 *es.Registry
	ana                 uuid.UUID
	jazz, opera         uuid.UUID
	paid, waiting, sold uuid.UUID
	pay                 uuid.UUID
}

func newWorld(t testing.TB) *world {
	reg := registry()
	w := &world{
		log: logtest.New(t, reg), reg: reg, ana: uuid.New(),
		jazz: uuid.New(), opera: uuid.New(), paid: uuid.New(), waiting: uuid.New(), sold: uuid.New(), pay: uuid.New(),
	}
	l := w.log
	l.Append(user.Stream(w.ana), w.ana,
		user.Registered{UserID: w.ana, Email: "ana@example.com", Name: "Ana", PasswordHash: "h", Role: user.Customer, At: t0},
		user.ProfileUpdated{Name: "Ana Putri", Phone: "+6281234567890", At: t0.Add(time.Second)})
	l.Append(user.EmailStream("ana@example.com"), w.ana, user.EmailReserved{Email: "ana@example.com", UserID: w.ana, At: t0})
	for _, ev := range []struct {
		id   uuid.UUID
		name string
	}{{w.jazz, "Jazz"}, {w.opera, "Opera"}} {
		l.Append(event.Stream(ev.id), ev.id, event.Created{
			EventID: ev.id, Currency: "IDR", At: t0,
			Details:     event.Details{Name: ev.name, Venue: "Hall", StartsAt: t0.Add(30 * 24 * time.Hour), MaxPerBooking: 10},
			TicketTypes: []event.TicketType{{Name: "A", Price: 100, Capacity: 100}},
		})
	}
	// A paid booking.
	l.Append(booking.Stream(w.paid), w.paid, booking.Placed{BookingID: w.paid, UserID: w.ana, EventID: w.jazz, TicketType: "A", Quantity: 2, At: t0})
	l.Append(event.Stream(w.jazz), w.jazz, event.SeatsHeld{BookingID: w.paid, TicketType: "A", Quantity: 2, UnitPrice: 100, Currency: "IDR", At: t0})
	l.Append(booking.Stream(w.paid), w.paid, booking.AwaitingPayment{UnitPrice: 100, Amount: 200, Currency: "IDR", ExpiresAt: t0.Add(10 * time.Minute), At: t0})
	l.Append(payment.Stream(w.pay), w.pay, payment.Requested{PaymentID: w.pay, BookingID: w.paid, UserID: w.ana, Amount: 200, Currency: "IDR", Token: "tok_success", At: t0})
	l.Append(payment.Stream(w.pay), w.pay, payment.Settled{BookingID: w.paid, GatewayRef: "gw", At: t0.Add(time.Second)})
	l.Append(booking.Stream(w.paid), w.paid, booking.Confirmed{PaymentID: w.pay, At: t0.Add(time.Second)})
	l.Append(event.Stream(w.jazz), w.jazz, event.SeatsSold{BookingID: w.paid, At: t0.Add(time.Second)})
	// A booking whose hold has run out unpaid.
	l.Append(booking.Stream(w.waiting), w.waiting, booking.Placed{BookingID: w.waiting, UserID: w.ana, EventID: w.jazz, TicketType: "A", Quantity: 3, At: t0.Add(time.Minute)})
	l.Append(event.Stream(w.jazz), w.jazz, event.SeatsHeld{BookingID: w.waiting, TicketType: "A", Quantity: 3, UnitPrice: 100, Currency: "IDR", At: t0})
	l.Append(booking.Stream(w.waiting), w.waiting, booking.AwaitingPayment{UnitPrice: 100, Amount: 300, Currency: "IDR", ExpiresAt: t0.Add(11 * time.Minute), At: t0.Add(time.Minute)})
	// A rejected one.
	l.Append(booking.Stream(w.sold), w.sold, booking.Placed{BookingID: w.sold, UserID: w.ana, EventID: w.opera, TicketType: "A", Quantity: 200, At: t0.Add(2 * time.Minute)})
	l.Append(event.Stream(w.opera), w.opera, event.SeatsRefused{BookingID: w.sold, TicketType: "A", Quantity: 200, Reason: event.ReasonSoldOut, At: t0})
	l.Append(booking.Stream(w.sold), w.sold, booking.Rejected{Reason: event.ReasonSoldOut, At: t0.Add(2 * time.Minute)})
	return w
}

func projectors(w *world, s *Store, feed projections.PaymentPublisher) []*projections.Projector {
	return []*projections.Projector{
		projections.NewEvents(w.log, w.reg, s.Events(), nil),
		projections.NewBookings(w.log, w.reg, s.Bookings(), nil),
		projections.NewPayments(w.log, w.reg, s.Payments(), feed, nil),
		projections.NewProfiles(w.log, w.reg, s.Profiles(), nil),
	}
}

func catchUp(t testing.TB, w *world, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	head, _ := w.log.HeadPosition(ctx)
	for _, p := range projectors(w, s, nil) {
		if err := p.CatchUp(ctx, head); err != nil {
			t.Fatalf("%s: %v", p.Name(), err)
		}
	}
}

// snapshot is everything a reader can see of a store, for comparisons.
type snapshot struct {
	Checkpoints [4]uint64
	Events      []readmodels.EventView
	Bookings    []readmodels.BookingView
	Payments    []readmodels.PaymentView
	Profiles    []readmodels.ProfileView
	Due         []uuid.UUID
}

func snap(t testing.TB, w *world, s *Store) snapshot {
	t.Helper()
	ctx := context.Background()
	var out snapshot
	for i, cp := range []func(context.Context) (uint64, error){s.Events().Checkpoint, s.Bookings().Checkpoint, s.Payments().Checkpoint, s.Profiles().Checkpoint} {
		out.Checkpoints[i], _ = cp(ctx)
	}
	page, err := readmodels.NewEventQueries(s.Events()).ListEvents(ctx, readmodels.EventListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	out.Events = page.Items
	bookings, err := readmodels.NewBookingQueries(s.Bookings()).ListUserBookings(ctx, w.ana, readmodels.ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	out.Bookings = bookings.Items
	if p, ok, _ := s.Payments().Payment(ctx, w.pay); ok {
		out.Payments = append(out.Payments, p)
	}
	if p, ok, _ := s.Profiles().Profile(ctx, w.ana); ok {
		out.Profiles = append(out.Profiles, p)
	}
	out.Due, _ = s.Bookings().DueHolds(ctx, t0.Add(time.Hour), 10)
	return out
}

func TestProjectorsFillTheStore(t *testing.T) {
	w := newWorld(t)
	s := open(t, t.TempDir(), Options{})
	catchUp(t, w, s)
	got := snap(t, w, s)

	if len(got.Events) != 2 {
		t.Fatalf("%d events listed, want 2", len(got.Events))
	}
	jazz := got.Events[0]
	if jazz.ID != w.jazz {
		jazz = got.Events[1]
	}
	if tt := jazz.TicketTypes[0]; tt.Held != 3 || tt.Sold != 2 || tt.Available != 95 {
		t.Errorf("jazz seats %+v, want 3 held, 2 sold, 95 available", tt)
	}
	var statuses []booking.Status
	for _, b := range got.Bookings {
		statuses = append(statuses, b.Status)
	}
	if want := []booking.Status{booking.StatusRejected, booking.StatusAwaitingPayment, booking.StatusConfirmed}; !slices.Equal(statuses, want) {
		t.Errorf("ana's bookings %v, want %v (newest first)", statuses, want)
	}
	if got.Bookings[2].PaymentID != w.pay {
		t.Errorf("confirmed booking's payment %s, want %s", got.Bookings[2].PaymentID, w.pay)
	}
	if len(got.Payments) != 1 || got.Payments[0].Status != payment.Succeeded {
		t.Errorf("payments %+v", got.Payments)
	}
	if len(got.Profiles) != 1 || got.Profiles[0].Name != "Ana Putri" {
		t.Errorf("profiles %+v", got.Profiles)
	}
	if !slices.Equal(got.Due, []uuid.UUID{w.waiting}) {
		t.Errorf("due holds %v, want the waiting booking", got.Due)
	}
}

func TestRestartNeitherLosesNorReappliesAnEvent(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	catchUp(t, w, s)
	before := snap(t, w, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir, Options{})
	equal(t, "after reopening", snap(t, w, s), before)

	// Projectors run again from their checkpoints: nothing to apply, and
	// the seats are not counted twice.
	catchUp(t, w, s)
	equal(t, "after running the projectors again", snap(t, w, s), before)

	// New records after the restart are applied, once.
	late := uuid.New()
	w.log.Append(booking.Stream(late), late, booking.Placed{BookingID: late, UserID: w.ana, EventID: w.jazz, TicketType: "A", Quantity: 1, At: t0.Add(time.Hour)})
	w.log.Append(event.Stream(w.jazz), w.jazz, event.SeatsHeld{BookingID: late, TicketType: "A", Quantity: 1, UnitPrice: 100, Currency: "IDR", At: t0})
	catchUp(t, w, s)
	catchUp(t, w, s)
	s.Close()
	s = open(t, dir, Options{})
	after := snap(t, w, s)
	jazz, _, _ := s.Events().Event(context.Background(), w.jazz)
	if tt := jazz.TicketTypes[0]; tt.Held != 4 || tt.Sold != 2 || tt.Available != 94 {
		t.Errorf("jazz seats %+v after one more hold, want 4 held, 2 sold, 94 available", tt)
	}
	if len(after.Bookings) != 4 {
		t.Errorf("%d bookings, want 4", len(after.Bookings))
	}
}

// TestCrashKeepsCommitsWhole crashes the disk under a running projector,
// keeping only what was synced (and, in some runs, some of what was not),
// and checks that the store comes back with its views exactly as of its
// checkpoint: every hold up to it, none after.
func TestCrashKeepsCommitsWhole(t *testing.T) {
	for _, unsynced := range []int{0, 50, 100} {
		t.Run(fmt.Sprintf("%d%% of unsynced writes survive", unsynced), func(t *testing.T) {
			reg := registry()
			log := logtest.New(t, reg)
			log.BatchSize = 7
			ev := uuid.New()
			payloads := []es.Payload{event.Created{
				EventID: ev, Currency: "IDR", At: t0,
				Details:     event.Details{Name: "Hot", StartsAt: t0.Add(time.Hour), MaxPerBooking: 10},
				TicketTypes: []event.TicketType{{Name: "A", Price: 1, Capacity: 1_000_000}},
			}}
			bookings := make([]uuid.UUID, 300)
			for i := range bookings {
				bookings[i] = uuid.New()
				payloads = append(payloads, event.SeatsHeld{BookingID: bookings[i], TicketType: "A", Quantity: 1, At: t0})
			}
			log.Append(event.Stream(ev), ev, payloads...)

			fs := vfs.NewCrashableMem()
			s := open(t, "rm", Options{fs: fs})
			p := projections.NewEvents(log, reg, s.Events(), nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			// Crash somewhere in the middle of the projection.
			if err := p.WaitFor(ctx, 100); err != nil {
				t.Fatal(err)
			}
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(uint64(unsynced), 7))})
			cancel()
			<-done

			r := open(t, "rm", Options{fs: crashed})
			cp, _ := r.Events().Checkpoint(context.Background())
			if cp < 100 {
				t.Fatalf("checkpoint %d after the crash, but 100 was committed before it", cp)
			}
			v, ok, _ := r.Events().Event(context.Background(), ev)
			if !ok || v.TicketTypes[0].Held != int(cp-1) || v.Position != cp {
				t.Fatalf("at checkpoint %d the event shows %d held at position %d, want %d at %d", cp, v.TicketTypes[0].Held, v.Position, cp-1, cp)
			}
			for i, b := range bookings {
				_, ok, err := r.Events().SeatHold(context.Background(), b)
				if err != nil {
					t.Fatal(err)
				}
				if applied := uint64(i+2) <= cp; ok != applied {
					t.Fatalf("hold at position %d present=%v with checkpoint %d", i+2, ok, cp)
				}
			}
			// The projector resumes where the crash left it.
			catchUpOne(t, log, projections.NewEvents(log, reg, r.Events(), nil))
			v, _, _ = r.Events().Event(context.Background(), ev)
			if v.TicketTypes[0].Held != 300 {
				t.Fatalf("held %d after resuming, want 300", v.TicketTypes[0].Held)
			}
		})
	}
}

func catchUpOne(t *testing.T, log *logtest.Log, p *projections.Projector) {
	t.Helper()
	head, _ := log.HeadPosition(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.CatchUp(ctx, head); err != nil {
		t.Fatal(err)
	}
}

func TestRebuildIntoAStagedVersion(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	catchUp(t, w, s)
	want := snap(t, w, s)

	// Simulate a read model gone wrong: an event view that lost its seats.
	broken, _, _ := s.Events().Event(ctx, w.jazz)
	broken.TicketTypes = []readmodels.TicketTypeView{{Name: "A", Price: 100, Capacity: 100, Available: 100}}
	cp, _ := s.Events().Checkpoint(ctx)
	if err := s.Events().Commit(ctx, projections.EventsCommit{From: cp, To: cp, Events: []readmodels.EventView{broken}}); err != nil {
		t.Fatal(err)
	}

	staged, err := s.Events().Stage()
	if err != nil {
		t.Fatal(err)
	}
	head, _ := w.log.HeadPosition(ctx)
	if err := projections.NewEvents(w.log, w.reg, staged, nil).CatchUp(ctx, head); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.Events().Event(ctx, w.jazz); got.TicketTypes[0].Held != 0 {
		t.Fatal("readers saw the staged version before it was promoted")
	}
	if err := s.Events().Promote(staged); err != nil {
		t.Fatal(err)
	}
	equal(t, "after promotion", snap(t, w, s), want)

	if err := s.Events().Promote(staged); err == nil {
		t.Fatal("promoting the same version twice succeeded")
	}

	s.Close()
	s = open(t, dir, Options{})
	equal(t, "after reopening", snap(t, w, s), want)
	assertNoKeysOutside(t, s, projections.NameEvents)
}

func TestAStaleProjectorCannotWriteOverAPromotedVersion(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	s := open(t, t.TempDir(), Options{})
	staged, err := s.Bookings().Stage()
	if err != nil {
		t.Fatal(err)
	}
	head, _ := w.log.HeadPosition(ctx)
	if err := projections.NewBookings(w.log, w.reg, staged, nil).CatchUp(ctx, head); err != nil {
		t.Fatal(err)
	}
	if err := s.Bookings().Promote(staged); err != nil {
		t.Fatal(err)
	}
	// The live projector never ran: it expects checkpoint 0.
	err = s.Bookings().Commit(ctx, projections.BookingsCommit{From: 0, To: 1, Bookings: []readmodels.BookingView{{ID: uuid.New()}}})
	if !errors.Is(err, projections.ErrCheckpointConflict) {
		t.Fatalf("commit = %v, want ErrCheckpointConflict", err)
	}
}

func TestDiscardedStagesLeaveNothingBehind(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	for i := range 2 {
		staged, err := s.Payments().Stage()
		if err != nil {
			t.Fatal(err)
		}
		head, _ := w.log.HeadPosition(ctx)
		if err := projections.NewPayments(w.log, w.reg, staged, nil, nil).CatchUp(ctx, head); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := staged.Discard(); err != nil {
				t.Fatal(err)
			}
		} // the second is abandoned: the next Open deletes it
	}
	s.Close()
	s = open(t, dir, Options{})
	if _, ok, _ := s.Payments().Payment(ctx, w.pay); ok {
		t.Fatal("an unpromoted version became visible")
	}
	assertNoKeysOutside(t, s, projections.NamePayments)
}

// assertNoKeysOutside checks that name has keys only in its active
// generation.
func assertNoKeysOutside(t *testing.T, s *Store, name string) {
	t.Helper()
	active := s.nextGen[name] - 1
	all := dataPrefix(name)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: all, UpperBound: prefixEnd(all)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	want := genPrefix(name, active)
	for ok := it.First(); ok; ok = it.Next() {
		if !slices.Equal(it.Key()[:len(want)], want) {
			t.Fatalf("key %q outside the active generation %d", it.Key(), active)
		}
	}
}

func TestAStoreOfAnotherFormatIsEmptiedForARebuild(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	catchUp(t, w, s)
	if err := s.db.Set([]byte(formatKey), []byte("0"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, Options{})
	if got := snap(t, w, s); got.Checkpoints != [4]uint64{} || len(got.Events)+len(got.Bookings)+len(got.Payments)+len(got.Profiles)+len(got.Due) != 0 {
		t.Fatalf("store of another format still has %+v", got)
	}
	catchUp(t, w, s)
	if got := snap(t, w, s); len(got.Events) != 2 {
		t.Fatalf("rebuilt store lists %d events, want 2", len(got.Events))
	}
}

func TestClosedStoreRefusesWrites(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	s.Close()
	err := s.Profiles().Commit(context.Background(), projections.ProfilesCommit{From: 0, To: 1})
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after close = %v, want ErrClosed", err)
	}
	if _, _, err := s.Events().SeatHold(context.Background(), uuid.New()); !errors.Is(err, ErrClosed) {
		t.Fatalf("seat hold after close = %v, want ErrClosed", err)
	}
}

func equal[V any](t testing.TB, what string, got, want V) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}
