package payment_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/es/estest"
	"github.com/ticketd/ticketing/domain/fault"
	"github.com/ticketd/ticketing/domain/payment"
)

var (
	requestedAt = time.Date(2030, 3, 1, 9, 0, 0, 0, time.UTC)
	settledAt   = requestedAt.Add(3 * time.Second)
	refundAt    = settledAt.Add(time.Hour)
	now         = refundAt.Add(time.Minute)

	paymentID = uuid.MustParse("00000000-0000-4000-8000-00000000000f")
	bookingID = uuid.MustParse("00000000-0000-4000-8000-00000000000b")
	userID    = uuid.MustParse("00000000-0000-4000-8000-00000000000a")

	requested = payment.Requested{PaymentID: paymentID, BookingID: bookingID, UserID: userID, Amount: 300_000, Currency: "IDR", Token: "tok_success", At: requestedAt}
	settled   = payment.Settled{BookingID: bookingID, GatewayRef: "gw-1", At: settledAt}
	declined  = payment.Declined{BookingID: bookingID, GatewayRef: "gw-1", Reason: "insufficient funds", At: settledAt}
	refunding = payment.RefundRequested{BookingID: bookingID, Reason: "booking cancelled", At: refundAt}
	refunded  = payment.RefundCompleted{BookingID: bookingID, GatewayRef: "rf-1", At: now}
)

var history = map[payment.Status][]es.Payload{
	payment.Processing:    {requested},
	payment.Succeeded:     {requested, settled},
	payment.Failed:        {requested, declined},
	payment.RefundPending: {requested, settled, refunding},
	payment.Refunded:      {requested, settled, refunding, refunded},
}

var allStatuses = []payment.Status{payment.Processing, payment.Succeeded, payment.Failed, payment.RefundPending, payment.Refunded}

type outcome struct {
	events []es.Payload
	action string // refused with a TransitionError for this action
}

func records(events ...es.Payload) outcome { return outcome{events: events} }
func refuses(action string) outcome        { return outcome{action: action} }

var noop = outcome{}

// transitions is API.md's payment life cycle: processing → succeeded |
// failed; succeeded → refunded through refund_pending. Provider
// notifications repeat, so a repeat is a no-op, and a contradiction is
// refused.
var transitions = []struct {
	name string
	do   func(p *payment.Payment) error
	from map[payment.Status]outcome
}{
	{"Succeed", func(p *payment.Payment) error { return p.Succeed("gw-2", now) }, map[payment.Status]outcome{
		payment.Processing:    records(payment.Settled{BookingID: bookingID, GatewayRef: "gw-2", At: now}),
		payment.Succeeded:     noop, // the webhook repeated
		payment.RefundPending: noop, // a late repeat while refunding
		payment.Refunded:      noop,
		payment.Failed:        refuses("succeed"),
	}},
	{"Fail", func(p *payment.Payment) error { return p.Fail("gw-2", "card expired", now) }, map[payment.Status]outcome{
		payment.Processing:    records(payment.Declined{BookingID: bookingID, GatewayRef: "gw-2", Reason: "card expired", At: now}),
		payment.Failed:        noop, // the webhook repeated; the first reason stands
		payment.Succeeded:     refuses("fail"),
		payment.RefundPending: refuses("fail"),
		payment.Refunded:      refuses("fail"),
	}},
	{"Fail without a reason", func(p *payment.Payment) error { return p.Fail("gw-2", "", now) }, map[payment.Status]outcome{
		payment.Processing: records(payment.Declined{BookingID: bookingID, GatewayRef: "gw-2", Reason: "declined", At: now}),
	}},
	{"RequestRefund", func(p *payment.Payment) error { return p.RequestRefund("event cancelled", now) }, map[payment.Status]outcome{
		payment.Succeeded:     records(payment.RefundRequested{BookingID: bookingID, Reason: "event cancelled", At: now}),
		payment.RefundPending: noop, // asked twice: one refund
		payment.Refunded:      noop,
		payment.Processing:    refuses("refund"),
		payment.Failed:        refuses("refund"),
	}},
	{"CompleteRefund", func(p *payment.Payment) error { return p.CompleteRefund("rf-2", now) }, map[payment.Status]outcome{
		payment.RefundPending: records(payment.RefundCompleted{BookingID: bookingID, GatewayRef: "rf-2", At: now}),
		payment.Refunded:      noop,
		payment.Processing:    refuses("complete the refund of"),
		payment.Succeeded:     refuses("complete the refund of"),
		payment.Failed:        refuses("complete the refund of"),
	}},
}

