package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/infra/readstore/embedded"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

// countingReads counts the listing reads that reach the read model.
type countingReads struct {
	*readmodels.EventQueries
	lists atomic.Int64
}

func (c *countingReads) ListEvents(ctx context.Context, req readmodels.EventListRequest) (readmodels.EventPage, error) {
	c.lists.Add(1)
	return c.EventQueries.ListEvents(ctx, req)
}

// unversionedReads hides the listing version: a read model that cannot
// name its versions (Redis, say).
type unversionedReads struct{ c *countingReads }

func (u unversionedReads) Event(ctx context.Context, id uuid.UUID) (readmodels.EventView, error) {
	return u.c.Event(ctx, id)
}

func (u unversionedReads) ListEvents(ctx context.Context, req readmodels.EventListRequest) (readmodels.EventPage, error) {
	return u.c.ListEvents(ctx, req)
}

// listingWorld is an HTTP server over a real embedded event read model.
type listingWorld struct {
	t      *testing.T
	store  *embedded.Store
	reads  *countingReads
	server *Server
	events []readmodels.EventView
	pos    uint64
}

func newListingWorld(t *testing.T, n int) *listingWorld {
	t.Helper()
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	w := &listingWorld{t: t, store: store}
	base := time.Date(2031, 5, 1, 19, 0, 0, 0, time.UTC)
	for i := range n {
		w.events = append(w.events, readmodels.EventView{
			ID: uuid.New(), Name: fmt.Sprintf("Concert <%d> & more", i), Description: "An \"evening\" of music\n",
			Venue: "Teater Jakarta", StartsAt: base.Add(time.Duration(i) * time.Hour), Currency: "IDR",
			MaxPerBooking: 4, Status: event.Scheduled,
			TicketTypes: []readmodels.TicketTypeView{{Name: "regular", Price: 150_000, Capacity: 100, Available: 100}},
			CreatedAt:   base.Add(-time.Hour), UpdatedAt: base.Add(-time.Hour),
		})
	}
	w.commit(w.events...)
	w.reads = &countingReads{EventQueries: readmodels.NewEventQueries(store.Events())}
	w.server = New(Options{Log: slog.New(slog.DiscardHandler), Events: &EventService{Reads: w.reads}})
	return w
}

// commit stores views as the events projection would.
func (w *listingWorld) commit(views ...readmodels.EventView) {
	w.t.Helper()
	from := w.pos
	w.pos++
	for i := range views {
		views[i].Position = w.pos
	}
	if err := w.store.Events().Commit(context.Background(), projections.EventsCommit{From: from, To: w.pos, Events: views}); err != nil {
		w.t.Fatal(err)
	}
}

// sell lowers the seats available of event i.
func (w *listingWorld) sell(i, seats int) {
	v := w.events[i]
	v.TicketTypes = []readmodels.TicketTypeView{v.TicketTypes[0]}
	v.TicketTypes[0].Held += seats
	v.TicketTypes[0].Available -= seats
	w.events[i] = v
	w.commit(v)
}

type answer struct {
	status int
	body   string
	etag   string
	header http.Header
}

func (w *listingWorld) get(target string, header ...string) answer {
	w.t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := w.server.App().Test(req, -1)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: string(body), etag: resp.Header.Get("ETag"), header: resp.Header}
}

// fresh is what GET target answers straight from the read model, encoded
// by encoding/json as the server did before pages were cached.
func (w *listingWorld) fresh(req readmodels.EventListRequest) string {
	w.t.Helper()
	page, err := w.reads.EventQueries.ListEvents(context.Background(), req)
	if err != nil {
		w.t.Fatal(err)
	}
	out := eventListJSON{Items: make([]eventJSON, len(page.Items)), NextCursor: optString(page.NextCursor)}
	for i := range page.Items {
		out.Items[i] = eventFromView(&page.Items[i])
	}
	b, err := json.Marshal(out)
	if err != nil {
		w.t.Fatal(err)
	}
	return string(b)
}

func TestListingIsCachedUntilTheReadModelChanges(t *testing.T) {
	w := newListingWorld(t, 5)
	first := w.get("/events")
	if first.status != 200 || first.body != w.fresh(readmodels.EventListRequest{}) {
		t.Fatalf("first answer %d %s\nwant %s", first.status, first.body, w.fresh(readmodels.EventListRequest{}))
	}
	if first.etag == "" || first.header.Get("Cache-Control") != "no-cache" || first.header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers: %v", first.header)
	}
	reads := w.reads.lists.Load()
	for range 10 {
		if again := w.get("/events"); again.body != first.body || again.etag != first.etag {
			t.Fatalf("unchanged listing answered differently:\n%s\n%s", again.body, first.body)
		}
	}
	if got := w.reads.lists.Load(); got != reads {
		t.Fatalf("an unchanged listing was read %d more times: it should come from the cache", got-reads)
	}

	// A commit is visible in the very next answer: the cache never lags
	// behind the read model.
	w.sell(2, 7)
	after := w.get("/events")
	if after.body != w.fresh(readmodels.EventListRequest{}) {
		t.Fatalf("after a commit the listing answered\n%s\nwant\n%s", after.body, w.fresh(readmodels.EventListRequest{}))
	}
	if after.body == first.body || after.etag == first.etag {
		t.Fatal("the listing did not change after a commit")
	}

	// Each query is its own page.
	limited := w.get("/events?limit=2")
	want := w.fresh(readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "2"}})
	if limited.body != want {
		t.Fatalf("limit=2 answered %s, want %s", limited.body, want)
	}
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(limited.body), &page); err != nil || page.NextCursor == "" {
		t.Fatalf("no next cursor: %v %s", err, limited.body)
	}
	next := w.get("/events?limit=2&cursor=" + page.NextCursor)
	want = w.fresh(readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "2", Cursor: page.NextCursor}})
	if next.body != want {
		t.Fatalf("second page answered %s, want %s", next.body, want)
	}
	if w.get("/events").body != after.body {
		t.Fatal("other queries changed the default page")
	}

	// Invalid queries are still refused, cache or not.
	if bad := w.get("/events?limit=0"); bad.status != 400 {
		t.Fatalf("limit=0: status %d", bad.status)
	}
}

