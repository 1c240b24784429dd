package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

func listingVersion(t *testing.T, v *EventViews) readmodels.ListingVersion {
	t.Helper()
	ver, err := v.ListingVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ver
}

// The listing version is what lets the HTTP layer serve a cached page:
// equal versions must mean equal listings, and every commit a reader can
// see must have moved it on.
func TestListingVersionNamesTheListingState(t *testing.T) {
	ctx := context.Background()
	prefix := newPrefix(t)
	s := openStore(t, prefix, Options{})
	reader := openStore(t, prefix, Options{}).Events() // another process
	q := readmodels.NewEventQueries(reader)
	list := func() readmodels.EventPage {
		t.Helper()
		page, err := q.ListEvents(ctx, readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "100"}})
		if err != nil {
			t.Fatal(err)
		}
		return page
	}

	empty := listingVersion(t, reader)
	if !empty.Known() {
		t.Fatalf("a fresh listing has version %+v, want a known one (an empty listing is a state too)", empty)
	}
	if page := list(); page.Version != empty || len(page.Items) != 0 {
		t.Fatalf("empty listing read at %+v with %d items, want %+v and none", page.Version, len(page.Items), empty)
	}

	a := scheduled("Jazz", "Hall", t0)
	if err := s.Events().Commit(ctx, projections.EventsCommit{From: 0, To: 5, Events: []readmodels.EventView{a}}); err != nil {
		t.Fatal(err)
	}
	v1 := listingVersion(t, reader)
	if v1 == empty || !v1.Known() {
		t.Fatalf("after a commit the version is %+v, want a new one (was %+v)", v1, empty)
	}
	page := list()
	if page.Version != v1 || len(page.Items) != 1 {
		t.Fatalf("page read at %+v with %d items, want %+v and 1", page.Version, len(page.Items), v1)
	}
	if again := listingVersion(t, reader); again != v1 {
		t.Fatalf("without a commit the version moved from %+v to %+v", v1, again)
	}

	b := scheduled("Gamelan", "Hall", t0.Add(time.Hour))
	if err := s.Events().Commit(ctx, projections.EventsCommit{From: 5, To: 9, Events: []readmodels.EventView{b}}); err != nil {
		t.Fatal(err)
	}
	if v2 := listingVersion(t, reader); v2 == v1 || list().Version != v2 {
		t.Fatalf("after a second commit: version %+v (was %+v)", v2, v1)
	}

	// A promoted rebuild is another generation: a page cached from the old
	// one is never taken for the new one, even at the same checkpoint.
	staged, err := s.Events().Stage()
	if err != nil {
		t.Fatal(err)
	}
	renamed := a
	renamed.Name = "Jazz (rebuilt)"
	if err := staged.Commit(ctx, projections.EventsCommit{From: 0, To: 9, Events: []readmodels.EventView{renamed, b}}); err != nil {
		t.Fatal(err)
	}
	before := listingVersion(t, reader)
	if err := s.Events().Promote(staged); err != nil {
		t.Fatal(err)
	}
	after := listingVersion(t, reader)
	if after == before || after.Generation == before.Generation {
		t.Fatalf("promotion kept version %+v (was %+v), want a new generation", after, before)
	}
	if page := list(); page.Version != after || page.Items[0].Name != "Jazz (rebuilt)" {
		t.Fatalf("after promotion: page %+v", page)
	}
}

// The version of a page read in several calls: one version when every
// call read it, none as soon as two calls read different ones, even if a
// later call reads the first again.
func TestPageVersionIsTheOneEveryCallRead(t *testing.T) {
	v1 := readmodels.ListingVersion{Generation: 1, Seq: 5}
	v2 := readmodels.ListingVersion{Generation: 1, Seq: 9}
	for _, tc := range []struct {
		reads []readmodels.ListingVersion
		want  readmodels.ListingVersion
	}{
		{[]readmodels.ListingVersion{v1}, v1},
		{[]readmodels.ListingVersion{v1, v1, v1}, v1},
		{[]readmodels.ListingVersion{v1, v2}, readmodels.ListingVersion{}},
		{[]readmodels.ListingVersion{v1, v2, v1}, readmodels.ListingVersion{}},
		{[]readmodels.ListingVersion{v1, v2, v2}, readmodels.ListingVersion{}},
		{[]readmodels.ListingVersion{{}, {}}, readmodels.ListingVersion{}},
	} {
		var p pageVersion
		for _, r := range tc.reads {
			p.add(r)
		}
		if got := p.page(); got != tc.want {
			t.Errorf("calls read %v: page version %+v, want %+v", tc.reads, got, tc.want)
		}
	}
}

// A search that needs several calls (its budget of index entries runs
// out) runs here while commits land, as they would in production. The
// timing cannot be forced from outside, so this checks what must hold
// either way: a claimed version lies between the versions read around
// the search, and the needles are found. (Which version a straddling
// search claims is TestPageVersionIsTheOneEveryCallRead's.)
func TestASearchWhileCommitsLandClaimsOnlyAVersionAroundIt(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	var views []readmodels.EventView
	for i := range searchBudget + 10 {
		name := fmt.Sprintf("Concert %d", i)
		if i == 0 || i == searchBudget+5 {
			name = fmt.Sprintf("Needle %d", i)
		}
		views = append(views, scheduled(name, "Hall", t0.Add(time.Duration(i)*time.Second)))
	}
	if err := s.Events().Commit(ctx, projections.EventsCommit{From: 0, To: 1, Events: views}); err != nil {
		t.Fatal(err)
	}
	search := readmodels.EventListing{Limit: 2, Text: "needle"}
	items, version, err := s.Events().ScheduledEventsAt(ctx, search)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || version != listingVersion(t, s.Events()) {
		t.Fatalf("quiet search: %d items at %+v, want 2 at the current version", len(items), version)
	}

	// Commit between the calls of one search: a hook would be needed to
	// time it exactly, so commit from another goroutine until a search
	// straddles one; each search is checked either way.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for to := uint64(2); to < 200; to++ {
			v := views[1]
			v.Position = to
			if err := s.Events().Commit(ctx, projections.EventsCommit{From: to - 1, To: to, Events: []readmodels.EventView{v}}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	straddled := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		before := listingVersion(t, s.Events())
		items, version, err := s.Events().ScheduledEventsAt(ctx, search)
		if err != nil {
			t.Fatal(err)
		}
		after := listingVersion(t, s.Events())
		switch {
		case version.Known() && (version.Seq < before.Seq || version.Seq > after.Seq):
			t.Fatalf("search claims version %+v outside the versions around it (%+v, %+v)", version, before, after)
		case !version.Known():
			straddled++
		}
		if len(items) != 2 {
			t.Fatalf("search found %d needles, want 2", len(items))
		}
	}
	t.Logf("%d searches straddled a commit and claimed no version", straddled)
}
