package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/user"
	"github.com/ticketd/ticketing/infra/bus/inproc"
	"github.com/ticketd/ticketing/infra/checkpoint"
	"github.com/ticketd/ticketing/infra/eventstore/embedded"
	"github.com/ticketd/ticketing/projections"
)

// world is a history written by the real command handlers and the real
// booking saga: users who register and update their profiles, events that
// are updated and one that is cancelled, and bookings that end every way
// a booking can. The ids let a test read every view back.
type world struct {
	users, events, bookings, payments []uuid.UUID
}

// worldSize says how much history to write.
type worldSize struct {
	users, events, bookings int
	// workers drive bookings concurrently; the store group-commits their
	// appends.
	workers int
}

var smallWorld = worldSize{users: 8, events: 4, bookings: 48, workers: 8}

// testClock is a clock the test moves forward, to let holds run out.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// plainHasher keeps histories fast to write: argon2id costs tens of
// milliseconds a hash, and these passwords guard nothing.
type plainHasher struct{}

func (plainHasher) Hash(p string) (string, error) { return "plain:" + p, nil }
func (plainHasher) Verify(h, p string) bool       { return h == "plain:"+p }

// aggregateLookup answers the payments service from the booking aggregate
// (ticketd answers it from the booking read model, which this history has
// not built yet).
type aggregateLookup struct{ bookings *commands.Bookings }

func (l aggregateLookup) PayableBooking(ctx context.Context, id uuid.UUID) (commands.PayableBooking, bool, error) {
	b, err := l.bookings.Booking(ctx, id, uuid.Nil, true)
	if errors.Is(err, commands.ErrBookingNotFound) {
		return commands.PayableBooking{}, false, nil
	}
	if err != nil {
		return commands.PayableBooking{}, false, err
	}
	return commands.PayableBooking{UserID: b.UserID, Status: b.Status, Amount: b.Amount, Currency: b.Currency, ExpiresAt: b.ExpiresAt}, true, nil
}