func TestTransitions(t *testing.T) {
	for _, tr := range transitions {
		for _, from := range allStatuses {
			want, ok := tr.from[from]
			if !ok {
				continue
			}
			name := tr.name + " from " + string(from)
			switch {
			case want.action != "":
				name += " is refused"
			case len(want.events) == 0:
				name += " is a no-op"
			}
			t.Run(name, func(t *testing.T) {
				p := &payment.Payment{}
				s := estest.Given(t, p, history[from]...).When(tr.do(p))
				if want.action == "" {
					s.Then(want.events...)
					return
				}
				var te *payment.TransitionError
				s.ThenError(&te, fault.ErrConflict)
				if te.Action != want.action || te.From != from {
					t.Errorf("refusal says %q from %q, want %q from %q", te.Action, te.From, want.action, from)
				}
				if !strings.Contains(te.Error(), "payment: cannot "+want.action+" a payment that is "+string(from)) {
					t.Errorf("refusal message %q", te.Error())
				}
			})
		}
	}
}

func TestEveryCommandIsSpecifiedFromEveryStatus(t *testing.T) {
	for _, tr := range transitions {
		if strings.Contains(tr.name, " ") {
			continue // a variant of a command
		}
		for _, s := range allStatuses {
			if _, ok := tr.from[s]; !ok {
				t.Errorf("%s from %s is not specified", tr.name, s)
			}
		}
	}
}

func TestRefundFlow(t *testing.T) {
	p, err := payment.Request(paymentID, bookingID, userID, 300_000, "IDR", "tok_success", requestedAt)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		do     func() error
		status payment.Status
		final  bool
	}{
		{"requested", func() error { return nil }, payment.Processing, false},
		{"the provider took the money", func() error { return p.Succeed("gw-1", settledAt) }, payment.Succeeded, false},
		{"the booking was cancelled", func() error { return p.RequestRefund("booking cancelled", refundAt) }, payment.RefundPending, false},
		{"the cancellation was repeated", func() error { return p.RequestRefund("booking cancelled", refundAt) }, payment.RefundPending, false},
		{"the success webhook came again", func() error { return p.Succeed("gw-1", refundAt) }, payment.RefundPending, false},
		{"the provider gave the money back", func() error { return p.CompleteRefund("rf-1", now) }, payment.Refunded, true},
		{"the refund webhook came again", func() error { return p.CompleteRefund("rf-1", now) }, payment.Refunded, true},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if p.Status() != st.status || p.Status().Final() != st.final {
			t.Fatalf("%s: status %s (final %v), want %s (final %v)", st.name, p.Status(), p.Status().Final(), st.status, st.final)
		}
	}
	// Exactly one event per real change, however often the provider and
	// the saga repeated themselves.
	want := []es.Payload{
		requested,
		payment.Settled{BookingID: bookingID, GatewayRef: "gw-1", At: settledAt},
		payment.RefundRequested{BookingID: bookingID, Reason: "booking cancelled", At: refundAt},
		payment.RefundCompleted{BookingID: bookingID, GatewayRef: "rf-1", At: now},
	}
	if d := estest.Diff(p.Pending(), want); d != "" {
		t.Errorf("recorded events:\n%s", d)
	}
	if p.GatewayRef() != "gw-1" || p.RefundReason() != "booking cancelled" || !p.UpdatedAt().Equal(now) || !p.CreatedAt().Equal(requestedAt) {
		t.Errorf("refunded payment shows ref %q, refund reason %q, updated %s, created %s", p.GatewayRef(), p.RefundReason(), p.UpdatedAt(), p.CreatedAt())
	}
}

