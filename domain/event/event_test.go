package event_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/es/estest"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/fault"
)

var (
	createdAt = time.Date(2030, 3, 1, 9, 0, 0, 0, time.UTC)
	now       = createdAt.Add(24 * time.Hour)
	startsAt  = time.Date(2030, 6, 1, 19, 0, 0, 0, time.UTC)
	endsAt    = startsAt.Add(3 * time.Hour)

	eventID = uuid.MustParse("00000000-0000-4000-8000-0000000000ee")

	details = event.Details{Name: "Java Jazz", Description: "Three stages.", Venue: "JIExpo", StartsAt: startsAt, EndsAt: endsAt, MaxPerBooking: 4}
	vip     = event.TicketType{Name: "VIP", Price: 1_500_000, Capacity: 10}
	regular = event.TicketType{Name: "Regular", Price: 500_000, Capacity: 100}
	created = event.Created{EventID: eventID, Details: details, Currency: "IDR", TicketTypes: []event.TicketType{vip, regular}, At: createdAt}
)

// bk returns the id of booking n; ids sort by n.
func bk(n int) uuid.UUID { return uuid.MustParse(fmt.Sprintf("00000000-0000-4000-8000-%012x", n)) }

func held(n int, t event.TicketType, qty int) event.SeatsHeld {
	return event.SeatsHeld{BookingID: bk(n), TicketType: t.Name, Quantity: qty, UnitPrice: t.Price, Currency: "IDR", At: createdAt.Add(time.Hour)}
}

func refused(n int, typ string, qty int, reason string) event.SeatsRefused {
	return event.SeatsRefused{BookingID: bk(n), TicketType: typ, Quantity: qty, Reason: reason, At: createdAt.Add(time.Hour)}
}

func sold(n int) event.SeatsSold {
	return event.SeatsSold{BookingID: bk(n), At: createdAt.Add(2 * time.Hour)}
}

func released(n int, t event.TicketType, qty int) event.SeatsReleased {
	return event.SeatsReleased{BookingID: bk(n), TicketType: t.Name, Quantity: qty, At: createdAt.Add(3 * time.Hour)}
}

func with(t event.TicketType, capacity int) event.TicketType {
	t.Capacity = capacity
	return t
}

// seatCounts is what the listing shows of each ticket type.
func seatCounts(e *event.Event) map[string][3]int {
	out := map[string][3]int{}
	for _, t := range e.TicketTypes() {
		out[t.Name] = [3]int{t.Held, t.Sold, t.Available}
	}
	return out
}

func invalidFields(t *testing.T, err error) []string {
	t.Helper()
	var in *fault.Input
	if !errors.As(err, &in) {
		t.Fatalf("error %v (%T) is not a *fault.Input", err, err)
	}
	var fields []string
	for _, f := range in.Fields {
		fields = append(fields, f.Field)
		if f.Message == "" {
			t.Errorf("field %s has no message", f.Field)
		}
	}
	return fields
}

