// Package viewcodec is the stored form of the read models' views, shared by
// the read store adapters (embedded and Redis): the same views, the same
// bytes, one definition.
//
// The shapes are the stores', with explicit JSON names, so that renaming a
// field of a view cannot silently change what is stored. A change of shape
// is a change of every adapter's stored format: bump each one's format
// version (embedded's "format", Redis's key-space "format"), which makes
// it rebuild from the log. Derived values (a ticket type's available
// seats) are not stored.
package viewcodec

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/domain/user"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

type eventRecord struct {
	ID            uuid.UUID          `json:"id"`
	Name          string             `json:"name"`
	Description   string             `json:"description,omitempty"`
	Venue         string             `json:"venue,omitempty"`
	StartsAt      time.Time          `json:"starts_at"`
	EndsAt        time.Time          `json:"ends_at"`
	Currency      string             `json:"currency"`
	MaxPerBooking int                `json:"max_per_booking"`
	Status        string             `json:"status"`
	TicketTypes   []ticketTypeRecord `json:"ticket_types"`
	CreatedAt     time.Time          `json:"created_at"`
	UpdatedAt     time.Time          `json:"updated_at"`
	Position      uint64             `json:"position"`
}

type ticketTypeRecord struct {
	Name     string `json:"name"`
	Price    int64  `json:"price"`
	Capacity int    `json:"capacity"`
	Held     int    `json:"held"`
	Sold     int    `json:"sold"`
}

// EncodeEvent is the stored form of an event view.
func EncodeEvent(v *readmodels.EventView) ([]byte, error) {
	r := eventRecord{
		ID: v.ID, Name: v.Name, Description: v.Description, Venue: v.Venue,
		StartsAt: v.StartsAt, EndsAt: v.EndsAt, Currency: v.Currency,
		MaxPerBooking: v.MaxPerBooking, Status: string(v.Status),
		TicketTypes: make([]ticketTypeRecord, len(v.TicketTypes)),
		CreatedAt:   v.CreatedAt, UpdatedAt: v.UpdatedAt, Position: v.Position,
	}
	for i, t := range v.TicketTypes {
		r.TicketTypes[i] = ticketTypeRecord{Name: t.Name, Price: t.Price, Capacity: t.Capacity, Held: t.Held, Sold: t.Sold}
	}
	return json.Marshal(&r)
}

// DecodeEvent reads an event view back, deriving what is not stored.
func DecodeEvent(data []byte) (readmodels.EventView, error) {
	var r eventRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return readmodels.EventView{}, err
	}
	v := readmodels.EventView{
		ID: r.ID, Name: r.Name, Description: r.Description, Venue: r.Venue,
		StartsAt: r.StartsAt, EndsAt: r.EndsAt, Currency: r.Currency,
		MaxPerBooking: r.MaxPerBooking, Status: event.Status(r.Status),
		TicketTypes: make([]readmodels.TicketTypeView, len(r.TicketTypes)),
		CreatedAt:   r.CreatedAt, UpdatedAt: r.UpdatedAt, Position: r.Position,
	}
	for i, t := range r.TicketTypes {
		v.TicketTypes[i] = readmodels.TicketTypeView{
			Name: t.Name, Price: t.Price, Capacity: t.Capacity, Held: t.Held, Sold: t.Sold,
			Available: readmodels.Available(t.Capacity, t.Held, t.Sold),
		}
	}
	return v, nil
}

type holdRecord struct {
	EventID    uuid.UUID `json:"event_id"`
	TicketType string    `json:"ticket_type"`
	Quantity   int       `json:"quantity"`
	Sold       bool      `json:"sold,omitempty"`
}

// EncodeHold is the stored form of a seat hold (keyed by its booking).
func EncodeHold(h *projections.SeatHold) ([]byte, error) {
	return json.Marshal(&holdRecord{EventID: h.EventID, TicketType: h.TicketType, Quantity: h.Quantity, Sold: h.Sold})
}

// DecodeHold reads back the seat hold of booking.
func DecodeHold(booking uuid.UUID, data []byte) (projections.SeatHold, error) {
	var r holdRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return projections.SeatHold{}, err
	}
	return projections.SeatHold{BookingID: booking, EventID: r.EventID, TicketType: r.TicketType, Quantity: r.Quantity, Sold: r.Sold}, nil
}

