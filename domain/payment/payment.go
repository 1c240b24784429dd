// Package payment is the Payment aggregate: one attempt to pay for a
// booking, from processing to succeeded or failed, and a succeeded one to
// refunded.
package payment

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/fault"
)

// Status is where a payment stands.
type Status string

const (
	Processing    Status = "processing"
	Succeeded     Status = "succeeded"
	Failed        Status = "failed"
	RefundPending Status = "refund_pending"
	Refunded      Status = "refunded"
)

// Final reports whether the payment will not change any more by itself
// (a succeeded payment may still be refunded).
func (s Status) Final() bool { return s == Failed || s == Refunded }

// Stable type names of the payment's domain events.
const (
	TypeRequested       = "payment.requested"
	TypeSucceeded       = "payment.succeeded"
	TypeFailed          = "payment.failed"
	TypeRefundRequested = "payment.refund_requested"
	TypeRefunded        = "payment.refunded"
)

// Requested: the customer asked to pay for a booking with a provider token.
type Requested struct {
	PaymentID uuid.UUID
	BookingID uuid.UUID
	UserID    uuid.UUID
	Amount    int64
	Currency  string
	Token     string
	At        time.Time
}

// What happened to a payment after it was requested. Each carries the
// booking it pays for, so that other services can react without reading
// the payment's stream. The Go names differ from the type names only because
// the status constants already use the short words.
type (
	// Settled: the provider took the money.
	Settled struct {
		BookingID  uuid.UUID
		GatewayRef string
		At         time.Time
	}
	// Declined: the provider refused.
	Declined struct {
		BookingID  uuid.UUID
		GatewayRef string
		Reason     string
		At         time.Time
	}
	// RefundRequested: the money must go back (Reason says why).
	RefundRequested struct {
		BookingID uuid.UUID
		Reason    string
		At        time.Time
	}
	// RefundCompleted: the provider gave the money back.
	RefundCompleted struct {
		BookingID  uuid.UUID
		GatewayRef string
		At         time.Time
	}
)

func (Requested) EventType() string       { return TypeRequested }
func (Settled) EventType() string         { return TypeSucceeded }
func (Declined) EventType() string        { return TypeFailed }
func (RefundRequested) EventType() string { return TypeRefundRequested }
func (RefundCompleted) EventType() string { return TypeRefunded }

// Register adds the payment's events to r.
func Register(r *es.Registry) {
	r.Register(Requested{}, 1)
	r.Register(Settled{}, 1)
	r.Register(Declined{}, 1)
	r.Register(RefundRequested{}, 1)
	r.Register(RefundCompleted{}, 1)
}

// Stream is the name of payment id's stream.
func Stream(id uuid.UUID) string { return "payment-" + id.String() }

// StreamPrefix selects every payment stream.
const StreamPrefix = "payment-"

// TransitionError is a refused transition.
type TransitionError struct {
	Action string
	From   Status
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("payment: cannot %s a payment that is %s", e.Action, e.From)
}

// Is classifies the refusal as a state conflict.
func (e *TransitionError) Is(target error) bool { return target == fault.ErrConflict }

// Payment is the aggregate.
type Payment struct {
	es.Changes

	id            uuid.UUID
	bookingID     uuid.UUID
	userID        uuid.UUID
	amount        int64
	currency      string
	token         string
	status        Status
	failureReason string
	gatewayRef    string
	refundReason  string
	createdAt     time.Time
	updatedAt     time.Time
}

// Request decides a new payment attempt.
func Request(id, bookingID, userID uuid.UUID, amount int64, currency, token string, now time.Time) (*Payment, error) {
	var in fault.Input
	in.Check(bookingID != uuid.Nil, "booking_id", "is required")
	in.Check(token != "" && len(token) <= 255, "payment_token", "is required, at most 255 characters")
	in.Check(amount >= 0, "amount", "must not be negative")
	in.Check(len(currency) == 3, "currency", "must be an ISO 4217 code")
	if err := in.Err(); err != nil {
		return nil, err
	}
	p := &Payment{}
	p.record(Requested{PaymentID: id, BookingID: bookingID, UserID: userID, Amount: amount, Currency: currency, Token: token, At: now})
	return p, nil
}