func TestCreate(t *testing.T) {
	many := make([]event.TicketType, event.MaxTicketTypes+1)
	for i := range many {
		many[i] = event.TicketType{Name: fmt.Sprintf("T%d", i), Capacity: 1}
	}
	tests := []struct {
		name     string
		id       uuid.UUID
		change   func(d *event.Details)
		currency string
		types    []event.TicketType
		fields   []string // nil when valid
	}{
		{"valid", eventID, nil, "IDR", []event.TicketType{vip, regular}, nil},
		{"no end time", eventID, func(d *event.Details) { d.EndsAt = time.Time{} }, "IDR", []event.TicketType{vip}, nil},
		{"free, sold-out ticket type", eventID, nil, "IDR", []event.TicketType{{Name: "Guest list", Price: 0, Capacity: 0}}, nil},
		{"the most ticket types", eventID, nil, "IDR", many[:event.MaxTicketTypes], nil},
		{"the largest capacity", eventID, nil, "IDR", []event.TicketType{with(vip, event.MaxCapacity)}, nil},
		{"the most seats per booking", eventID, func(d *event.Details) { d.MaxPerBooking = event.MaxPerBookingLimit }, "IDR", []event.TicketType{vip}, nil},
		{"no id", uuid.Nil, nil, "IDR", []event.TicketType{vip}, []string{"id"}},
		{"no currency", eventID, nil, "", []event.TicketType{vip}, []string{"currency"}},
		{"lower-case currency", eventID, nil, "idr", []event.TicketType{vip}, []string{"currency"}},
		{"currency not three letters", eventID, nil, "RUPIAH", []event.TicketType{vip}, []string{"currency"}},
		{"currency with a digit", eventID, nil, "ID1", []event.TicketType{vip}, []string{"currency"}},
		{"no start", eventID, func(d *event.Details) { d.StartsAt, d.EndsAt = time.Time{}, time.Time{} }, "IDR", []event.TicketType{vip}, []string{"starts_at"}},
		{"starts in the past", eventID, func(d *event.Details) { d.StartsAt, d.EndsAt = createdAt.Add(-time.Hour), time.Time{} }, "IDR", []event.TicketType{vip}, []string{"starts_at"}},
		{"starts right now", eventID, func(d *event.Details) { d.StartsAt, d.EndsAt = createdAt, time.Time{} }, "IDR", []event.TicketType{vip}, []string{"starts_at"}},
		{"ends before it starts", eventID, func(d *event.Details) { d.EndsAt = startsAt.Add(-time.Minute) }, "IDR", []event.TicketType{vip}, []string{"ends_at"}},
		{"ends as it starts", eventID, func(d *event.Details) { d.EndsAt = startsAt }, "IDR", []event.TicketType{vip}, []string{"ends_at"}},
		{"longest name, description and venue, in characters", eventID, func(d *event.Details) {
			d.Name, d.Description, d.Venue = strings.Repeat("ジ", 200), strings.Repeat("é", 10_000), strings.Repeat("ü", 200)
		}, "IDR", []event.TicketType{{Name: strings.Repeat("席", 100), Capacity: 1}}, nil},
		{"no name", eventID, func(d *event.Details) { d.Name = "" }, "IDR", []event.TicketType{vip}, []string{"name"}},
		{"a blank name", eventID, func(d *event.Details) { d.Name = "  \t" }, "IDR", []event.TicketType{vip}, []string{"name"}},
		{"name too long in characters", eventID, func(d *event.Details) { d.Name = strings.Repeat("ジ", 201) }, "IDR", []event.TicketType{vip}, []string{"name"}},
		{"a blank ticket type name", eventID, nil, "IDR", []event.TicketType{{Name: " ", Capacity: 1}}, []string{"ticket_types[0].name"}},
		{"name too long", eventID, func(d *event.Details) { d.Name = strings.Repeat("n", 201) }, "IDR", []event.TicketType{vip}, []string{"name"}},
		{"description too long", eventID, func(d *event.Details) { d.Description = strings.Repeat("d", 10_001) }, "IDR", []event.TicketType{vip}, []string{"description"}},
		{"venue too long", eventID, func(d *event.Details) { d.Venue = strings.Repeat("v", 201) }, "IDR", []event.TicketType{vip}, []string{"venue"}},
		{"negative max per booking", eventID, func(d *event.Details) { d.MaxPerBooking = -1 }, "IDR", []event.TicketType{vip}, []string{"max_per_booking"}},
		{"max per booking over the limit", eventID, func(d *event.Details) { d.MaxPerBooking = event.MaxPerBookingLimit + 1 }, "IDR", []event.TicketType{vip}, []string{"max_per_booking"}},
		{"no ticket types", eventID, nil, "IDR", nil, []string{"ticket_types"}},
		{"too many ticket types", eventID, nil, "IDR", many, []string{"ticket_types"}},
		{"second ticket type unnamed", eventID, nil, "IDR", []event.TicketType{vip, {Capacity: 5}}, []string{"ticket_types[1].name"}},
		{"ticket type name too long", eventID, nil, "IDR", []event.TicketType{{Name: strings.Repeat("t", 101), Capacity: 5}}, []string{"ticket_types[0].name"}},
		{"ticket type names repeat", eventID, nil, "IDR", []event.TicketType{vip, regular, with(vip, 3)}, []string{"ticket_types[2].name"}},
		{"negative price", eventID, nil, "IDR", []event.TicketType{regular, {Name: "Cheap", Price: -1, Capacity: 5}}, []string{"ticket_types[1].price"}},
		{"negative capacity", eventID, nil, "IDR", []event.TicketType{with(vip, -1)}, []string{"ticket_types[0].capacity"}},
		{"capacity over the limit", eventID, nil, "IDR", []event.TicketType{with(vip, event.MaxCapacity+1)}, []string{"ticket_types[0].capacity"}},
		{"everything wrong at once", uuid.Nil, func(d *event.Details) { *d = event.Details{MaxPerBooking: -1} }, "", []event.TicketType{{Price: -1, Capacity: -1}},
			[]string{"id", "currency", "name", "starts_at", "max_per_booking", "ticket_types[0].name", "ticket_types[0].price", "ticket_types[0].capacity"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := details
			if tt.change != nil {
				tt.change(&d)
			}
			e, err := event.Create(tt.id, d, tt.currency, tt.types, createdAt)
			s := estest.New(t, e, err)
			if tt.fields == nil {
				s.Then(event.Created{EventID: tt.id, Details: d, Currency: tt.currency, TicketTypes: tt.types, At: createdAt})
				return
			}
			s.ThenError(new(*fault.Input))
			if got := invalidFields(t, err); !slices.Equal(got, tt.fields) {
				t.Errorf("invalid fields = %v, want %v", got, tt.fields)
			}
		})
	}
}

