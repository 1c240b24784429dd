package commands_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/infra/bus/inproc"
	"github.com/ticketd/ticketing/infra/checkpoint"
	"github.com/ticketd/ticketing/infra/eventstore/memory"
)

// clock is a test clock that only moves when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// gateway is a provider that remembers what it was asked and settles only
// when the test says so.
type gateway struct {
	mu      sync.Mutex
	charges map[uuid.UUID]int
	refunds map[uuid.UUID]int
}

func (g *gateway) Charge(_ context.Context, c commands.Charge) (commands.ChargeResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.charges[c.PaymentID]++
	if c.Token == "tok_invalid" {
		return commands.ChargeResult{Declined: true, Reason: "invalid_token"}, nil
	}
	return commands.ChargeResult{GatewayRef: "ref-" + c.PaymentID.String()}, nil
}

func (g *gateway) Refund(_ context.Context, r commands.RefundOrder) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refunds[r.PaymentID]++
	return "rf-" + r.PaymentID.String(), nil
}

func (g *gateway) counts(id uuid.UUID) (charges, refunds int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.charges[id], g.refunds[id]
}

// twice delivers every command twice, as an at-least-once bus may.
type twice struct{ next commands.Sender }

func (t twice) Send(ctx context.Context, msg commands.Msg, cmd commands.Command) error {
	if err := t.next.Send(ctx, msg, cmd); err != nil {
		return err
	}
	return t.next.Send(ctx, msg, cmd)
}

// reactTwice handles every record twice, as a redelivery after a crash
// before the checkpoint would.
type reactTwice struct {
	inproc.Reactor
}

func (r reactTwice) React(ctx context.Context, rec *es.Record, p es.Payload) error {
	if err := r.Reactor.React(ctx, rec, p); err != nil {
		return err
	}
	return r.Reactor.React(ctx, rec, p)
}

func (r reactTwice) Key(rec *es.Record, p es.Payload) uuid.UUID {
	if k, ok := r.Reactor.(inproc.Keyer); ok {
		return k.Key(rec, p)
	}
	return rec.AggregateID
}

// writeSide is what the test reads bookings back from, standing in for
// the booking read model: payments' lookup and the expirer's due holds.
type writeSide struct {
	store    *memory.Store
	bookings *commands.Bookings
	payments *commands.Payments // set once built: payments need the write side first
	clock    *clock
}

func (w writeSide) PayableBooking(ctx context.Context, id uuid.UUID) (commands.PayableBooking, bool, error) {
	b, err := w.bookings.Booking(ctx, id, uuid.Nil, true)
	if errors.Is(err, commands.ErrBookingNotFound) {
		return commands.PayableBooking{}, false, nil
	}
	if err != nil {
		return commands.PayableBooking{}, false, err
	}
	return commands.PayableBooking{UserID: b.UserID, Status: b.Status, Amount: b.Amount, Currency: b.Currency, ExpiresAt: b.ExpiresAt}, true, nil
}

func (w writeSide) PaymentOutcome(ctx context.Context, id uuid.UUID) (payment.Status, time.Time, bool, error) {
	p, err := w.payments.Payment(ctx, id, uuid.Nil, true)
	if errors.Is(err, commands.ErrPaymentNotFound) {
		return "", time.Time{}, false, nil
	}
	if err != nil {
		return "", time.Time{}, false, err
	}
	return p.Status, p.UpdatedAt, true, nil
}

func (w writeSide) DueHolds(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error) {
	recs, err := w.store.ReadAll(ctx, 0, 1<<30)
	if err != nil {
		return nil, err
	}
	var due []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for _, r := range recs {
		if r.Type != booking.TypePlaced || seen[r.AggregateID] {
			continue
		}
		seen[r.AggregateID] = true
		b, err := w.bookings.Booking(ctx, r.AggregateID, uuid.Nil, true)
		if err != nil {
			return nil, err
		}
		if b.Status == booking.StatusAwaitingPayment && !now.Before(b.ExpiresAt) && len(due) < limit {
			due = append(due, b.ID)
		}
	}
	return due, nil
}

// system is the four services wired in-process over the memory store, with
// every record and every command delivered twice.
type system struct {
	t        *testing.T
	clock    *clock
	store    *memory.Store
	desk     *commands.EventDesk
	bookings *commands.Bookings
	payments *commands.Payments
	expirer  *commands.Expirer
	gateway  *gateway
	runner   *inproc.Runner
	reactors []inproc.Reactor
	stop     context.CancelFunc
	done     sync.WaitGroup
}

const holdTTL = 10 * time.Minute

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newSystem(t *testing.T) *system {
	t.Helper()
	return newSystemOn(t, func(s *memory.Store) commands.EventStore { return s })
}

