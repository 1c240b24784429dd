package event_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/es/estest"
	"github.com/ticketd/ticketing/domain/event"
)

// normalized orders a snapshot's bookings, which have no order of their own.
func normalized(s event.Snapshot) event.Snapshot {
	s.Bookings = slices.Clone(s.Bookings)
	slices.SortFunc(s.Bookings, func(a, b event.BookingSeats) int { return bytes.Compare(a.BookingID[:], b.BookingID[:]) })
	return s
}

func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// busyHistory leaves bookings in every state, including seats released of a
// ticket type that was later removed, and ticket types reordered.
func busyHistory() []es.Payload {
	balcony := event.TicketType{Name: "Balcony", Price: 20, Capacity: 5}
	return []es.Payload{
		created,
		held(1, vip, 2),
		held(2, regular, 3), sold(2),
		held(3, vip, 1), released(3, vip, 1),
		refused(4, "VIP", 9, event.ReasonOverLimit),
		event.Updated{Details: details, TicketTypes: []event.TicketType{vip, regular, balcony}, At: now},
		held(5, balcony, 1), released(5, balcony, 1),
		event.Updated{Details: details, TicketTypes: []event.TicketType{with(regular, 60), with(vip, 6)}, At: now},
		held(6, vip, 3),
		refused(7, "Balcony", 1, event.ReasonUnknownTicketType),
		held(8, regular, 4), sold(8), released(8, regular, 4),
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		history []es.Payload
	}{
		{"a busy event", busyHistory()},
		{"a cancelled event", append(busyHistory(), event.Cancelled{Reason: "storm", Bookings: []uuid.UUID{bk(1), bk(2), bk(6)}, At: now})},
		{"a new event", []es.Payload{created}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			original := &event.Event{}
			estest.Given(t, original, tt.history...)
			snap := original.Snapshot()

			data, err := json.Marshal(snap)
			if err != nil {
				t.Fatal(err)
			}
			var stored event.Snapshot
			if err := json.Unmarshal(data, &stored); err != nil {
				t.Fatal(err)
			}
			restored := event.Restore(stored, original.Version())

			if restored.Version() != original.Version() || len(restored.Pending()) != 0 {
				t.Errorf("restored at version %d with %d pending, want %d with none", restored.Version(), len(restored.Pending()), original.Version())
			}
			if got, want := normalized(restored.Snapshot()), normalized(snap); !jsonEqual(got, want) {
				t.Errorf("snapshot of the restored event differs\n got %+v\nwant %+v", got, want)
			}
			if restored.ID() != original.ID() || restored.Details() != original.Details() || restored.Currency() != original.Currency() ||
				restored.Status() != original.Status() || !restored.CreatedAt().Equal(original.CreatedAt()) || !restored.UpdatedAt().Equal(original.UpdatedAt()) ||
				!slices.Equal(restored.TicketTypes(), original.TicketTypes()) {
				t.Errorf("restored event reads differently:\n got %+v\nwant %+v", restored.Snapshot(), snap)
			}

			// From here on, both must decide exactly alike.
			gotLog, wantLog := script(restored), script(original)
			if !slices.Equal(gotLog, wantLog) {
				t.Errorf("answers differ after restore:\n got %q\nwant %q", gotLog, wantLog)
			}
			if d := estest.Diff(restored.Pending(), original.Pending()); d != "" {
				t.Errorf("events recorded after restore differ from those of the replayed event:\n%s", d)
			}
			if len(original.Pending()) == 0 {
				t.Error("the script recorded nothing, so it compared nothing")
			}
		})
	}
}

// script runs the same commands against an event and notes the answers.
func script(e *event.Event) []string {
	var log []string
	note := func(format string, args ...any) { log = append(log, fmt.Sprintf(format, args...)) }
	at := now.Add(time.Hour)
	// bookings the event decided on before: same answers
	for n := 1; n <= 8; n++ {
		ok, reason := e.Hold(bk(n), "VIP", 1, at)
		note("repeat hold %d: %v %s", n, ok, reason)
	}
	// new bookings until the VIP seats run out
	for n := 20; n < 30; n++ {
		ok, reason := e.Hold(bk(n), "VIP", 1, at)
		note("new hold %d: %v %s", n, ok, reason)
	}
	ok, reason := e.Hold(bk(40), "Balcony", 1, at)
	note("hold of a removed ticket type: %v %s", ok, reason)
	for _, n := range []int{1, 2, 3, 4, 6, 99} {
		note("sell %d: %v", n, e.Sell(bk(n), at))
	}
	for _, n := range []int{2, 3, 6, 99} {
		e.Release(bk(n), at)
	}
	note("shrink VIP: %v", e.Update(details, []event.TicketType{with(vip, 1), with(regular, 60)}, at))
	note("shrink Regular: %v", e.Update(details, []event.TicketType{with(vip, 10), with(regular, 0)}, at))
	note("cancel: %v", e.Cancel("storm", at))
	for _, t := range e.TicketTypes() {
		note("%s: %d held, %d sold, %d available of %d", t.Name, t.Held, t.Sold, t.Available, t.Capacity)
	}
	return log
}