func TestCreateDefaultsMaxPerBooking(t *testing.T) {
	d := details
	d.MaxPerBooking = 0
	e, err := event.Create(eventID, d, "IDR", []event.TicketType{vip}, createdAt)
	want := d
	want.MaxPerBooking = event.DefaultMaxPerBooking
	estest.New(t, e, err).Then(event.Created{EventID: eventID, Details: want, Currency: "IDR", TicketTypes: []event.TicketType{vip}, At: createdAt})
	if e.Details().MaxPerBooking != 10 {
		t.Errorf("max per booking = %d, want the default 10", e.Details().MaxPerBooking)
	}
}

func TestCreatedEventReads(t *testing.T) {
	types := []event.TicketType{vip, regular}
	e, err := event.Create(eventID, details, "IDR", types, createdAt)
	if err != nil {
		t.Fatal(err)
	}
	types[0].Capacity = 1 // the caller's slice is not the event's
	want := []event.TicketTypeState{
		{TicketType: vip, Available: 10},
		{TicketType: regular, Available: 100},
	}
	if got := e.TicketTypes(); !slices.Equal(got, want) {
		t.Errorf("ticket types = %+v, want %+v", got, want)
	}
	if e.ID() != eventID || e.Status() != event.Scheduled || e.Currency() != "IDR" || e.Details() != details ||
		!e.CreatedAt().Equal(createdAt) || !e.UpdatedAt().Equal(createdAt) || !e.Exists() {
		t.Errorf("new event reads %s %s %s %+v", e.ID(), e.Status(), e.Currency(), e.Details())
	}
	if (&event.Event{}).Exists() {
		t.Error("an event replayed from an empty stream exists")
	}
}