func TestFailedPaymentShowsWhy(t *testing.T) {
	p := &payment.Payment{}
	estest.Given(t, p, history[payment.Failed]...)
	if p.Status() != payment.Failed || !p.Status().Final() || p.FailureReason() != "insufficient funds" || p.GatewayRef() != "gw-1" {
		t.Errorf("failed payment shows %s (final %v), reason %q, ref %q", p.Status(), p.Status().Final(), p.FailureReason(), p.GatewayRef())
	}
}

func TestRequest(t *testing.T) {
	tests := []struct {
		name     string
		booking  uuid.UUID
		amount   int64
		currency string
		token    string
		fields   []string
	}{
		{"valid", bookingID, 300_000, "IDR", "tok_success", nil},
		{"free booking", bookingID, 0, "IDR", "tok_success", nil},
		{"longest token", bookingID, 1, "IDR", strings.Repeat("t", 255), nil},
		{"no booking", uuid.Nil, 1, "IDR", "tok_success", []string{"booking_id"}},
		{"no token", bookingID, 1, "IDR", "", []string{"payment_token"}},
		{"token too long", bookingID, 1, "IDR", strings.Repeat("t", 256), []string{"payment_token"}},
		{"negative amount", bookingID, -1, "IDR", "tok_success", []string{"amount"}},
		{"no currency", bookingID, 1, "", "tok_success", []string{"currency"}},
		{"not a currency code", bookingID, 1, "RUPIAH", "tok_success", []string{"currency"}},
		{"everything wrong", uuid.Nil, -5, "", "", []string{"booking_id", "payment_token", "amount", "currency"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := payment.Request(paymentID, tt.booking, userID, tt.amount, tt.currency, tt.token, requestedAt)
			s := estest.New(t, p, err)
			if tt.fields == nil {
				s.Then(payment.Requested{PaymentID: paymentID, BookingID: tt.booking, UserID: userID, Amount: tt.amount, Currency: tt.currency, Token: tt.token, At: requestedAt})
				if p.Status() != payment.Processing || p.ID() != paymentID || p.BookingID() != tt.booking || p.UserID() != userID ||
					p.Amount() != tt.amount || p.Currency() != tt.currency || p.Token() != tt.token || !p.Exists() {
					t.Errorf("new payment reads %s %s %s %d %s", p.Status(), p.ID(), p.BookingID(), p.Amount(), p.Currency())
				}
				return
			}
			var in *fault.Input
			s.ThenError(&in)
			var got []string
			for _, f := range in.Fields {
				got = append(got, f.Field)
			}
			if !slices.Equal(got, tt.fields) {
				t.Errorf("invalid fields = %v, want %v", got, tt.fields)
			}
		})
	}
}

func TestZeroPaymentDoesNotExist(t *testing.T) {
	p := &payment.Payment{}
	if p.Exists() {
		t.Error("a payment replayed from an empty stream exists")
	}
	if err := p.Succeed("gw", now); err == nil {
		t.Error("a payment that was never requested succeeded")
	}
}

func TestStoredTypeNamesNeverChange(t *testing.T) {
	want := map[es.Payload]string{
		payment.Requested{}:       "payment.requested",
		payment.Settled{}:         "payment.succeeded",
		payment.Declined{}:        "payment.failed",
		payment.RefundRequested{}: "payment.refund_requested",
		payment.RefundCompleted{}: "payment.refunded",
	}
	r := es.NewRegistry()
	payment.Register(r)
	for p, name := range want {
		if p.EventType() != name {
			t.Errorf("%T is stored as %q, want %q", p, p.EventType(), name)
		}
		if !r.Known(name) {
			t.Errorf("Register does not register %q", name)
		}
	}
	if got := payment.Stream(paymentID); got != payment.StreamPrefix+paymentID.String() {
		t.Errorf("Stream = %q", got)
	}
}
