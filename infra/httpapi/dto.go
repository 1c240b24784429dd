package httpapi

import (
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/readmodels"
)

// The wire shapes of API.md. Absent optional values are null, never a
// zero time or a nil UUID.

type eventJSON struct {
	ID            uuid.UUID        `json:"id"`
	Name          string           `json:"name"`
	Description   string           `json:"description"`
	Venue         string           `json:"venue"`
	StartsAt      time.Time        `json:"starts_at"`
	EndsAt        *time.Time       `json:"ends_at"`
	Currency      string           `json:"currency"`
	MaxPerBooking int              `json:"max_per_booking"`
	Status        string           `json:"status"`
	TicketTypes   []ticketTypeJSON `json:"ticket_types"`
	CreatedAt     time.Time        `json:"created_at"`
	UpdatedAt     time.Time        `json:"updated_at"`
}

type ticketTypeJSON struct {
	Name      string `json:"name"`
	Price     int64  `json:"price"`
	Capacity  int    `json:"capacity"`
	Available int    `json:"available"`
}

type eventListJSON struct {
	Items      []eventJSON `json:"items"`
	NextCursor *string     `json:"next_cursor"`
}

type bookingJSON struct {
	ID         uuid.UUID  `json:"id"`
	UserID     uuid.UUID  `json:"user_id"`
	EventID    uuid.UUID  `json:"event_id"`
	TicketType string     `json:"ticket_type"`
	Quantity   int        `json:"quantity"`
	Amount     int64      `json:"amount"`
	Currency   string     `json:"currency"`
	Status     string     `json:"status"`
	Reason     *string    `json:"reason"`
	ExpiresAt  *time.Time `json:"expires_at"`
	PaymentID  *uuid.UUID `json:"payment_id"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

type bookingListJSON struct {
	Items      []bookingJSON `json:"items"`
	NextCursor *string       `json:"next_cursor"`
}

type paymentJSON struct {
	ID            uuid.UUID `json:"id"`
	BookingID     uuid.UUID `json:"booking_id"`
	Amount        int64     `json:"amount"`
	Currency      string    `json:"currency"`
	Status        string    `json:"status"`
	FailureReason *string   `json:"failure_reason"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

type profileJSON struct {
	ID        uuid.UUID `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Phone     string    `json:"phone"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type registeredJSON struct {
	ID    uuid.UUID `json:"id"`
	Email string    `json:"email"`
	Name  string    `json:"name"`
	Role  string    `json:"role"`
}

type tokenJSON struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func optID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

func eventFromView(v *readmodels.EventView) eventJSON {
	types := make([]ticketTypeJSON, len(v.TicketTypes))
	for i, t := range v.TicketTypes {
		types[i] = ticketTypeJSON{Name: t.Name, Price: t.Price, Capacity: t.Capacity, Available: t.Available}
	}
	return eventJSON{
		ID: v.ID, Name: v.Name, Description: v.Description, Venue: v.Venue,
		StartsAt: v.StartsAt.UTC(), EndsAt: optTime(v.EndsAt), Currency: v.Currency,
		MaxPerBooking: v.MaxPerBooking, Status: string(v.Status), TicketTypes: types,
		CreatedAt: v.CreatedAt.UTC(), UpdatedAt: v.UpdatedAt.UTC(),
	}
}

func eventFromState(s *commands.EventState) eventJSON {
	types := make([]ticketTypeJSON, len(s.TicketTypes))
	for i, t := range s.TicketTypes {
		types[i] = ticketTypeJSON{Name: t.Name, Price: t.Price, Capacity: t.Capacity, Available: t.Available}
	}
	d := s.Details
	return eventJSON{
		ID: s.ID, Name: d.Name, Description: d.Description, Venue: d.Venue,
		StartsAt: d.StartsAt.UTC(), EndsAt: optTime(d.EndsAt), Currency: s.Currency,
		MaxPerBooking: d.MaxPerBooking, Status: string(s.Status), TicketTypes: types,
		CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC(),
	}
}

func bookingFromView(v *readmodels.BookingView) bookingJSON {
	return bookingJSON{
		ID: v.ID, UserID: v.UserID, EventID: v.EventID, TicketType: v.TicketType, Quantity: v.Quantity,
		Amount: v.Amount, Currency: v.Currency, Status: string(v.Status), Reason: optString(v.Reason),
		ExpiresAt: optTime(v.ExpiresAt), PaymentID: optID(v.PaymentID),
		CreatedAt: v.CreatedAt.UTC(), UpdatedAt: v.UpdatedAt.UTC(),
	}
}

func bookingFromState(s *commands.BookingState) bookingJSON {
	return bookingJSON{
		ID: s.ID, UserID: s.UserID, EventID: s.EventID, TicketType: s.TicketType, Quantity: s.Quantity,
		Amount: s.Amount, Currency: s.Currency, Status: string(s.Status), Reason: optString(s.Reason),
		ExpiresAt: optTime(s.ExpiresAt), PaymentID: optID(s.PaymentID),
		CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC(),
	}
}

func paymentFromView(v *readmodels.PaymentView) paymentJSON {
	return paymentJSON{
		ID: v.ID, BookingID: v.BookingID, Amount: v.Amount, Currency: v.Currency, Status: string(v.Status),
		FailureReason: optString(v.FailureReason), CreatedAt: v.CreatedAt.UTC(), UpdatedAt: v.UpdatedAt.UTC(),
	}
}

func paymentFromState(s *commands.PaymentState) paymentJSON {
	return paymentJSON{
		ID: s.ID, BookingID: s.BookingID, Amount: s.Amount, Currency: s.Currency, Status: string(s.Status),
		FailureReason: optString(s.FailureReason), CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC(),
	}
}

func profileFromView(v *readmodels.ProfileView) profileJSON {
	return profileJSON{ID: v.ID, Email: v.Email, Name: v.Name, Phone: v.Phone, Role: string(v.Role), CreatedAt: v.CreatedAt.UTC(), UpdatedAt: v.UpdatedAt.UTC()}
}

func profileFromState(s *commands.UserState) profileJSON {
	return profileJSON{ID: s.ID, Email: s.Email, Name: s.Name, Phone: s.Phone, Role: string(s.Role), CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC()}
}