// openEventStore opens (creating) the embedded event store of a data dir.
func openTestEventStore(t testing.TB, dataDir string) *embedded.Store {
	t.Helper()
	store, err := embedded.Open(filepath.Join(dataDir, "eventstore"), embedded.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// writeHistory writes a history of size into store, with the booking saga
// running as ticketd runs it, and returns once the saga has handled all
// of it.
func writeHistory(t testing.TB, store *embedded.Store, size worldSize) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	reg := commands.NewRegistry()
	clock := &testClock{}
	repo := commands.NewRepository(store, reg, clock.now)
	users := commands.NewUsers(repo, plainHasher{})
	desk := commands.NewEventDesk(repo, store, logger)
	// The desk's writers are left to stop on their own when idle (after
	// two minutes) rather than waited for with a short IdleAfter: a
	// writer that times out just as a decision is queued to it leaves the
	// decision waiting for ever (EventDesk.do sends after releasing the
	// lock under which the writer decides to stop).
	bookings := commands.NewBookings(repo, 10*time.Minute)
	payments := commands.NewPayments(repo, aggregateLookup{bookings})
	router := commands.NewRouter()
	router.RouteEvents(desk, router)
	router.RoutePayments(payments)
	saga := commands.NewBookingSaga(bookings, router, logger)
	checkpoints := checkpoint.NewMemory(map[string]uint64{})
	runner := inproc.NewRunner(store, reg, checkpoints, store, logger, nil)
	runner.SaveEvery = 10 * time.Millisecond
	sagaCtx, stopSaga := context.WithCancel(ctx)
	sagaDone := make(chan error, 1)
	go func() { sagaDone <- runner.Run(sagaCtx, saga) }()
	defer func() {
		stopSaga()
		<-sagaDone
	}()

	w := &world{}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("history: %s: %v", what, err)
		}
	}
	for i := range size.users {
		u, err := users.Register(ctx, commands.NewMsg(), commands.RegisterUser{
			UserID: uuid.New(), Email: fmt.Sprintf("user%d-%s@example.com", i, uuid.NewString()[:8]),
			Password: "correct horse", Name: fmt.Sprintf("User %d", i), Role: user.Customer,
		})
		must("register", err)
		w.users = append(w.users, u.ID)
		if i%3 == 0 {
			name, phone := fmt.Sprintf("User %d Putri", i), "+62812000"+fmt.Sprint(i)
			_, err := users.UpdateProfile(ctx, commands.NewMsg(), commands.UpdateProfile{UserID: u.ID, Name: &name, Phone: &phone})
			must("update profile", err)
		}
	}
	for i := range size.events {
		id := uuid.New()
		_, err := desk.CreateEvent(ctx, commands.NewMsg(), commands.CreateEvent{
			EventID: id, Currency: "IDR",
			Details: event.Details{
				Name: fmt.Sprintf("Concert %d", i), Description: "music", Venue: []string{"Istora", "JIExpo", "Teater Jakarta"}[i%3],
				StartsAt: clock.now().Add(time.Duration(30+i) * 24 * time.Hour).Truncate(time.Second), MaxPerBooking: 4,
			},
			TicketTypes: []event.TicketType{{Name: "general", Price: 150_000, Capacity: 100_000}, {Name: "vip", Price: 500_000, Capacity: 50_000}},
		})
		must("create event", err)
		w.events = append(w.events, id)
		if i%2 == 1 {
			venue := "Gedung Kesenian"
			capacity := 200_000
			_, err := desk.UpdateEvent(ctx, commands.NewMsg(), commands.UpdateEvent{EventID: id, Venue: &venue, TicketTypes: []commands.TicketTypeChange{{Name: "general", Capacity: &capacity}}})
			must("update event", err)
		}
	}

	// Bookings, each taken along one of the ways a booking goes.
	var (
		mu      sync.Mutex
		unpaid  []uuid.UUID // left awaiting payment: they expire below
		failure error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if failure == nil {
			failure = err
		}
	}
	wait := func(id uuid.UUID, want booking.Status) error {
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, err := bookings.Booking(ctx, id, uuid.Nil, true)
			if err == nil && b.Status == want {
				return nil
			}
			if err != nil && !errors.Is(err, commands.ErrBookingNotFound) {
				return err
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("booking %s is %s, not %s", id, b.Status, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	pay := func(id, userID uuid.UUID, succeed bool) (uuid.UUID, error) {
		msg := commands.NewMsg()
		p, err := payments.Process(ctx, msg, commands.ProcessPayment{BookingID: id, UserID: userID, Token: "tok_success"})
		if err != nil {
			return uuid.Nil, fmt.Errorf("process payment: %w", err)
		}
		_, err = payments.Settle(ctx, commands.NewMsg(), commands.SettlePayment{PaymentID: p.ID, Succeeded: succeed, GatewayRef: "gw-" + p.ID.String()[:8], FailureReason: "card_declined"})
		return p.ID, err
	}
	book := func(n int) error {
		id, userID, eventID := uuid.New(), w.users[n%len(w.users)], w.events[n%len(w.events)]
		ticketType := []string{"general", "vip"}[n%2]
		way := n % 6
		if way == 5 {
			ticketType = "balcony" // the event has none: refused, rejected
		}
		mu.Lock()
		w.bookings = append(w.bookings, id)
		mu.Unlock()
		if _, err := bookings.Place(ctx, commands.NewMsg(), commands.PlaceBooking{BookingID: id, UserID: userID, EventID: eventID, TicketType: ticketType, Quantity: 1 + n%3}); err != nil {
			return fmt.Errorf("place: %w", err)
		}
		if way == 5 {
			return wait(id, booking.StatusRejected)
		}
		if err := wait(id, booking.StatusAwaitingPayment); err != nil {
			return err
		}
		record := func(p uuid.UUID) {
			mu.Lock()
			w.payments = append(w.payments, p)
			mu.Unlock()
		}
		switch way {
		case 0, 2: // paid, confirmed; the second kind then cancelled and refunded
			p, err := pay(id, userID, true)
			if err != nil {
				return err
			}
			record(p)
			if err := wait(id, booking.StatusConfirmed); err != nil {
				return err
			}
			if way == 2 {
				if _, err := bookings.Cancel(ctx, commands.NewMsg(), commands.CancelBooking{BookingID: id, CallerID: userID}); err != nil {
					return fmt.Errorf("cancel: %w", err)
				}
			}
		case 1: // declined, then left to expire
			p, err := pay(id, userID, false)
			if err != nil {
				return err
			}
			record(p)
			mu.Lock()
			unpaid = append(unpaid, id)
			mu.Unlock()
		case 3: // cancelled while awaiting payment
			if _, err := bookings.Cancel(ctx, commands.NewMsg(), commands.CancelBooking{BookingID: id, CallerID: userID}); err != nil {
				return fmt.Errorf("cancel: %w", err)
			}
		case 4: // left awaiting payment: half expire, half still hold seats
			if n%4 == 0 {
				mu.Lock()
				unpaid = append(unpaid, id)
				mu.Unlock()
			}
		}
		return nil
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range max(size.workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				if err := book(n); err != nil {
					fail(fmt.Errorf("booking %d: %w", n, err))
				}
			}
		}()
	}
	for n := range size.bookings {
		jobs <- n
	}
	close(jobs)
	wg.Wait()
	if failure != nil {
		t.Fatalf("history: %v", failure)
	}
	waitSaga(t, store, checkpoints, saga)

	// The holds left unpaid run out; the last event is called off, which
	// cancels every live booking on it.
	clock.advance(time.Hour)
	for _, id := range unpaid {
		must("expire", bookings.ExpireBooking(ctx, commands.NewMsg(), id))
	}
	if len(w.events) > 2 {
		_, err := desk.CancelEvent(ctx, commands.NewMsg(), commands.CancelEvent{EventID: w.events[len(w.events)-1], Reason: "venue flooded"})
		must("cancel event", err)
	}
	waitSaga(t, store, checkpoints, saga)
	return w
}

// waitSaga waits until the saga has handled every record for it in the
// store and nothing more is written. (Its checkpoint stops at the last
// record it reads, so it is compared with that, not with the head.)
func waitSaga(t testing.TB, store *embedded.Store, cps *checkpoint.Memory, saga inproc.Reactor) {
	t.Helper()
	ctx := context.Background()
	filter := saga.Filter()
	deadline := time.Now().Add(time.Minute)
	var quiet uint64
	for time.Now().Before(deadline) {
		head, err := store.HeadPosition(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cp, _ := cps.Load(ctx, saga.Name())
		pending := false
		for from := cp; from < head && !pending; {
			recs, err := store.ReadAll(ctx, from, 1024)
			if err != nil {
				t.Fatal(err)
			}
			for i := range recs {
				pending = pending || filter.Match(&recs[i])
			}
			from = recs[len(recs)-1].Position
		}
		switch {
		case pending:
			quiet = 0
			time.Sleep(5 * time.Millisecond)
		case quiet == head:
			return
		default:
			quiet = head
			time.Sleep(50 * time.Millisecond) // quiet for a moment: nothing more in flight
		}
	}
	t.Fatal("history: the saga did not finish")
}

// liveProjectors are the projectors ticketd runs, over log into the views.
func liveProjectors(log projections.EventLog, events projections.EventsStore, bookings projections.BookingsStore, payments projections.PaymentsStore, profiles projections.ProfilesStore) []*projections.Projector {
	reg := commands.NewRegistry()
	return []*projections.Projector{
		projections.NewEvents(log, reg, events, nil),
		projections.NewBookings(log, reg, bookings, nil),
		projections.NewPayments(log, reg, payments, nil, nil),
		projections.NewProfiles(log, reg, profiles, nil),
	}
}

// catchUp runs the projectors until they have applied log up to its head.
func catchUp(t testing.TB, log projections.EventLog, ps []*projections.Projector) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	head, err := log.HeadPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := p.CatchUp(ctx, head); err != nil {
			t.Fatalf("catch up %s: %v", p.Name(), err)
		}
	}
}