// newSystemOn is newSystem with the handlers writing through the store
// that wrap makes of the memory store.
func newSystemOn(t *testing.T, wrap func(*memory.Store) commands.EventStore) *system {
	t.Helper()
	log := discardLog()
	clk := &clock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	store := memory.New()
	reg := commands.NewRegistry()
	repo := commands.NewRepository(wrap(store), reg, clk.Now)
	desk := commands.NewEventDesk(repo, store, log)
	desk.SnapshotEvery = 25 // exercise snapshots in every test
	bookings := commands.NewBookings(repo, holdTTL)
	ws := &writeSide{store: store, bookings: bookings, clock: clk}
	payments := commands.NewPayments(repo, ws)
	ws.payments = payments
	router := commands.NewRouter()
	router.RouteEvents(desk, router)
	router.RouteBookings(bookings)
	router.RoutePayments(payments)
	gw := &gateway{charges: map[uuid.UUID]int{}, refunds: map[uuid.UUID]int{}}
	runner := inproc.NewRunner(store, reg, checkpoint.NewMemory(map[string]uint64{}), store, log, nil)
	runner.Workers = 16
	s := &system{
		t: t, clock: clk, store: store, desk: desk, bookings: bookings, payments: payments,
		expirer: commands.NewExpirer(bookings, ws, log).WithPayments(ws), gateway: gw, runner: runner,
		reactors: []inproc.Reactor{
			reactTwice{commands.NewBookingSaga(bookings, twice{router}, log)},
			reactTwice{commands.NewPaymentProcessor(payments, gw)},
		},
	}
	s.start()
	t.Cleanup(func() {
		s.halt()
		store.Close()
	})
	return s
}

func (s *system) start() {
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	for _, r := range s.reactors {
		s.done.Add(1)
		go func(r inproc.Reactor) {
			defer s.done.Done()
			if err := s.runner.Run(ctx, r); err != nil && !errors.Is(err, context.Canceled) {
				s.t.Errorf("runner %s: %v", r.Name(), err)
			}
		}(r)
	}
}

func (s *system) halt() {
	s.stop()
	s.done.Wait()
}

// eventually polls cond until it holds, failing the test after a generous
// bound. It waits for asynchronous reactions; it measures nothing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (s *system) createEvent(types ...event.TicketType) uuid.UUID {
	s.t.Helper()
	id := uuid.New()
	_, err := s.desk.CreateEvent(context.Background(), commands.NewMsg(), commands.CreateEvent{
		EventID:     id,
		Details:     event.Details{Name: "Concert", Venue: "Hall", StartsAt: s.clock.Now().Add(30 * 24 * time.Hour), MaxPerBooking: 10},
		Currency:    "IDR",
		TicketTypes: types,
	})
	if err != nil {
		s.t.Fatalf("create event: %v", err)
	}
	return id
}

func (s *system) place(userID, eventID uuid.UUID, ticketType string, qty int) uuid.UUID {
	s.t.Helper()
	id := uuid.New()
	_, err := s.bookings.Place(context.Background(), commands.Msg{ID: id, CorrelationID: id}, commands.PlaceBooking{
		BookingID: id, UserID: userID, EventID: eventID, TicketType: ticketType, Quantity: qty,
	})
	if err != nil {
		s.t.Fatalf("place booking: %v", err)
	}
	return id
}

func (s *system) booking(id uuid.UUID) commands.BookingState {
	s.t.Helper()
	b, err := s.bookings.Booking(context.Background(), id, uuid.Nil, true)
	if err != nil {
		s.t.Fatalf("load booking %s: %v", id, err)
	}
	return b
}

func (s *system) waitStatus(id uuid.UUID, want booking.Status) commands.BookingState {
	s.t.Helper()
	var b commands.BookingState
	eventually(s.t, "booking "+id.String()+" is "+string(want), func() bool {
		b = s.booking(id)
		return b.Status == want
	})
	return b
}

func (s *system) seats(eventID uuid.UUID, ticketType string) event.TicketTypeState {
	s.t.Helper()
	st, err := s.desk.EventState(context.Background(), eventID)
	if err != nil {
		s.t.Fatalf("event state: %v", err)
	}
	for _, tt := range st.TicketTypes {
		if tt.Name == ticketType {
			return tt
		}
	}
	s.t.Fatalf("no ticket type %q", ticketType)
	return event.TicketTypeState{}
}

func (s *system) pay(bookingID, userID uuid.UUID, token string) commands.PaymentState {
	s.t.Helper()
	p, err := s.payments.Process(context.Background(), commands.NewMsg(), commands.ProcessPayment{BookingID: bookingID, UserID: userID, Token: token})
	if err != nil {
		s.t.Fatalf("process payment: %v", err)
	}
	return p
}

func (s *system) settle(paymentID uuid.UUID, ok bool) {
	s.t.Helper()
	_, err := s.payments.Settle(context.Background(), commands.NewMsg(), commands.SettlePayment{PaymentID: paymentID, Succeeded: ok, GatewayRef: "ref", FailureReason: "card_declined"})
	if err != nil {
		s.t.Fatalf("settle payment: %v", err)
	}
}

func (s *system) payment(id uuid.UUID) commands.PaymentState {
	s.t.Helper()
	p, err := s.payments.Payment(context.Background(), id, uuid.Nil, true)
	if err != nil {
		s.t.Fatalf("load payment: %v", err)
	}
	return p
}

// neverSaysWritten answers appends as KurrentDB does: it never tells a
// write from one it found there already, so the handlers that write first
// must take their read-back path every time.
type neverSaysWritten struct{ *memory.Store }

func asKurrentDB(s *memory.Store) commands.EventStore { return neverSaysWritten{s} }

func (s neverSaysWritten) Append(ctx context.Context, stream string, expected es.ExpectedRevision, records []es.Record) (es.AppendResult, error) {
	res, err := s.Store.Append(ctx, stream, expected, records)
	res.Written = false
	return res, err
}
