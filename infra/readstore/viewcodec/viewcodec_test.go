package viewcodec

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/domain/user"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

var (
	at    = time.Date(2030, 3, 1, 10, 0, 0, 123456789, time.UTC)
	evID  = uuid.MustParse("00000000-0000-4000-8000-0000000000e1")
	bkID  = uuid.MustParse("00000000-0000-4000-8000-0000000000b1")
	usrID = uuid.MustParse("00000000-0000-4000-8000-0000000000a1")
	payID = uuid.MustParse("00000000-0000-4000-8000-0000000000f1")
)

func roundTrip[V any](t *testing.T, what string, v V, encode func(*V) ([]byte, error), decode func([]byte) (V, error), golden string) {
	t.Helper()
	data, err := encode(&v)
	if err != nil {
		t.Fatalf("%s: encode: %v", what, err)
	}
	// The stored bytes are a format: when this changes, bump the format
	// version of every read store adapter, so that they rebuild.
	if string(data) != golden {
		t.Errorf("%s: stored form changed:\n got %s\nwant %s", what, data, golden)
	}
	back, err := decode(data)
	if err != nil {
		t.Fatalf("%s: decode: %v", what, err)
	}
	if !reflect.DeepEqual(back, v) {
		t.Errorf("%s: round trip:\n got %+v\nwant %+v", what, back, v)
	}
}

func TestViewsRoundTripInTheirStoredForm(t *testing.T) {
	roundTrip(t, "event", readmodels.EventView{
		ID: evID, Name: "Jazz Night", Description: "Trio", Venue: "Teater Besar",
		StartsAt: at.Add(24 * time.Hour), Currency: "IDR", MaxPerBooking: 10, Status: event.Scheduled,
		TicketTypes: []readmodels.TicketTypeView{{Name: "A", Price: 100, Capacity: 10, Held: 2, Sold: 3, Available: 5}},
		CreatedAt:   at, UpdatedAt: at, Position: 7,
	}, EncodeEvent, DecodeEvent,
		`{"id":"00000000-0000-4000-8000-0000000000e1","name":"Jazz Night","description":"Trio","venue":"Teater Besar","starts_at":"2030-03-02T10:00:00.123456789Z","ends_at":"0001-01-01T00:00:00Z","currency":"IDR","max_per_booking":10,"status":"scheduled","ticket_types":[{"name":"A","price":100,"capacity":10,"held":2,"sold":3}],"created_at":"2030-03-01T10:00:00.123456789Z","updated_at":"2030-03-01T10:00:00.123456789Z","position":7}`)

	roundTrip(t, "booking", readmodels.BookingView{
		ID: bkID, UserID: usrID, EventID: evID, TicketType: "A", Quantity: 2, UnitPrice: 100, Amount: 200, Currency: "IDR",
		Status: booking.StatusConfirmed, ExpiresAt: at.Add(10 * time.Minute), PaymentID: payID,
		CreatedAt: at, UpdatedAt: at, Position: 9,
	}, EncodeBooking, DecodeBooking,
		`{"id":"00000000-0000-4000-8000-0000000000b1","user_id":"00000000-0000-4000-8000-0000000000a1","event_id":"00000000-0000-4000-8000-0000000000e1","ticket_type":"A","quantity":2,"unit_price":100,"amount":200,"currency":"IDR","status":"confirmed","expires_at":"2030-03-01T10:10:00.123456789Z","payment_id":"00000000-0000-4000-8000-0000000000f1","created_at":"2030-03-01T10:00:00.123456789Z","updated_at":"2030-03-01T10:00:00.123456789Z","position":9}`)

	roundTrip(t, "payment", readmodels.PaymentView{
		ID: payID, BookingID: bkID, UserID: usrID, Amount: 200, Currency: "IDR",
		Status: payment.Failed, FailureReason: "card_declined", CreatedAt: at, UpdatedAt: at, Position: 11,
	}, EncodePayment, DecodePayment,
		`{"id":"00000000-0000-4000-8000-0000000000f1","booking_id":"00000000-0000-4000-8000-0000000000b1","user_id":"00000000-0000-4000-8000-0000000000a1","amount":200,"currency":"IDR","status":"failed","failure_reason":"card_declined","created_at":"2030-03-01T10:00:00.123456789Z","updated_at":"2030-03-01T10:00:00.123456789Z","position":11}`)

	roundTrip(t, "profile", readmodels.ProfileView{
		ID: usrID, Email: "ayu@example.com", Name: "Ayu", Phone: "+62 812", Role: user.Customer,
		CreatedAt: at, UpdatedAt: at, Position: 1,
	}, EncodeProfile, DecodeProfile,
		`{"id":"00000000-0000-4000-8000-0000000000a1","email":"ayu@example.com","name":"Ayu","phone":"+62 812","role":"customer","created_at":"2030-03-01T10:00:00.123456789Z","updated_at":"2030-03-01T10:00:00.123456789Z","position":1}`)

	hold := projections.SeatHold{BookingID: bkID, EventID: evID, TicketType: "A", Quantity: 2, Sold: true}
	data, err := EncodeHold(&hold)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"event_id":"00000000-0000-4000-8000-0000000000e1","ticket_type":"A","quantity":2,"sold":true}`; string(data) != want {
		t.Errorf("hold: stored form changed:\n got %s\nwant %s", data, want)
	}
	if back, err := DecodeHold(bkID, data); err != nil || back != hold {
		t.Errorf("hold round trip: %+v, %v; want %+v", back, err, hold)
	}
}

func TestAvailableSeatsAreDerivedNotStored(t *testing.T) {
	v := readmodels.EventView{ID: evID, TicketTypes: []readmodels.TicketTypeView{{Name: "A", Capacity: 10, Held: 4, Sold: 1, Available: 999}}}
	data, err := EncodeEvent(&v)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeEvent(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.TicketTypes[0].Available; got != 5 {
		t.Fatalf("available = %d, want 10 - 4 - 1 = 5 whatever the view said", got)
	}
}

func TestUndecodableValuesAreErrors(t *testing.T) {
	for what, err := range map[string]error{
		"event":   second(DecodeEvent([]byte("{"))),
		"booking": second(DecodeBooking([]byte("[]"))),
		"payment": second(DecodePayment([]byte(`{"id":"not-a-uuid"}`))),
		"profile": second(DecodeProfile([]byte("nul"))),
		"hold":    second(DecodeHold(bkID, []byte(`{"quantity":"two"}`))),
	} {
		if err == nil {
			t.Errorf("%s: a corrupt value decoded without an error", what)
		}
	}
}

func second[V any](_ V, err error) error { return err }
