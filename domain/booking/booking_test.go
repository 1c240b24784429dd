package booking_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/es/estest"
	"github.com/ticketd/ticketing/domain/fault"
)

var (
	placedAt  = time.Date(2030, 3, 1, 9, 0, 0, 0, time.UTC)
	heldAt    = placedAt.Add(2 * time.Second)
	deadline  = heldAt.Add(10 * time.Minute)
	now       = heldAt.Add(time.Minute) // during the hold
	afterHold = deadline.Add(time.Second)

	bookingID = uuid.MustParse("00000000-0000-4000-8000-00000000000b")
	userID    = uuid.MustParse("00000000-0000-4000-8000-00000000000a")
	eventID   = uuid.MustParse("00000000-0000-4000-8000-00000000000e")
	paymentID = uuid.MustParse("00000000-0000-4000-8000-00000000000f")
	otherPay  = uuid.MustParse("00000000-0000-4000-8000-0000000000ff")

	placed   = booking.Placed{BookingID: bookingID, UserID: userID, EventID: eventID, TicketType: "VIP", Quantity: 2, At: placedAt}
	awaiting = booking.AwaitingPayment{UnitPrice: 150_000, Amount: 300_000, Currency: "IDR", ExpiresAt: deadline, At: heldAt}
	paid     = booking.Confirmed{PaymentID: paymentID, At: now}
	refused  = booking.Rejected{Reason: "sold_out", At: heldAt}
	ranOut   = booking.Expired{Reason: booking.ReasonHoldExpired, At: afterHold}
	dropped  = booking.Cancelled{Reason: "changed my mind", From: booking.StatusAwaitingPayment, At: now}
	refunded = booking.Cancelled{Reason: "changed my mind", From: booking.StatusConfirmed, PaymentID: paymentID, Refund: true, At: now}
)

// history is how a booking comes to be in each status.
var history = map[booking.Status][]es.Payload{
	booking.StatusPending:         {placed},
	booking.StatusAwaitingPayment: {placed, awaiting},
	booking.StatusConfirmed:       {placed, awaiting, paid},
	booking.StatusRejected:        {placed, refused},
	booking.StatusExpired:         {placed, awaiting, ranOut},
	booking.StatusCancelled:       {placed, awaiting, dropped},
}

// allStatuses lists every status in the order of API.md.
var allStatuses = []booking.Status{
	booking.StatusPending, booking.StatusAwaitingPayment, booking.StatusConfirmed,
	booking.StatusRejected, booking.StatusExpired, booking.StatusCancelled,
}

type command struct {
	name string
	do   func(b *booking.Booking) error
}

var (
	awaitPayment = command{"AwaitPayment", func(b *booking.Booking) error {
		return b.AwaitPayment(150_000, "IDR", deadline, heldAt)
	}}
	reject = command{"Reject", func(b *booking.Booking) error { return b.Reject("sold_out", heldAt) }}
	// a second Reject with another reason, as when the event was
	// cancelled while the hold was on the way
	rejectForEvent = command{"Reject(event_cancelled)", func(b *booking.Booking) error { return b.Reject("event_cancelled", now) }}
	confirm        = command{"Confirm", func(b *booking.Booking) error { return b.Confirm(paymentID, now) }}
	confirmOther   = command{"Confirm(other payment)", func(b *booking.Booking) error { return b.Confirm(otherPay, now) }}
	expire         = command{"Expire", func(b *booking.Booking) error { return b.Expire(afterHold) }}
	cancel         = command{"Cancel", func(b *booking.Booking) error { return b.Cancel("changed my mind", now) }}
	cancelForEvent = command{"CancelForEvent", func(b *booking.Booking) error { return b.CancelForEvent(now) }}
)

// outcome is what a command does from one status: record events, do
// nothing (no events, no error), or refuse with a TransitionError naming
// action.
type outcome struct {
	events []es.Payload
	action string // refused with this TransitionError.Action
}

func records(events ...es.Payload) outcome { return outcome{events: events} }
func refuses(action string) outcome        { return outcome{action: action} }

var noop = outcome{}