func TestListingETag(t *testing.T) {
	w := newListingWorld(t, 3)
	first := w.get("/events")
	cases := []struct {
		name, ifNoneMatch string
		status            int
	}{
		{"current tag", first.etag, 304},
		{"weak form of the current tag", "W/" + first.etag, 304},
		{"in a list", `"other", ` + first.etag, 304},
		{"any", "*", 304},
		{"another tag", `"0123"`, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := w.get("/events", "If-None-Match", tc.ifNoneMatch)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d", a.status, tc.status)
			}
			if a.etag != first.etag {
				t.Fatalf("etag %q, want %q", a.etag, first.etag)
			}
			if tc.status == 304 && a.body != "" {
				t.Fatalf("a 304 with a body: %q", a.body)
			}
			if tc.status == 200 && a.body != first.body {
				t.Fatalf("body %s", a.body)
			}
		})
	}
	// Once the listing changes, the old tag no longer matches.
	w.sell(0, 1)
	a := w.get("/events", "If-None-Match", first.etag)
	if a.status != 200 || a.etag == first.etag || a.body != w.fresh(readmodels.EventListRequest{}) {
		t.Fatalf("after a change: status %d etag %q body %s", a.status, a.etag, a.body)
	}
}

// While commits land, every answer is the read model's state at some
// moment no earlier than the previous answer's, and an answer that starts
// after a commit returned shows that commit.
func TestListingNeverServesAnOlderPage(t *testing.T) {
	w := newListingWorld(t, 2)
	const commits = 60
	hot := w.events[0].ID.String()
	seats := func(body string) int {
		var page struct {
			Items []struct {
				ID          string `json:"id"`
				TicketTypes []struct {
					Available int `json:"available"`
				} `json:"ticket_types"`
			} `json:"items"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Errorf("bad body %v: %s", err, body)
			return -1
		}
		for _, it := range page.Items {
			if it.ID == hot {
				return it.TicketTypes[0].Available
			}
		}
		t.Errorf("event missing: %s", body)
		return -1
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			last := 101
			for !stop.Load() {
				a := w.get("/events")
				n := seats(a.body)
				if n > last {
					t.Errorf("the listing went back from %d to %d seats available", last, n)
					return
				}
				last = n
			}
		})
	}
	for i := 1; i <= commits; i++ {
		w.sell(0, 1)
		if n := seats(w.get("/events").body); n != 100-i {
			t.Fatalf("after commit %d the listing shows %d seats available, want %d", i, n, 100-i)
		}
	}
	stop.Store(true)
	wg.Wait()
}

// A rebuilt read model promoted under the server replaces the cached
// pages at once.
func TestListingFollowsAPromotedRebuild(t *testing.T) {
	w := newListingWorld(t, 2)
	before := w.get("/events")
	staged, err := w.store.Events().Stage()
	if err != nil {
		t.Fatal(err)
	}
	rebuilt := w.events[0]
	rebuilt.Name = "Rebuilt"
	rebuilt.Position = 1
	if err := staged.Commit(context.Background(), projections.EventsCommit{From: 0, To: 1, Events: []readmodels.EventView{rebuilt}}); err != nil {
		t.Fatal(err)
	}
	if w.get("/events").body != before.body {
		t.Fatal("a staged version showed before its promotion")
	}
	if err := w.store.Events().Promote(staged); err != nil {
		t.Fatal(err)
	}
	after := w.get("/events")
	if after.body != w.fresh(readmodels.EventListRequest{}) || after.body == before.body {
		t.Fatalf("after the promotion the listing answered %s", after.body)
	}
}

// A read model that cannot name its versions is read every time.
func TestListingWithoutVersionsIsNotCached(t *testing.T) {
	w := newListingWorld(t, 2)
	w.server = New(Options{Log: slog.New(slog.DiscardHandler), Events: &EventService{Reads: unversionedReads{w.reads}}})
	first := w.get("/events")
	reads := w.reads.lists.Load()
	for range 3 {
		if a := w.get("/events"); a.body != first.body {
			t.Fatal("the listing changed by itself")
		}
	}
	if got := w.reads.lists.Load() - reads; got != 3 {
		t.Fatalf("%d reads for 3 requests", got)
	}
	if a := w.get("/events", "If-None-Match", first.etag); a.status != 304 {
		t.Fatalf("If-None-Match without a cache: status %d", a.status)
	}
}

func TestListingCacheIsBounded(t *testing.T) {
	w := newListingWorld(t, 2)
	for i := range maxCachedPages + 50 {
		if a := w.get(fmt.Sprintf("/events?unrelated=%d", i)); a.status != 200 {
			t.Fatalf("status %d", a.status)
		}
	}
	w.server.listing.mu.RLock()
	n := len(w.server.listing.pages)
	w.server.listing.mu.RUnlock()
	if n > maxCachedPages {
		t.Fatalf("%d pages cached, bound %d", n, maxCachedPages)
	}
}
