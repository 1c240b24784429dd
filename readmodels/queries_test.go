package readmodels_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/fault"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/readmodels"
)

// listing is an EventReader over a sorted slice, enough to test the query
// handler's paging and validation; the stores have their own suite.
type listing struct {
	events []readmodels.EventView
	last   readmodels.EventListing
}

func (l *listing) Event(_ context.Context, id uuid.UUID) (readmodels.EventView, bool, error) {
	for _, e := range l.events {
		if e.ID == id {
			return e, true, nil
		}
	}
	return readmodels.EventView{}, false, nil
}

func (l *listing) ScheduledEvents(_ context.Context, q readmodels.EventListing) ([]readmodels.EventView, error) {
	l.last = q
	var out []readmodels.EventView
	for _, e := range l.events {
		if (q.After.IsZero() || e.Key().Compare(q.After) > 0) && q.Match(&e) && len(out) < q.Limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func newListing(n int) *listing {
	l := &listing{}
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		l.events = append(l.events, readmodels.EventView{ID: uuid.New(), Name: "e", StartsAt: base.Add(time.Duration(i/2) * time.Hour)})
	}
	slices.SortFunc(l.events, func(a, b readmodels.EventView) int { return a.Key().Compare(b.Key()) })
	return l
}

func fieldsOf(err error) []string {
	var in *fault.Input
	if !errors.As(err, &in) {
		return nil
	}
	var fields []string
	for _, f := range in.Fields {
		fields = append(fields, f.Field)
	}
	return fields
}

func TestListEventsRefusesInvalidParameters(t *testing.T) {
	l := newListing(3)
	q := readmodels.NewEventQueries(l)
	page, err := q.ListEvents(context.Background(), readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	bookingCursor := func() string {
		b := readmodels.NewBookingQueries(userBookings{})
		p, _ := b.ListUserBookings(context.Background(), uuid.New(), readmodels.ListRequest{Limit: "1"})
		return p.NextCursor
	}()
	if bookingCursor == "" {
		t.Fatal("no booking cursor to try")
	}
	tests := []struct {
		name   string
		req    readmodels.EventListRequest
		fields []string
	}{
		{"limit not a number", readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "ten"}}, []string{"limit"}},
		{"limit zero", readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "0"}}, []string{"limit"}},
		{"limit negative", readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "-5"}}, []string{"limit"}},
		{"limit over the maximum", readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "101"}}, []string{"limit"}},
		{"cursor not base64", readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Cursor: "%%%"}}, []string{"cursor"}},
		{"cursor truncated", readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Cursor: page.NextCursor[:10]}}, []string{"cursor"}},
		{"cursor of another listing", readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Cursor: bookingCursor}}, []string{"cursor"}},
		{"from not a time", readmodels.EventListRequest{From: "yesterday"}, []string{"from"}},
		{"to not a time", readmodels.EventListRequest{To: "2030-13-45"}, []string{"to"}},
		{"to before from", readmodels.EventListRequest{From: "2030-02-01", To: "2030-01-01"}, []string{"to"}},
		{"to equal to from", readmodels.EventListRequest{From: "2030-02-01T10:00:00Z", To: "2030-02-01T10:00:00Z"}, []string{"to"}},
		{"q too long", readmodels.EventListRequest{Q: string(make([]byte, 201))}, []string{"q"}},
		{"every field at once", readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "x", Cursor: "y"}, From: "z", To: "w"}, []string{"limit", "cursor", "from", "to"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := q.ListEvents(context.Background(), tt.req)
			if got := fieldsOf(err); !slices.Equal(got, tt.fields) {
				t.Fatalf("err = %v: fields %v, want %v", err, got, tt.fields)
			}
		})
	}
}

func TestListEventsAcceptsValidParameters(t *testing.T) {
	tests := []struct {
		name string
		req  readmodels.EventListRequest
		want readmodels.EventListing
	}{
		{"defaults", readmodels.EventListRequest{}, readmodels.EventListing{Limit: readmodels.DefaultLimit + 1}},
		{"limit at the maximum", readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "100"}}, readmodels.EventListing{Limit: 101}},
		{"q trimmed and lower-cased", readmodels.EventListRequest{Q: "  JaZZ "}, readmodels.EventListing{Limit: 21, Text: "jazz"}},
		{"dates are whole days, UTC", readmodels.EventListRequest{From: "2030-01-01", To: "2030-02-01"}, readmodels.EventListing{
			Limit: 21, From: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2030, 2, 2, 0, 0, 0, 0, time.UTC)}},
		{"one day", readmodels.EventListRequest{From: "2030-01-01", To: "2030-01-01"}, readmodels.EventListing{
			Limit: 21, From: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)}},
		{"timestamps are taken to UTC", readmodels.EventListRequest{From: "2030-01-01T07:00:00+07:00"}, readmodels.EventListing{
			Limit: 21, From: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newListing(0)
			if _, err := readmodels.NewEventQueries(l).ListEvents(context.Background(), tt.req); err != nil {
				t.Fatal(err)
			}
			if l.last != tt.want {
				t.Fatalf("store asked for %+v, want %+v", l.last, tt.want)
			}
		})
	}
}

func TestListEventsPagesWithCursors(t *testing.T) {
	// Events share start times pairwise, so the id breaks ties.
	l := newListing(45)
	q := readmodels.NewEventQueries(l)
	var seen []uuid.UUID
	req := readmodels.EventListRequest{ListRequest: readmodels.ListRequest{Limit: "10"}}
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		page, err := q.ListEvents(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Items {
			seen = append(seen, e.ID)
		}
		if page.NextCursor == "" {
			break
		}
		req.Cursor = page.NextCursor
	}
	var want []uuid.UUID
	for _, e := range l.events {
		want = append(want, e.ID)
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("paging saw %d events, want all %d once, in order", len(seen), len(want))
	}
}