func TestUpdate(t *testing.T) {
	later := details
	later.Name, later.StartsAt, later.EndsAt = "Java Jazz 2030", startsAt.Add(24*time.Hour), time.Time{}
	keepMax := later
	keepMax.MaxPerBooking = 0
	withKeptMax := keepMax
	withKeptMax.MaxPerBooking = details.MaxPerBooking
	balcony := event.TicketType{Name: "Balcony", Price: 250_000, Capacity: 40}

	tests := []struct {
		name    string
		history []es.Payload
		details event.Details
		types   []event.TicketType
		want    es.Payload // the Updated recorded; nil when refused
		refusal func(t *testing.T, err error)
	}{
		{"details and prices", []es.Payload{created}, later, []event.TicketType{{Name: "VIP", Price: 2_000_000, Capacity: 10}, regular},
			event.Updated{Details: later, TicketTypes: []event.TicketType{{Name: "VIP", Price: 2_000_000, Capacity: 10}, regular}, At: now}, nil},
		{"no max per booking keeps the current one", []es.Payload{created}, keepMax, []event.TicketType{vip, regular},
			event.Updated{Details: withKeptMax, TicketTypes: []event.TicketType{vip, regular}, At: now}, nil},
		{"add a ticket type", []es.Payload{created}, details, []event.TicketType{vip, regular, balcony},
			event.Updated{Details: details, TicketTypes: []event.TicketType{vip, regular, balcony}, At: now}, nil},
		{"remove a ticket type nothing is held or sold of", []es.Payload{created, held(1, regular, 2)}, details, []event.TicketType{regular},
			event.Updated{Details: details, TicketTypes: []event.TicketType{regular}, At: now}, nil},
		{"remove a ticket type whose seats were all released or refused", []es.Payload{created, held(1, vip, 2), released(1, vip, 2), refused(2, "VIP", 9, event.ReasonOverLimit)}, details, []event.TicketType{regular},
			event.Updated{Details: details, TicketTypes: []event.TicketType{regular}, At: now}, nil},
		{"capacity down to exactly what is held and sold", []es.Payload{created, held(1, vip, 3), held(2, vip, 4), sold(2)}, details, []event.TicketType{with(vip, 7), regular},
			event.Updated{Details: details, TicketTypes: []event.TicketType{with(vip, 7), regular}, At: now}, nil},
		{"capacity below what is held and sold", []es.Payload{created, held(1, vip, 3), held(2, vip, 4), sold(2)}, details, []event.TicketType{with(vip, 6), regular},
			nil, wantCapacityError("VIP", 6, 7)},
		{"capacity below what is held", []es.Payload{created, held(1, regular, 4)}, details, []event.TicketType{vip, with(regular, 3)},
			nil, wantCapacityError("Regular", 3, 4)},
		{"remove a ticket type with sold seats", []es.Payload{created, held(1, vip, 2), sold(1)}, details, []event.TicketType{regular},
			nil, wantCapacityError("VIP", 0, 2)},
		{"rename a ticket type with held seats", []es.Payload{created, held(1, vip, 2)}, details, []event.TicketType{{Name: "V.I.P.", Price: vip.Price, Capacity: 10}, regular},
			nil, wantCapacityError("VIP", 0, 2)},
		{"a cancelled event", []es.Payload{created, event.Cancelled{At: now}}, later, []event.TicketType{vip},
			nil, func(t *testing.T, err error) {
				if !errors.Is(err, event.ErrCancelled) || !errors.Is(err, fault.ErrConflict) {
					t.Errorf("error %v, want event.ErrCancelled, a conflict", err)
				}
			}},
		{"invalid fields", []es.Payload{created}, event.Details{StartsAt: startsAt, MaxPerBooking: 500}, []event.TicketType{vip, with(vip, 1)},
			nil, func(t *testing.T, err error) {
				want := []string{"name", "max_per_booking", "ticket_types[1].name"}
				if got := invalidFields(t, err); !slices.Equal(got, want) {
					t.Errorf("invalid fields = %v, want %v", got, want)
				}
			}},
		{"no ticket types", []es.Payload{created}, details, nil,
			nil, func(t *testing.T, err error) {
				if got := invalidFields(t, err); !slices.Equal(got, []string{"ticket_types"}) {
					t.Errorf("invalid fields = %v, want [ticket_types]", got)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &event.Event{}
			s := estest.Given(t, e, tt.history...)
			err := e.Update(tt.details, tt.types, now)
			s.When(err)
			if tt.want != nil {
				s.Then(tt.want)
				return
			}
			s.ThenError(new(error)) // refused, recording nothing; tt.refusal says how
			tt.refusal(t, err)
		})
	}
}

func wantCapacityError(typ string, capacity, committed int) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		var ce *event.CapacityError
		if !errors.As(err, &ce) || !errors.Is(err, fault.ErrConflict) {
			t.Fatalf("error %v, want a *CapacityError, a conflict", err)
		}
		want := event.CapacityError{TicketType: typ, Capacity: capacity, Committed: committed}
		if *ce != want {
			t.Errorf("refusal = %+v, want %+v", *ce, want)
		}
		if !strings.Contains(ce.Error(), fmt.Sprintf("%d seats are held or sold", committed)) {
			t.Errorf("message %q does not say how many seats are committed", ce.Error())
		}
	}
}