type bookingRecord struct {
	ID         uuid.UUID `json:"id"`
	UserID     uuid.UUID `json:"user_id"`
	EventID    uuid.UUID `json:"event_id"`
	TicketType string    `json:"ticket_type"`
	Quantity   int       `json:"quantity"`
	UnitPrice  int64     `json:"unit_price"`
	Amount     int64     `json:"amount"`
	Currency   string    `json:"currency,omitempty"`
	Status     string    `json:"status"`
	Reason     string    `json:"reason,omitempty"`
	ExpiresAt  time.Time `json:"expires_at"`
	PaymentID  uuid.UUID `json:"payment_id"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	Position   uint64    `json:"position"`
}

// EncodeBooking is the stored form of a booking view.
func EncodeBooking(v *readmodels.BookingView) ([]byte, error) {
	return json.Marshal(&bookingRecord{
		ID: v.ID, UserID: v.UserID, EventID: v.EventID, TicketType: v.TicketType,
		Quantity: v.Quantity, UnitPrice: v.UnitPrice, Amount: v.Amount, Currency: v.Currency,
		Status: string(v.Status), Reason: v.Reason, ExpiresAt: v.ExpiresAt, PaymentID: v.PaymentID,
		CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, Position: v.Position,
	})
}

// DecodeBooking reads a booking view back.
func DecodeBooking(data []byte) (readmodels.BookingView, error) {
	var r bookingRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return readmodels.BookingView{}, err
	}
	return readmodels.BookingView{
		ID: r.ID, UserID: r.UserID, EventID: r.EventID, TicketType: r.TicketType,
		Quantity: r.Quantity, UnitPrice: r.UnitPrice, Amount: r.Amount, Currency: r.Currency,
		Status: booking.Status(r.Status), Reason: r.Reason, ExpiresAt: r.ExpiresAt, PaymentID: r.PaymentID,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Position: r.Position,
	}, nil
}

type paymentRecord struct {
	ID            uuid.UUID `json:"id"`
	BookingID     uuid.UUID `json:"booking_id"`
	UserID        uuid.UUID `json:"user_id"`
	Amount        int64     `json:"amount"`
	Currency      string    `json:"currency"`
	Status        string    `json:"status"`
	FailureReason string    `json:"failure_reason,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	Position      uint64    `json:"position"`
}

// EncodePayment is the stored form of a payment view (and the message of
// the Redis payment feed).
func EncodePayment(v *readmodels.PaymentView) ([]byte, error) {
	return json.Marshal(&paymentRecord{
		ID: v.ID, BookingID: v.BookingID, UserID: v.UserID, Amount: v.Amount, Currency: v.Currency,
		Status: string(v.Status), FailureReason: v.FailureReason,
		CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, Position: v.Position,
	})
}

// DecodePayment reads a payment view back.
func DecodePayment(data []byte) (readmodels.PaymentView, error) {
	var r paymentRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return readmodels.PaymentView{}, err
	}
	return readmodels.PaymentView{
		ID: r.ID, BookingID: r.BookingID, UserID: r.UserID, Amount: r.Amount, Currency: r.Currency,
		Status: payment.Status(r.Status), FailureReason: r.FailureReason,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Position: r.Position,
	}, nil
}

type profileRecord struct {
	ID        uuid.UUID `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Phone     string    `json:"phone,omitempty"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Position  uint64    `json:"position"`
}

// EncodeProfile is the stored form of a profile view.
func EncodeProfile(v *readmodels.ProfileView) ([]byte, error) {
	return json.Marshal(&profileRecord{
		ID: v.ID, Email: v.Email, Name: v.Name, Phone: v.Phone, Role: string(v.Role),
		CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, Position: v.Position,
	})
}

// DecodeProfile reads a profile view back.
func DecodeProfile(data []byte) (readmodels.ProfileView, error) {
	var r profileRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return readmodels.ProfileView{}, err
	}
	return readmodels.ProfileView{
		ID: r.ID, Email: r.Email, Name: r.Name, Phone: r.Phone, Role: user.Role(r.Role),
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Position: r.Position,
	}, nil
}