// stateMachine is API.md's booking diagram as a table: every command from
// every status. An arrow of the diagram is a command that records the
// event moving there; every other pair is either an idempotent repeat
// (no-op) or a refusal.
var stateMachine = []struct {
	cmd  command
	from map[booking.Status]outcome
}{
	{awaitPayment, map[booking.Status]outcome{
		booking.StatusPending:         records(awaiting), // pending ──> awaiting_payment
		booking.StatusAwaitingPayment: noop,              // the same hold reported again
		booking.StatusConfirmed:       noop,              // late repeat: the seats are sold, keep them
		booking.StatusExpired:         noop,              // late repeat: the seats were released already
		booking.StatusCancelled:       noop,              // late repeat: the seats were released already
		booking.StatusRejected:        refuses("hold seats for"),
	}},
	{reject, map[booking.Status]outcome{
		booking.StatusPending:         records(booking.Rejected{Reason: "sold_out", At: heldAt}), // pending ──> rejected
		booking.StatusRejected:        noop,
		booking.StatusAwaitingPayment: refuses("reject"),
		booking.StatusConfirmed:       refuses("reject"),
		booking.StatusExpired:         refuses("reject"),
		booking.StatusCancelled:       refuses("reject"),
	}},
	{rejectForEvent, map[booking.Status]outcome{
		booking.StatusPending:  records(booking.Rejected{Reason: "event_cancelled", At: now}),
		booking.StatusRejected: noop, // the first reason stands
	}},
	{confirm, map[booking.Status]outcome{
		booking.StatusAwaitingPayment: records(paid), // awaiting_payment ──> confirmed
		booking.StatusConfirmed:       noop,          // the same payment reported again
		booking.StatusPending:         refuses("confirm"),
		booking.StatusRejected:        refuses("confirm"),
		booking.StatusExpired:         refuses("confirm"),
		booking.StatusCancelled:       refuses("confirm"),
	}},
	{confirmOther, map[booking.Status]outcome{
		booking.StatusConfirmed: refuses("confirm"), // a second payment must be refunded
	}},
	{expire, map[booking.Status]outcome{
		booking.StatusAwaitingPayment: records(booking.Expired{Reason: booking.ReasonHoldExpired, At: afterHold}), // awaiting_payment ──> expired
		booking.StatusPending:         noop,                                                                       // no hold, no deadline
		booking.StatusConfirmed:       noop,                                                                       // paid in time: the deadline fired late
		booking.StatusRejected:        noop,
		booking.StatusExpired:         noop,
		booking.StatusCancelled:       noop,
	}},
	{cancel, map[booking.Status]outcome{
		booking.StatusAwaitingPayment: records(dropped),  // awaiting_payment ──> cancelled
		booking.StatusConfirmed:       records(refunded), // confirmed ──> cancelled, with the payment to refund
		booking.StatusPending:         refuses("cancel"),
		booking.StatusRejected:        refuses("cancel"),
		booking.StatusExpired:         refuses("cancel"),
		booking.StatusCancelled:       refuses("cancel"),
	}},
	{cancelForEvent, map[booking.Status]outcome{
		booking.StatusPending:         records(booking.Rejected{Reason: booking.ReasonEventCancelled, At: now}),
		booking.StatusAwaitingPayment: records(booking.Cancelled{Reason: booking.ReasonEventCancelled, From: booking.StatusAwaitingPayment, At: now}),
		booking.StatusConfirmed:       records(booking.Cancelled{Reason: booking.ReasonEventCancelled, From: booking.StatusConfirmed, PaymentID: paymentID, Refund: true, At: now}),
		booking.StatusRejected:        noop,
		booking.StatusExpired:         noop,
		booking.StatusCancelled:       noop,
	}},
}

func TestStateMachine(t *testing.T) {
	for _, row := range stateMachine {
		for _, from := range allStatuses {
			want, ok := row.from[from]
			if !ok {
				continue
			}
			name := row.cmd.name + " from " + string(from)
			switch {
			case want.action != "":
				name += " is refused"
			case len(want.events) == 0:
				name += " is a no-op"
			}
			t.Run(name, func(t *testing.T) {
				b := &booking.Booking{}
				s := estest.Given(t, b, history[from]...).When(row.cmd.do(b))
				if want.action == "" {
					s.Then(want.events...)
					return
				}
				var te *booking.TransitionError
				s.ThenError(&te, fault.ErrConflict)
				if te.Action != want.action || te.From != from {
					t.Errorf("refusal says %q from %q, want %q from %q", te.Action, te.From, want.action, from)
				}
				if b.Status() != from {
					t.Errorf("status after a refusal = %s, want it unchanged (%s)", b.Status(), from)
				}
			})
		}
	}
}

