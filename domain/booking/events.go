package booking

import (
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
)

// Stable type names of the booking's domain events. They are stored in
// every record and must never change; a new shape gets a new schema version
// and an upcaster.
const (
	TypePlaced          = "booking.placed"
	TypeAwaitingPayment = "booking.awaiting_payment"
	TypeRejected        = "booking.rejected"
	TypeConfirmed       = "booking.confirmed"
	TypeExpired         = "booking.expired"
	TypeCancelled       = "booking.cancelled"
)

// Placed: a customer asked for seats; none are held yet.
type Placed struct {
	BookingID  uuid.UUID
	UserID     uuid.UUID
	EventID    uuid.UUID
	TicketType string
	Quantity   int
	At         time.Time
}

// AwaitingPayment: the event held the seats until ExpiresAt at the price
// of the moment, which the booking keeps whatever the event's price later
// becomes.
type AwaitingPayment struct {
	UnitPrice int64
	Amount    int64
	Currency  string
	ExpiresAt time.Time
	At        time.Time
}

// Rejected: the seats could not be held (Reason is one of the Reason*
// constants of the event package, or "event_cancelled").
type Rejected struct {
	Reason string
	At     time.Time
}

// Confirmed: the payment succeeded while the seats were held.
type Confirmed struct {
	PaymentID uuid.UUID
	At        time.Time
}

// Expired: the hold ran out unpaid.
type Expired struct {
	Reason string
	At     time.Time
}

// Cancelled: the customer, an admin or the event's cancellation ended the
// booking. From is the status it left and PaymentID the payment that
// confirmed it, if any.
//
// Refund is the booking's decision that PaymentID is to be refunded. It is
// recorded (since schema version 2) rather than left for each reaction to
// infer from From and PaymentID, so that a future refund policy (a fee, a
// cut-off before the show) changes the aggregate alone, and so that facts
// recorded under the old policy keep the meaning they had then: version 1
// records are read with the one rule version 1 knew (see upcastCancelledV1).
type Cancelled struct {
	Reason    string
	From      Status
	PaymentID uuid.UUID
	Refund    bool
	At        time.Time
}

func (Placed) EventType() string          { return TypePlaced }
func (AwaitingPayment) EventType() string { return TypeAwaitingPayment }
func (Rejected) EventType() string        { return TypeRejected }
func (Confirmed) EventType() string       { return TypeConfirmed }
func (Expired) EventType() string         { return TypeExpired }
func (Cancelled) EventType() string       { return TypeCancelled }

// Register adds the booking's events to r, each at its current schema
// version, with the upcasters that read the older versions still stored.
func Register(r *es.Registry) {
	r.Register(Placed{}, 1)
	r.Register(AwaitingPayment{}, 1)
	r.Register(Rejected{}, 1)
	r.Register(Confirmed{}, 1)
	r.Register(Expired{}, 1)
	r.Register(Cancelled{}, 2)
	r.RegisterUpcaster(TypeCancelled, 1, upcastCancelledV1)
}
