package event_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/event"
)

// seatModel is the plainest possible account of what an event promised:
// per booking, the seats it got (or why not). The aggregate must agree with
// it after every command.
type seatModel struct {
	capacity map[string]int
	bookings map[uuid.UUID]*modelSeats
}

type modelSeats struct {
	ticketType string
	quantity   int
	state      string // held, sold, released, refused
	reason     string
}

func (m *seatModel) committed(ticketType string) (held, sold int) {
	for _, b := range m.bookings {
		if b.ticketType != ticketType {
			continue
		}
		switch b.state {
		case "held":
			held += b.quantity
		case "sold":
			sold += b.quantity
		}
	}
	return held, sold
}

// TestSeatsAreNeverOversold applies thousands of random holds, sales,
// releases, capacity changes and snapshot reloads, and checks after each
// that seats held plus sold never exceed capacity, that available is
// exactly what is left, and that every answer matches the model.
func TestSeatsAreNeverOversold(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			runSeatProperty(t, seed, 4000)
		})
	}
}

func runSeatProperty(t *testing.T, seed uint64, steps int) {
	rnd := rand.New(rand.NewPCG(seed, 0x5eed))
	names := []string{"VIP", "Regular", "Balcony"}
	types := []event.TicketType{{Name: "VIP", Price: 100, Capacity: 12}, {Name: "Regular", Price: 50, Capacity: 40}, {Name: "Balcony", Price: 20, Capacity: 5}}
	d := details
	d.MaxPerBooking = 6
	e, err := event.Create(eventID, d, "IDR", types, createdAt)
	if err != nil {
		t.Fatal(err)
	}
	history := append([]es.Payload(nil), e.Pending()...)
	e.Stored()
	m := &seatModel{capacity: map[string]int{}, bookings: map[uuid.UUID]*modelSeats{}}
	for _, tt := range types {
		m.capacity[tt.Name] = tt.Capacity
	}
	// A small pool of bookings, so that commands repeat and race for seats.
	pool := make([]uuid.UUID, 150)
	for i := range pool {
		pool[i] = bk(i + 1)
	}

	for step := range steps {
		booking := pool[rnd.IntN(len(pool))]
		var op string
		switch k := rnd.IntN(100); {
		case k < 50:
			ticketType := names[rnd.IntN(len(names))]
			if rnd.IntN(20) == 0 {
				ticketType = "Standing"
			}
			qty := rnd.IntN(9) - 1
			op = fmt.Sprintf("Hold(%s, %s, %d)", booking, ticketType, qty)
			gotHeld, gotReason := e.Hold(booking, ticketType, qty, now)
			wantHeld, wantReason := m.hold(booking, ticketType, qty, d.MaxPerBooking)
			if gotHeld != wantHeld || gotReason != wantReason {
				t.Fatalf("step %d %s = %v %q, want %v %q", step, op, gotHeld, gotReason, wantHeld, wantReason)
			}
		case k < 70:
			op = fmt.Sprintf("Sell(%s)", booking)
			err := e.Sell(booking, now)
			b := m.bookings[booking]
			switch {
			case b != nil && (b.state == "held" || b.state == "sold"):
				if err != nil {
					t.Fatalf("step %d %s: %v", step, op, err)
				}
				b.state = "sold"
			default:
				var se *event.SellError
				if !errors.As(err, &se) {
					t.Fatalf("step %d %s = %v, want a SellError", step, op, err)
				}
			}
		case k < 90:
			op = fmt.Sprintf("Release(%s)", booking)
			e.Release(booking, now)
			if b := m.bookings[booking]; b != nil && (b.state == "held" || b.state == "sold") {
				b.state = "released"
			}
		case k < 97:
			newTypes := make([]event.TicketType, len(types))
			copy(newTypes, types)
			i := rnd.IntN(len(newTypes))
			newTypes[i].Capacity = rnd.IntN(45)
			op = fmt.Sprintf("Update(%s capacity %d)", newTypes[i].Name, newTypes[i].Capacity)
			err := e.Update(d, newTypes, now)
			held, sold := m.committed(newTypes[i].Name)
			if newTypes[i].Capacity < held+sold {
				var ce *event.CapacityError
				if !errors.As(err, &ce) || ce.Committed != held+sold {
					t.Fatalf("step %d %s with %d committed = %v, want a CapacityError", step, op, held+sold, err)
				}
			} else {
				if err != nil {
					t.Fatalf("step %d %s with %d committed: %v", step, op, held+sold, err)
				}
				types = newTypes
				m.capacity[newTypes[i].Name] = newTypes[i].Capacity
			}
		default:
			// Store what is pending and reload from a JSON snapshot, as
			// the event desk does every so many events.
			op = "snapshot and restore"
			history = append(history, e.Pending()...)
			e.Stored()
			e = restoreThroughJSON(t, e)
		}
		checkSeats(t, step, op, e, m)
	}

	// Replaying every recorded event from the start gives the same state.
	history = append(history, e.Pending()...)
	replayed := &event.Event{}
	for i, p := range history {
		replayed.Apply(p)
		replayed.Replayed(uint64(i))
	}
	if got, want := normalized(replayed.Snapshot()), normalized(e.Snapshot()); !jsonEqual(got, want) {
		t.Errorf("replaying %d events gives another state than deciding them", len(history))
	}
}

func (m *seatModel) hold(booking uuid.UUID, ticketType string, qty, maxPerBooking int) (bool, string) {
	if b, seen := m.bookings[booking]; seen {
		return b.state != "refused", b.reason
	}
	capacity, known := m.capacity[ticketType]
	reason := ""
	switch {
	case !known:
		reason = event.ReasonUnknownTicketType
	case qty < 1 || qty > maxPerBooking:
		reason = event.ReasonOverLimit
	default:
		held, sold := m.committed(ticketType)
		if capacity-held-sold < qty {
			reason = event.ReasonSoldOut
		}
	}
	if reason != "" {
		m.bookings[booking] = &modelSeats{state: "refused", reason: reason}
		return false, reason
	}
	m.bookings[booking] = &modelSeats{ticketType: ticketType, quantity: qty, state: "held"}
	return true, ""
}

func checkSeats(t *testing.T, step int, op string, e *event.Event, m *seatModel) {
	t.Helper()
	for _, tt := range e.TicketTypes() {
		held, sold := m.committed(tt.Name)
		switch {
		case tt.Held+tt.Sold > tt.Capacity:
			t.Fatalf("step %d %s: %s oversold: %d held + %d sold > capacity %d", step, op, tt.Name, tt.Held, tt.Sold, tt.Capacity)
		case tt.Available != tt.Capacity-tt.Held-tt.Sold:
			t.Fatalf("step %d %s: %s shows %d available, want %d - %d - %d", step, op, tt.Name, tt.Available, tt.Capacity, tt.Held, tt.Sold)
		case tt.Held != held || tt.Sold != sold || tt.Capacity != m.capacity[tt.Name]:
			t.Fatalf("step %d %s: %s has %d held, %d sold of %d; the bookings account for %d held, %d sold of %d",
				step, op, tt.Name, tt.Held, tt.Sold, tt.Capacity, held, sold, m.capacity[tt.Name])
		}
	}
}

func restoreThroughJSON(t *testing.T, e *event.Event) *event.Event {
	t.Helper()
	data, err := json.Marshal(e.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var s event.Snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return event.Restore(s, e.Version())
}