// TestStateMachineCoversEveryStatus guards the table above: each of the
// main commands says what it does from every status.
func TestStateMachineCoversEveryStatus(t *testing.T) {
	full := []string{awaitPayment.name, reject.name, confirm.name, expire.name, cancel.name, cancelForEvent.name}
	for _, row := range stateMachine {
		if !slices.Contains(full, row.cmd.name) {
			continue
		}
		for _, s := range allStatuses {
			if _, ok := row.from[s]; !ok {
				t.Errorf("%s from %s is not specified", row.cmd.name, s)
			}
		}
	}
}

// TestOnlyTheDiagramsArrowsMoveABooking derives the arrows from the
// decisions above and compares them with API.md.
func TestOnlyTheDiagramsArrowsMoveABooking(t *testing.T) {
	want := map[[2]booking.Status]bool{
		{booking.StatusPending, booking.StatusAwaitingPayment}:   true,
		{booking.StatusPending, booking.StatusRejected}:          true,
		{booking.StatusAwaitingPayment, booking.StatusConfirmed}: true,
		{booking.StatusAwaitingPayment, booking.StatusExpired}:   true,
		{booking.StatusAwaitingPayment, booking.StatusCancelled}: true,
		{booking.StatusConfirmed, booking.StatusCancelled}:       true,
	}
	got := map[[2]booking.Status]bool{}
	for _, row := range stateMachine {
		for _, from := range allStatuses {
			b := &booking.Booking{}
			estest.Given(t, b, history[from]...)
			if err := row.cmd.do(b); err != nil || b.Status() == from {
				continue
			}
			got[[2]booking.Status{from, b.Status()}] = true
		}
	}
	for arrow := range got {
		if !want[arrow] {
			t.Errorf("a booking moved %s ──> %s, which API.md does not allow", arrow[0], arrow[1])
		}
	}
	for arrow := range want {
		if !got[arrow] {
			t.Errorf("no command moves a booking %s ──> %s", arrow[0], arrow[1])
		}
	}
}

func TestExpireWaitsForTheDeadline(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
		due  bool
	}{
		{"right after the hold", heldAt, false},
		{"a nanosecond early", deadline.Add(-time.Nanosecond), false},
		{"at the deadline", deadline, true},
		{"an hour late, after a restart", deadline.Add(time.Hour), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &booking.Booking{}
			s := estest.Given(t, b, placed, awaiting).When(b.Expire(tt.at))
			if tt.due {
				s.Then(booking.Expired{Reason: booking.ReasonHoldExpired, At: tt.at})
				return
			}
			var nd *booking.NotDueError
			s.ThenError(&nd, fault.ErrConflict)
			if !nd.ExpiresAt.Equal(deadline) || !nd.Now.Equal(tt.at) {
				t.Errorf("NotDueError = %+v, want the deadline %s and the time asked %s", nd, deadline, tt.at)
			}
		})
	}
}

func TestTransitionErrorMessage(t *testing.T) {
	b := &booking.Booking{}
	estest.Given(t, b, history[booking.StatusExpired]...)
	err := b.Cancel("too late", now)
	if err == nil || err.Error() != "booking: cannot cancel a booking that is expired" {
		t.Errorf("Cancel of an expired booking: %v", err)
	}
	var te *booking.TransitionError
	if !errors.As(err, &te) || !errors.Is(err, fault.ErrConflict) {
		t.Errorf("refusal %v is not a TransitionError classified as a conflict", err)
	}
}