func TestUpdateKeepsSeatsWithTheirTicketType(t *testing.T) {
	// Reordering, adding and removing ticket types must not move committed
	// seats from one ticket type to another.
	e := &event.Event{}
	estest.Given(t, e, created, held(1, vip, 2), held(2, regular, 5), sold(2), held(3, regular, 1))
	balcony := event.TicketType{Name: "Balcony", Price: 1, Capacity: 3}
	if err := e.Update(details, []event.TicketType{balcony, with(regular, 50), with(vip, 8)}, now); err != nil {
		t.Fatal(err)
	}
	want := map[string][3]int{"Balcony": {0, 0, 3}, "Regular": {1, 5, 44}, "VIP": {2, 0, 6}}
	if got := seatCounts(e); !mapsEqual(got, want) {
		t.Fatalf("after update (held, sold, available) = %v, want %v", got, want)
	}
	// The bookings still point at their own ticket type.
	e.Release(bk(1), now)
	if err := e.Sell(bk(3), now); err != nil {
		t.Fatal(err)
	}
	want = map[string][3]int{"Balcony": {0, 0, 3}, "Regular": {0, 6, 44}, "VIP": {0, 0, 8}}
	if got := seatCounts(e); !mapsEqual(got, want) {
		t.Errorf("after release and sale (held, sold, available) = %v, want %v", got, want)
	}
	if r := e.Pending()[1].(event.SeatsReleased); r.TicketType != "VIP" || r.Quantity != 2 {
		t.Errorf("released %d %s, want 2 VIP", r.Quantity, r.TicketType)
	}
}