func TestGetUnknownViewsAreNotFound(t *testing.T) {
	ctx := context.Background()
	id := uuid.New()
	_, errEvent := readmodels.NewEventQueries(newListing(1)).Event(ctx, id)
	_, errBooking := readmodels.NewBookingQueries(userBookings{}).Booking(ctx, id)
	_, errPayment := readmodels.NewPaymentQueries(payments{}, nil).Payment(ctx, id)
	for name, err := range map[string]error{"event": errEvent, "booking": errBooking, "payment": errPayment} {
		var nf *readmodels.NotFoundError
		if !errors.Is(err, fault.ErrNotFound) || !errors.Is(err, readmodels.ErrNotFound) || !errors.As(err, &nf) || nf.View != name || nf.ID != id {
			t.Errorf("%s: err = %v, want a NotFoundError classified as fault.ErrNotFound", name, err)
		}
	}
}

// userBookings has one booking for every user, so that listings have a
// next page.
type userBookings struct{}

func (userBookings) Booking(context.Context, uuid.UUID) (readmodels.BookingView, bool, error) {
	return readmodels.BookingView{}, false, nil
}
func (userBookings) UserBookings(_ context.Context, user uuid.UUID, _ readmodels.BookingKey, limit int) ([]readmodels.BookingView, error) {
	return []readmodels.BookingView{{ID: uuid.New(), UserID: user}, {ID: uuid.New(), UserID: user}}[:min(limit, 2)], nil
}
func (userBookings) DueHolds(context.Context, time.Time, int) ([]uuid.UUID, error) { return nil, nil }

func TestListUserBookingsRefusesInvalidParameters(t *testing.T) {
	q := readmodels.NewBookingQueries(userBookings{})
	tests := []struct {
		name   string
		req    readmodels.ListRequest
		fields []string
	}{
		{"limit over the maximum", readmodels.ListRequest{Limit: "1000"}, []string{"limit"}},
		{"cursor garbage", readmodels.ListRequest{Cursor: "not-a-cursor"}, []string{"cursor"}},
		{"both", readmodels.ListRequest{Limit: "0", Cursor: "x"}, []string{"limit", "cursor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := q.ListUserBookings(context.Background(), uuid.New(), tt.req)
			if got := fieldsOf(err); !slices.Equal(got, tt.fields) {
				t.Fatalf("err = %v: fields %v, want %v", err, got, tt.fields)
			}
		})
	}
}

// payments is a PaymentReader with one payment at a time, and feed a
// PaymentSubscriber whose updates the test sends.
type payments map[uuid.UUID]readmodels.PaymentView

func (p payments) Payment(_ context.Context, id uuid.UUID) (readmodels.PaymentView, bool, error) {
	v, ok := p[id]
	return v, ok, nil
}

type feed struct{ ch chan readmodels.PaymentView }

func (f feed) Subscribe(context.Context, uuid.UUID) (<-chan readmodels.PaymentView, func(), error) {
	return f.ch, func() {}, nil
}

func TestWatchPayment(t *testing.T) {
	id := uuid.New()
	state := func(s payment.Status, pos uint64) readmodels.PaymentView {
		return readmodels.PaymentView{ID: id, Status: s, Position: pos}
	}
	f := feed{ch: make(chan readmodels.PaymentView, 10)}
	q := readmodels.NewPaymentQueries(payments{id: state(payment.Processing, 5)}, f)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	updates, err := q.Watch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// A state already read, then news, then a final status and more.
	f.ch <- state(payment.Processing, 5)
	f.ch <- state(payment.Succeeded, 7)
	f.ch <- state(payment.Processing, 6)
	f.ch <- state(payment.RefundPending, 9)
	f.ch <- state(payment.Refunded, 10)
	f.ch <- state(payment.Refunded, 11)
	var got []payment.Status
	for v := range updates {
		got = append(got, v.Status)
	}
	want := []payment.Status{payment.Processing, payment.Succeeded, payment.RefundPending, payment.Refunded}
	if !slices.Equal(got, want) {
		t.Fatalf("watched %v, want %v: current state first, then each newer state once, closed after a final one", got, want)
	}

	if _, err := q.Watch(ctx, uuid.New()); !errors.Is(err, readmodels.ErrNotFound) {
		t.Fatalf("watching an unknown payment: %v, want ErrNotFound", err)
	}
}

func TestDueHoldsBoundsItsLimit(t *testing.T) {
	tests := []struct {
		name      string
		limit     int
		wantLimit int
	}{
		{"zero means the default", 0, readmodels.DefaultDueHoldsLimit},
		{"negative means the default", -1, readmodels.DefaultDueHoldsLimit},
		{"as asked", 1000, 1000},
		{"capped", 1_000_000, readmodels.MaxDueHoldsLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &dueRecorder{}
			if _, err := readmodels.NewBookingQueries(r).DueHolds(context.Background(), time.Now(), tt.limit); err != nil {
				t.Fatal(err)
			}
			if r.limit != tt.wantLimit {
				t.Fatalf("store asked for %d, want %d", r.limit, tt.wantLimit)
			}
		})
	}
}

type dueRecorder struct {
	userBookings
	limit int
}

func (d *dueRecorder) DueHolds(_ context.Context, _ time.Time, limit int) ([]uuid.UUID, error) {
	d.limit = limit
	return nil, nil
}