// TestStateAfterEachEvent checks what a reader of the aggregate sees once
// the events are replayed: the fields of the API's booking.
func TestStateAfterEachEvent(t *testing.T) {
	type view struct {
		status    booking.Status
		reason    string
		amount    int64
		currency  string
		expiresAt time.Time
		payment   uuid.UUID
		updatedAt time.Time
	}
	tests := []struct {
		name    string
		history []es.Payload
		want    view
	}{
		{"placed", history[booking.StatusPending], view{status: booking.StatusPending, updatedAt: placedAt}},
		{"held", history[booking.StatusAwaitingPayment], view{booking.StatusAwaitingPayment, "", 300_000, "IDR", deadline, uuid.Nil, heldAt}},
		{"paid", history[booking.StatusConfirmed], view{booking.StatusConfirmed, "", 300_000, "IDR", deadline, paymentID, now}},
		{"refused", history[booking.StatusRejected], view{status: booking.StatusRejected, reason: "sold_out", updatedAt: heldAt}},
		{"expired", history[booking.StatusExpired], view{booking.StatusExpired, booking.ReasonHoldExpired, 300_000, "IDR", deadline, uuid.Nil, afterHold}},
		{"cancelled while awaiting", history[booking.StatusCancelled], view{booking.StatusCancelled, "changed my mind", 300_000, "IDR", deadline, uuid.Nil, now}},
		{"cancelled after paying", []es.Payload{placed, awaiting, paid, refunded}, view{booking.StatusCancelled, "changed my mind", 300_000, "IDR", deadline, paymentID, now}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &booking.Booking{}
			estest.Given(t, b, tt.history...)
			got := view{b.Status(), b.Reason(), b.Amount(), b.Currency(), b.ExpiresAt(), b.PaymentID(), b.UpdatedAt()}
			if got != tt.want {
				t.Errorf("state = %+v\nwant    %+v", got, tt.want)
			}
			if b.ID() != bookingID || b.UserID() != userID || b.EventID() != eventID || b.TicketType() != "VIP" || b.Quantity() != 2 || !b.CreatedAt().Equal(placedAt) {
				t.Errorf("placement lost: id %s user %s event %s %dx %s at %s", b.ID(), b.UserID(), b.EventID(), b.Quantity(), b.TicketType(), b.CreatedAt())
			}
		})
	}
}

func TestAmountIsTheHeldPriceTimesQuantity(t *testing.T) {
	tests := []struct {
		name     string
		quantity int
		price    int64
		want     int64
	}{
		{"one seat", 1, 150_000, 150_000},
		{"several seats", 4, 150_000, 600_000},
		{"free seats", 3, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := placed
			p.Quantity = tt.quantity
			b := &booking.Booking{}
			estest.Given(t, b, p).
				When(b.AwaitPayment(tt.price, "IDR", deadline, heldAt)).
				Then(booking.AwaitingPayment{UnitPrice: tt.price, Amount: tt.want, Currency: "IDR", ExpiresAt: deadline, At: heldAt})
			if b.UnitPrice() != tt.price || b.Amount() != tt.want {
				t.Errorf("booking shows %d x %d = %d, want %d", tt.quantity, b.UnitPrice(), b.Amount(), tt.want)
			}
		})
	}
}

func TestCancelledCarriesWhatTheSagaMustUndo(t *testing.T) {
	// A cancelled booking that had been paid names its payment, so that the
	// saga refunds it; one that had not names none.
	for _, tt := range []struct {
		name    string
		history []es.Payload
		payment uuid.UUID
	}{
		{"unpaid", history[booking.StatusAwaitingPayment], uuid.Nil},
		{"paid", history[booking.StatusConfirmed], paymentID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := &booking.Booking{}
			estest.Given(t, b, tt.history...)
			if err := b.Cancel("x", now); err != nil {
				t.Fatal(err)
			}
			c := b.Pending()[0].(booking.Cancelled)
			if c.PaymentID != tt.payment {
				t.Errorf("Cancelled.PaymentID = %s, want %s", c.PaymentID, tt.payment)
			}
		})
	}
}