func mapsEqual(a, b map[string][3]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestPriceChangesDoNotAffectExistingHolds(t *testing.T) {
	e := &event.Event{}
	estest.Given(t, e, created, held(1, vip, 2))
	dearer := event.TicketType{Name: "VIP", Price: 2_000_000, Capacity: 10}
	if err := e.Update(details, []event.TicketType{dearer, regular}, now); err != nil {
		t.Fatal(err)
	}
	if ok, reason := e.Hold(bk(2), "VIP", 1, now); !ok {
		t.Fatalf("hold after the price change refused: %s", reason)
	}
	// A repeated hold of the first booking answers as before, without a
	// new price; selling it does not reprice it.
	if ok, _ := e.Hold(bk(1), "VIP", 2, now); !ok {
		t.Fatal("repeated hold of the first booking refused")
	}
	if err := e.Sell(bk(1), now); err != nil {
		t.Fatal(err)
	}
	want := []es.Payload{
		event.Updated{Details: details, TicketTypes: []event.TicketType{dearer, regular}, At: now},
		event.SeatsHeld{BookingID: bk(2), TicketType: "VIP", Quantity: 1, UnitPrice: 2_000_000, Currency: "IDR", At: now},
		event.SeatsSold{BookingID: bk(1), At: now},
	}
	if d := estest.Diff(e.Pending(), want); d != "" {
		t.Errorf("recorded:\n%s", d)
	}
	if got := seatCounts(e)["VIP"]; got != [3]int{1, 2, 7} {
		t.Errorf("VIP (held, sold, available) = %v, want [1 2 7]", got)
	}
}

func TestHold(t *testing.T) {
	cancelled := event.Cancelled{Reason: "storm", At: now}
	tests := []struct {
		name       string
		history    []es.Payload
		booking    int
		ticketType string
		quantity   int
		at         time.Time
		want       es.Payload // SeatsHeld or SeatsRefused; nil when nothing is recorded
		held       bool
		reason     string
	}{
		{"seats available", []es.Payload{created}, 1, "VIP", 2, now,
			event.SeatsHeld{BookingID: bk(1), TicketType: "VIP", Quantity: 2, UnitPrice: 1_500_000, Currency: "IDR", At: now}, true, ""},
		{"the last seats", []es.Payload{created, held(2, vip, 4), held(3, vip, 4)}, 1, "VIP", 2, now,
			event.SeatsHeld{BookingID: bk(1), TicketType: "VIP", Quantity: 2, UnitPrice: 1_500_000, Currency: "IDR", At: now}, true, ""},
		{"as many as allowed per booking", []es.Payload{created}, 1, "Regular", 4, now,
			event.SeatsHeld{BookingID: bk(1), TicketType: "Regular", Quantity: 4, UnitPrice: 500_000, Currency: "IDR", At: now}, true, ""},
		{"released seats are available again", []es.Payload{created, held(2, vip, 4), held(3, vip, 4), sold(3), held(4, vip, 2), released(4, vip, 2), released(3, vip, 4)}, 1, "VIP", 4, now,
			event.SeatsHeld{BookingID: bk(1), TicketType: "VIP", Quantity: 4, UnitPrice: 1_500_000, Currency: "IDR", At: now}, true, ""},
		{"a minute before the start", []es.Payload{created}, 1, "VIP", 1, startsAt.Add(-time.Minute),
			event.SeatsHeld{BookingID: bk(1), TicketType: "VIP", Quantity: 1, UnitPrice: 1_500_000, Currency: "IDR", At: startsAt.Add(-time.Minute)}, true, ""},

		{"sold out", []es.Payload{created, held(2, vip, 4), held(3, vip, 4), sold(3)}, 1, "VIP", 3, now,
			event.SeatsRefused{BookingID: bk(1), TicketType: "VIP", Quantity: 3, Reason: event.ReasonSoldOut, At: now}, false, event.ReasonSoldOut},
		{"a ticket type with no capacity", []es.Payload{created, event.Updated{Details: details, TicketTypes: []event.TicketType{with(vip, 0), regular}}}, 1, "VIP", 1, now,
			event.SeatsRefused{BookingID: bk(1), TicketType: "VIP", Quantity: 1, Reason: event.ReasonSoldOut, At: now}, false, event.ReasonSoldOut},
		{"the event is cancelled", []es.Payload{created, cancelled}, 1, "VIP", 1, now,
			event.SeatsRefused{BookingID: bk(1), TicketType: "VIP", Quantity: 1, Reason: event.ReasonEventCancelled, At: now}, false, event.ReasonEventCancelled},
		{"cancelled wins over every other reason", []es.Payload{created, cancelled}, 1, "Balcony", 0, endsAt,
			event.SeatsRefused{BookingID: bk(1), TicketType: "Balcony", Quantity: 0, Reason: event.ReasonEventCancelled, At: endsAt}, false, event.ReasonEventCancelled},
		{"unknown ticket type", []es.Payload{created}, 1, "Balcony", 1, now,
			event.SeatsRefused{BookingID: bk(1), TicketType: "Balcony", Quantity: 1, Reason: event.ReasonUnknownTicketType, At: now}, false, event.ReasonUnknownTicketType},
		{"ticket type names are case-sensitive", []es.Payload{created}, 1, "vip", 1, now,
			event.SeatsRefused{BookingID: bk(1), TicketType: "vip", Quantity: 1, Reason: event.ReasonUnknownTicketType, At: now}, false, event.ReasonUnknownTicketType},
		{"a removed ticket type", []es.Payload{created, event.Updated{Details: details, TicketTypes: []event.TicketType{regular}}}, 1, "VIP", 1, now,
			event.SeatsRefused{BookingID: bk(1), TicketType: "VIP", Quantity: 1, Reason: event.ReasonUnknownTicketType, At: now}, false, event.ReasonUnknownTicketType},
		{"more than allowed per booking", []es.Payload{created}, 1, "Regular", 5, now,
			event.SeatsRefused{BookingID: bk(1), TicketType: "Regular", Quantity: 5, Reason: event.ReasonOverLimit, At: now}, false, event.ReasonOverLimit},
		{"no seats", []es.Payload{created}, 1, "Regular", 0, now,
			event.SeatsRefused{BookingID: bk(1), TicketType: "Regular", Quantity: 0, Reason: event.ReasonOverLimit, At: now}, false, event.ReasonOverLimit},
		{"negative seats", []es.Payload{created}, 1, "Regular", -2, now,
			event.SeatsRefused{BookingID: bk(1), TicketType: "Regular", Quantity: -2, Reason: event.ReasonOverLimit, At: now}, false, event.ReasonOverLimit},
		{"over the limit even when sold out", []es.Payload{created, held(2, vip, 4), held(3, vip, 4), held(4, vip, 2)}, 1, "VIP", 5, now,
			event.SeatsRefused{BookingID: bk(1), TicketType: "VIP", Quantity: 5, Reason: event.ReasonOverLimit, At: now}, false, event.ReasonOverLimit},
		{"at the start", []es.Payload{created}, 1, "VIP", 1, startsAt,
			event.SeatsRefused{BookingID: bk(1), TicketType: "VIP", Quantity: 1, Reason: event.ReasonSalesClosed, At: startsAt}, false, event.ReasonSalesClosed},
		{"after the event", []es.Payload{created}, 1, "VIP", 1, endsAt.Add(time.Hour),
			event.SeatsRefused{BookingID: bk(1), TicketType: "VIP", Quantity: 1, Reason: event.ReasonSalesClosed, At: endsAt.Add(time.Hour)}, false, event.ReasonSalesClosed},

		// A booking the event decided on gets the original answer, and
		// nothing is recorded, whatever changed since.
		{"repeat of a hold", []es.Payload{created, held(1, vip, 2)}, 1, "VIP", 2, now, nil, true, ""},
		{"repeat of a hold, now sold out", []es.Payload{created, held(1, vip, 2), held(2, vip, 4), held(3, vip, 4)}, 1, "VIP", 2, now, nil, true, ""},
		{"repeat of a hold with other seats", []es.Payload{created, held(1, vip, 2)}, 1, "Regular", 3, now, nil, true, ""},
		{"repeat of a hold after the sale", []es.Payload{created, held(1, vip, 2), sold(1)}, 1, "VIP", 2, now, nil, true, ""},
		{"repeat of a hold after the release", []es.Payload{created, held(1, vip, 2), released(1, vip, 2)}, 1, "VIP", 2, now, nil, true, ""},
		{"repeat of a hold after cancellation", []es.Payload{created, held(1, vip, 2), cancelled}, 1, "VIP", 2, now, nil, true, ""},
		{"repeat of a refusal, now available", []es.Payload{created, held(2, vip, 4), held(3, vip, 4), held(4, vip, 2), refused(1, "VIP", 2, event.ReasonSoldOut), released(4, vip, 2)}, 1, "VIP", 2, now,
			nil, false, event.ReasonSoldOut},
		{"repeat of a refusal for an unknown ticket type", []es.Payload{created, refused(1, "Balcony", 1, event.ReasonUnknownTicketType)}, 1, "Balcony", 1, now,
			nil, false, event.ReasonUnknownTicketType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &event.Event{}
			s := estest.Given(t, e, tt.history...)
			before := seatCounts(e)
			ok, reason := e.Hold(bk(tt.booking), tt.ticketType, tt.quantity, tt.at)
			if ok != tt.held || reason != tt.reason {
				t.Errorf("Hold = %v %q, want %v %q", ok, reason, tt.held, tt.reason)
			}
			if tt.want == nil {
				s.Then()
			} else {
				s.Then(tt.want)
			}
			// Seats move only on a new hold, by exactly the quantity.
			after := seatCounts(e)
			for name, b := range before {
				a := after[name]
				delta := 0
				if tt.held && tt.want != nil && name == tt.ticketType {
					delta = tt.quantity
				}
				if a[0] != b[0]+delta || a[2] != b[2]-delta || a[1] != b[1] {
					t.Errorf("%s (held, sold, available) went from %v to %v", name, b, a)
				}
			}
		})
	}
}