// Succeed records the provider's success. A repeated notification is a
// no-op; success after failure is refused.
func (p *Payment) Succeed(gatewayRef string, now time.Time) error {
	switch p.status {
	case Processing:
		p.record(Settled{BookingID: p.bookingID, GatewayRef: gatewayRef, At: now})
		return nil
	case Succeeded, RefundPending, Refunded:
		return nil
	default:
		return &TransitionError{Action: "succeed", From: p.status}
	}
}

// Fail records the provider's refusal. A repeated notification is a no-op;
// failure after success is refused.
func (p *Payment) Fail(gatewayRef, reason string, now time.Time) error {
	switch p.status {
	case Processing:
		if reason == "" {
			reason = "declined"
		}
		p.record(Declined{BookingID: p.bookingID, GatewayRef: gatewayRef, Reason: reason, At: now})
		return nil
	case Failed:
		return nil
	default:
		return &TransitionError{Action: "fail", From: p.status}
	}
}

// RequestRefund asks for the money back. Only a succeeded payment can be
// refunded; asking again is a no-op.
func (p *Payment) RequestRefund(reason string, now time.Time) error {
	switch p.status {
	case Succeeded:
		p.record(RefundRequested{BookingID: p.bookingID, Reason: reason, At: now})
		return nil
	case RefundPending, Refunded:
		return nil
	default:
		return &TransitionError{Action: "refund", From: p.status}
	}
}

// CompleteRefund records that the provider gave the money back.
func (p *Payment) CompleteRefund(gatewayRef string, now time.Time) error {
	switch p.status {
	case RefundPending:
		p.record(RefundCompleted{BookingID: p.bookingID, GatewayRef: gatewayRef, At: now})
		return nil
	case Refunded:
		return nil
	default:
		return &TransitionError{Action: "complete the refund of", From: p.status}
	}
}

func (p *Payment) record(e es.Payload) {
	p.Apply(e)
	p.Record(e)
}

// Apply mutates the state by one event.
func (p *Payment) Apply(e es.Payload) {
	switch v := e.(type) {
	case Requested:
		p.id, p.bookingID, p.userID = v.PaymentID, v.BookingID, v.UserID
		p.amount, p.currency, p.token = v.Amount, v.Currency, v.Token
		p.status, p.createdAt, p.updatedAt = Processing, v.At, v.At
	case Settled:
		p.status, p.gatewayRef, p.updatedAt = Succeeded, v.GatewayRef, v.At
	case Declined:
		p.status, p.gatewayRef, p.failureReason, p.updatedAt = Failed, v.GatewayRef, v.Reason, v.At
	case RefundRequested:
		p.status, p.refundReason, p.updatedAt = RefundPending, v.Reason, v.At
	case RefundCompleted:
		p.status, p.updatedAt = Refunded, v.At
	}
}

func (p *Payment) ID() uuid.UUID         { return p.id }
func (p *Payment) BookingID() uuid.UUID  { return p.bookingID }
func (p *Payment) UserID() uuid.UUID     { return p.userID }
func (p *Payment) Amount() int64         { return p.amount }
func (p *Payment) Currency() string      { return p.currency }
func (p *Payment) Token() string         { return p.token }
func (p *Payment) Status() Status        { return p.status }
func (p *Payment) FailureReason() string { return p.failureReason }
func (p *Payment) GatewayRef() string    { return p.gatewayRef }
func (p *Payment) RefundReason() string  { return p.refundReason }
func (p *Payment) CreatedAt() time.Time  { return p.createdAt }
func (p *Payment) UpdatedAt() time.Time  { return p.updatedAt }
func (p *Payment) Exists() bool          { return p.id != uuid.Nil }
