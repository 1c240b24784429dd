package embedded

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/projections"
)

// Seat holds are served from memory after a commit, and from Pebble after
// a restart; a refused commit changes neither.
func TestSeatHoldsInMemoryAndOnDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, Options{})
	ev := uuid.New()
	held := projections.SeatHold{BookingID: uuid.New(), EventID: ev, TicketType: "A", Quantity: 2}
	other := projections.SeatHold{BookingID: uuid.New(), EventID: ev, TicketType: "A", Quantity: 1}
	commit := func(s *Store, from, to uint64, holds []projections.SeatHold, released ...uuid.UUID) error {
		return s.Events().Commit(ctx, projections.EventsCommit{From: from, To: to, Holds: holds, Released: released})
	}
	check := func(s *Store, h projections.SeatHold, want bool) {
		t.Helper()
		got, ok, err := s.Events().SeatHold(ctx, h.BookingID)
		if err != nil || ok != want || (want && got != h) {
			t.Fatalf("SeatHold(%s) = %+v, %v, %v; want %+v, %v", h.BookingID, got, ok, err, h, want)
		}
	}
	if err := commit(s, 0, 1, []projections.SeatHold{held, other}); err != nil {
		t.Fatal(err)
	}
	sold := held
	sold.Sold = true
	if err := commit(s, 1, 2, []projections.SeatHold{sold}, other.BookingID); err != nil {
		t.Fatal(err)
	}
	check(s, sold, true)
	check(s, other, false)
	// A commit refused for its checkpoint leaves the holds as they were.
	if err := commit(s, 0, 3, []projections.SeatHold{held, other}); err == nil {
		t.Fatal("a commit from a stale checkpoint was accepted")
	}
	check(s, sold, true)
	check(s, other, false)

	s.Close()
	s2 := open(t, dir, Options{})
	check(s2, sold, true)
	check(s2, other, false)
}