func TestSell(t *testing.T) {
	tests := []struct {
		name    string
		history []es.Payload
		booking int
		state   string // the SellError's state; "" when the sale is not refused
		want    []es.Payload
	}{
		{"held seats", []es.Payload{created, held(1, vip, 2)}, 1, "", []es.Payload{event.SeatsSold{BookingID: bk(1), At: now}}},
		{"held seats of a cancelled event", []es.Payload{created, held(1, vip, 2), event.Cancelled{Bookings: []uuid.UUID{bk(1)}}}, 1, "", []es.Payload{event.SeatsSold{BookingID: bk(1), At: now}}},
		{"sold seats again", []es.Payload{created, held(1, vip, 2), sold(1)}, 1, "", nil},
		{"released seats", []es.Payload{created, held(1, vip, 2), released(1, vip, 2)}, 1, "released", nil},
		{"refused seats", []es.Payload{created, refused(1, "VIP", 20, event.ReasonOverLimit)}, 1, "refused", nil},
		{"seats never asked for", []es.Payload{created, held(2, vip, 2)}, 1, "unknown", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &event.Event{}
			s := estest.Given(t, e, tt.history...).When(e.Sell(bk(tt.booking), now))
			if tt.state == "" {
				s.Then(tt.want...)
				if got := seatCounts(e)["VIP"]; tt.booking == 1 && (got[0] != 0 || got[1] != 2) {
					t.Errorf("VIP (held, sold, available) = %v, want 2 sold", got)
				}
				return
			}
			var se *event.SellError
			s.ThenError(&se, fault.ErrConflict)
			if se.BookingID != bk(tt.booking) || se.State != tt.state {
				t.Errorf("refusal = %+v, want booking %s and state %q", se, bk(tt.booking), tt.state)
			}
			if !strings.Contains(se.Error(), "they are "+tt.state) {
				t.Errorf("message %q does not say the seats are %s", se.Error(), tt.state)
			}
		})
	}
}