func TestPlace(t *testing.T) {
	tests := []struct {
		name       string
		id, user   uuid.UUID
		event      uuid.UUID
		ticketType string
		quantity   int
		fields     []string // invalid fields, none when valid
	}{
		{"valid", bookingID, userID, eventID, "VIP", 2, nil},
		{"one seat", bookingID, userID, eventID, "VIP", 1, nil},
		{"the most seats", bookingID, userID, eventID, "VIP", booking.MaxQuantity, nil},
		{"no id", uuid.Nil, userID, eventID, "VIP", 2, []string{"id"}},
		{"no user", bookingID, uuid.Nil, eventID, "VIP", 2, []string{"user_id"}},
		{"no event", bookingID, userID, uuid.Nil, "VIP", 2, []string{"event_id"}},
		{"no ticket type", bookingID, userID, eventID, "", 2, []string{"ticket_type"}},
		{"no seats", bookingID, userID, eventID, "VIP", 0, []string{"quantity"}},
		{"negative seats", bookingID, userID, eventID, "VIP", -3, []string{"quantity"}},
		{"too many seats", bookingID, userID, eventID, "VIP", booking.MaxQuantity + 1, []string{"quantity"}},
		{"everything wrong at once", uuid.Nil, uuid.Nil, uuid.Nil, "", 0, []string{"id", "user_id", "event_id", "ticket_type", "quantity"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := booking.Place(tt.id, tt.user, tt.event, tt.ticketType, tt.quantity, placedAt)
			s := estest.New(t, b, err)
			if tt.fields == nil {
				s.Then(booking.Placed{BookingID: tt.id, UserID: tt.user, EventID: tt.event, TicketType: tt.ticketType, Quantity: tt.quantity, At: placedAt})
				if b.Status() != booking.StatusPending || b.Version() != -1 {
					t.Errorf("a new booking is %s at version %d, want pending at -1", b.Status(), b.Version())
				}
				return
			}
			var in *fault.Input
			s.ThenError(&in)
			var got []string
			for _, f := range in.Fields {
				got = append(got, f.Field)
				if f.Message == "" {
					t.Errorf("field %s has no message", f.Field)
				}
			}
			if !slices.Equal(got, tt.fields) {
				t.Errorf("invalid fields = %v, want %v", got, tt.fields)
			}
			if errors.Is(err, fault.ErrConflict) {
				t.Error("invalid input is classified as a conflict")
			}
		})
	}
}

func TestStatusFinal(t *testing.T) {
	final := map[booking.Status]bool{booking.StatusRejected: true, booking.StatusExpired: true, booking.StatusCancelled: true}
	for _, s := range allStatuses {
		if s.Final() != final[s] {
			t.Errorf("%s.Final() = %v, want %v", s, s.Final(), final[s])
		}
		// A final status refuses every command that would move it, so
		// nothing moves a booking out of it.
		b := &booking.Booking{}
		estest.Given(t, b, history[s]...)
		for _, row := range stateMachine {
			_ = row.cmd.do(b)
		}
		if s.Final() && b.Status() != s {
			t.Errorf("a %s booking moved to %s", s, b.Status())
		}
	}
}

func TestStream(t *testing.T) {
	if got := booking.Stream(bookingID); got != booking.StreamPrefix+"00000000-0000-4000-8000-00000000000b" {
		t.Errorf("Stream = %q", got)
	}
}

// TestStoredTypeNamesNeverChange pins the names stored in every record:
// changing one would make existing streams unreadable.
func TestStoredTypeNamesNeverChange(t *testing.T) {
	want := map[es.Payload]string{
		booking.Placed{}:          "booking.placed",
		booking.AwaitingPayment{}: "booking.awaiting_payment",
		booking.Rejected{}:        "booking.rejected",
		booking.Confirmed{}:       "booking.confirmed",
		booking.Expired{}:         "booking.expired",
		booking.Cancelled{}:       "booking.cancelled",
	}
	r := es.NewRegistry()
	booking.Register(r)
	for p, name := range want {
		if p.EventType() != name {
			t.Errorf("%T is stored as %q, want %q", p, p.EventType(), name)
		}
		if !r.Known(name) {
			t.Errorf("Register does not register %q", name)
		}
	}
}

func TestNotDueErrorMessage(t *testing.T) {
	err := &booking.NotDueError{ExpiresAt: deadline, Now: heldAt}
	want := "booking: hold runs until 2030-03-01T09:10:02Z, it is only 2030-03-01T09:00:02Z"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}
