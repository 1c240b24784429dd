package embedded

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

// The listing version moves on with every commit that changes a view, and
// only then; a page is labelled with the version it was read at; a
// promoted rebuild has a version of its own. (Versions start again when
// the store is reopened: they name states within one process only.)
func TestListingVersion(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, Options{})
	ev := s.Events()
	v0 := listingVersion(t, ev)
	if !v0.Known() {
		t.Fatal("the embedded store cannot name its versions")
	}
	view := readmodels.EventView{
		ID: uuid.New(), Name: "A", StartsAt: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), Status: event.Scheduled,
		TicketTypes: []readmodels.TicketTypeView{{Name: "r", Capacity: 5, Available: 5}}, Position: 1,
	}
	if err := ev.Commit(ctx, projections.EventsCommit{From: 0, To: 1, Events: []readmodels.EventView{view}}); err != nil {
		t.Fatal(err)
	}
	v1 := listingVersion(t, ev)
	if v1 == v0 {
		t.Fatal("a commit that changed a view left the version as it was")
	}
	items, at, err := ev.ScheduledEventsAt(ctx, readmodels.EventListing{Limit: 10})
	if err != nil || len(items) != 1 || at != v1 {
		t.Fatalf("page of %d at %v (%v), want 1 at %v", len(items), at, err, v1)
	}
	hold := projections.SeatHold{BookingID: uuid.New(), EventID: view.ID, TicketType: "r", Quantity: 1}
	if err := ev.Commit(ctx, projections.EventsCommit{From: 1, To: 2, Holds: []projections.SeatHold{hold}}); err != nil {
		t.Fatal(err)
	}
	if listingVersion(t, ev) != v1 {
		t.Fatal("a commit of seat holds only changed the listing version")
	}
	page, err := readmodels.NewEventQueries(ev).ListEvents(ctx, readmodels.EventListRequest{})
	if err != nil || page.Version != v1 {
		t.Fatalf("the query's page is at %v (%v), want %v", page.Version, err, v1)
	}

	staged, err := ev.Stage()
	if err != nil {
		t.Fatal(err)
	}
	if err := staged.Commit(ctx, projections.EventsCommit{From: 0, To: 2, Events: []readmodels.EventView{view}}); err != nil {
		t.Fatal(err)
	}
	if listingVersion(t, ev) != v1 {
		t.Fatal("a staged version changed the readers' version")
	}
	if err := ev.Promote(staged); err != nil {
		t.Fatal(err)
	}
	if v2 := listingVersion(t, ev); v2 == v1 || v2 == v0 {
		t.Fatalf("after a promotion the version is %v, as before", v2)
	}
}

func listingVersion(t *testing.T, ev *EventViews) readmodels.ListingVersion {
	t.Helper()
	v, err := ev.ListingVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}