func TestRelease(t *testing.T) {
	tests := []struct {
		name    string
		history []es.Payload
		want    []es.Payload
		counts  [3]int // VIP (held, sold, available) afterwards
	}{
		{"held seats", []es.Payload{created, held(1, vip, 2), held(2, vip, 3)},
			[]es.Payload{event.SeatsReleased{BookingID: bk(1), TicketType: "VIP", Quantity: 2, At: now}}, [3]int{3, 0, 7}},
		{"sold seats", []es.Payload{created, held(1, vip, 2), sold(1), held(2, vip, 3)},
			[]es.Payload{event.SeatsReleased{BookingID: bk(1), TicketType: "VIP", Quantity: 2, At: now}}, [3]int{3, 0, 7}},
		{"seats of a cancelled event", []es.Payload{created, held(1, vip, 2), event.Cancelled{Bookings: []uuid.UUID{bk(1)}}},
			[]es.Payload{event.SeatsReleased{BookingID: bk(1), TicketType: "VIP", Quantity: 2, At: now}}, [3]int{0, 0, 10}},
		{"released seats again", []es.Payload{created, held(1, vip, 2), released(1, vip, 2)}, nil, [3]int{0, 0, 10}},
		{"refused seats", []es.Payload{created, refused(1, "VIP", 20, event.ReasonOverLimit)}, nil, [3]int{0, 0, 10}},
		{"seats never asked for", []es.Payload{created, held(2, vip, 3)}, nil, [3]int{3, 0, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &event.Event{}
			s := estest.Given(t, e, tt.history...)
			e.Release(bk(1), now)
			s.Then(tt.want...)
			if got := seatCounts(e)["VIP"]; got != tt.counts {
				t.Errorf("VIP (held, sold, available) = %v, want %v", got, tt.counts)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name    string
		history []es.Payload
		want    []es.Payload
	}{
		{"lists the bookings with held or sold seats, sorted", []es.Payload{
			created,
			held(7, vip, 1), held(3, regular, 2), held(12, vip, 1), sold(12),
			refused(5, "VIP", 9, event.ReasonOverLimit), held(9, regular, 1), released(9, regular, 1),
			held(1, regular, 1), sold(1), released(1, regular, 1),
			held(4, vip, 1),
		}, []es.Payload{event.Cancelled{Reason: "storm", Bookings: []uuid.UUID{bk(3), bk(4), bk(7), bk(12)}, At: now}}},
		{"no bookings", []es.Payload{created}, []es.Payload{event.Cancelled{Reason: "storm", At: now}}},
		{"again", []es.Payload{created, held(1, vip, 1), event.Cancelled{Reason: "storm", Bookings: []uuid.UUID{bk(1)}, At: now}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &event.Event{}
			estest.Given(t, e, tt.history...).When(e.Cancel("storm", now)).Then(tt.want...)
			if e.Status() != event.StatusCancelled {
				t.Errorf("status = %s, want cancelled", e.Status())
			}
		})
	}
}

func TestCancelledEventSortsManyBookings(t *testing.T) {
	// Map order is random: with enough bookings an unsorted list shows.
	history := []es.Payload{created, event.Updated{Details: details, TicketTypes: []event.TicketType{with(regular, 1000)}}}
	var want []uuid.UUID
	for n := 200; n > 0; n-- {
		history = append(history, held(n, regular, 1))
	}
	for n := 1; n <= 200; n++ {
		want = append(want, bk(n))
	}
	e := &event.Event{}
	estest.Given(t, e, history...).When(e.Cancel("", now)).Then(event.Cancelled{Bookings: want, At: now})
}

func TestStoredTypeNamesNeverChange(t *testing.T) {
	want := []struct {
		payload es.Payload
		name    string
	}{
		{event.Created{}, "event.created"},
		{event.Updated{}, "event.updated"},
		{event.Cancelled{}, "event.cancelled"},
		{event.SeatsHeld{}, "event.seats_held"},
		{event.SeatsRefused{}, "event.seats_refused"},
		{event.SeatsSold{}, "event.seats_sold"},
		{event.SeatsReleased{}, "event.seats_released"},
	}
	r := es.NewRegistry()
	event.Register(r)
	for _, w := range want {
		if w.payload.EventType() != w.name {
			t.Errorf("%T is stored as %q, want %q", w.payload, w.payload.EventType(), w.name)
		}
		if !r.Known(w.name) {
			t.Errorf("Register does not register %q", w.name)
		}
	}
	if got := event.Stream(eventID); got != event.StreamPrefix+eventID.String() {
		t.Errorf("Stream = %q", got)
	}
}
