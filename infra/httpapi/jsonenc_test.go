package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/readmodels"
)

// The hand-written listing encoder must write exactly what encoding/json
// writes for the wire structs.
func TestEventListEncoderMatchesEncodingJSON(t *testing.T) {
	jakarta := time.FixedZone("WIB", 7*3600)
	at := time.Date(2030, 3, 1, 19, 30, 0, 123456789, jakarta)
	views := []readmodels.EventView{
		{
			ID: uuid.New(), Name: "Jazz <Night> & \"friends\"", Description: "tab\there\nline\r\\ \b\f \x01 \x1f \u2028 \u2029 é 日本 \xff\xfe end",
			Venue: "Hall", StartsAt: at, EndsAt: at.Add(3 * time.Hour), Currency: "IDR", MaxPerBooking: 4,
			Status: event.Scheduled, CreatedAt: at.Add(-time.Hour), UpdatedAt: at.Add(-time.Minute),
			TicketTypes: []readmodels.TicketTypeView{{Name: "vip", Price: 500_000, Capacity: 10, Available: 0}, {Name: "reg", Price: -1, Capacity: 1 << 40, Available: 3}},
		},
		{ID: uuid.Nil, StartsAt: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), Status: event.StatusCancelled},
		{ID: uuid.New(), Name: "no end", StartsAt: time.Unix(1e9, 0), TicketTypes: []readmodels.TicketTypeView{}},
	}
	for _, cursor := range []string{"", "ZQAAAAB"} {
		page := readmodels.EventPage{Items: views, NextCursor: cursor}
		want := encodeWithJSON(t, &page)
		got, ok := appendEventListJSON(nil, &page)
		if !ok || string(got) != want {
			t.Fatalf("encoder wrote (ok=%v)\n%s\nencoding/json wrote\n%s", ok, got, want)
		}
	}
	empty := readmodels.EventPage{}
	if got, _ := appendEventListJSON(nil, &empty); string(got) != encodeWithJSON(t, &empty) {
		t.Fatalf("empty page: %s", got)
	}
	// A year encoding/json cannot write is left to it.
	bad := readmodels.EventPage{Items: []readmodels.EventView{{StartsAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}
	if _, ok := appendEventListJSON(nil, &bad); ok {
		t.Fatal("year 10000 was encoded")
	}
}

func encodeWithJSON(t *testing.T, page *readmodels.EventPage) string {
	t.Helper()
	out := eventListJSON{Items: make([]eventJSON, len(page.Items)), NextCursor: optString(page.NextCursor)}
	for i := range page.Items {
		out.Items[i] = eventFromView(&page.Items[i])
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "<>&\"\\", "\x00\x1f\x7f", "\u2028\u2029", "\xff", "日本\xe6\x97", strings.Repeat("é", 9)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s want %s", s, got, want)
		}
	})
}

func TestBookingAndPaymentEncodersMatchEncodingJSON(t *testing.T) {
	at := time.Date(2030, 3, 1, 19, 30, 5, 120000000, time.UTC)
	reason, cursor := "sold_out <&> \"x\"\n", "YmFzZTY0"
	later := at.Add(10 * time.Minute)
	pay := uuid.New()
	bookings := []bookingJSON{
		{ID: uuid.New(), UserID: uuid.New(), EventID: uuid.New(), TicketType: "vip\u2028", Quantity: 2, Amount: 300000, Currency: "IDR",
			Status: "awaiting_payment", Reason: &reason, ExpiresAt: &later, PaymentID: &pay, CreatedAt: at, UpdatedAt: later},
		{Status: "pending", CreatedAt: time.Time{}.UTC(), UpdatedAt: at},
	}
	for i := range bookings {
		check(t, &bookings[i])
	}
	check(t, &bookingListJSON{Items: bookings, NextCursor: &cursor})
	check(t, &bookingListJSON{Items: []bookingJSON{}})
	check(t, &bookingListJSON{})
	check(t, &paymentJSON{ID: uuid.New(), BookingID: uuid.New(), Amount: -5, Currency: "IDR", Status: "failed", FailureReason: &reason, CreatedAt: at, UpdatedAt: later})
	check(t, &paymentJSON{Status: "processing", CreatedAt: at, UpdatedAt: at})

	// What the encoders do not write exactly like encoding/json is left
	// to it.
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	local := at.In(time.FixedZone("WIB", 7*3600))
	for _, v := range []jsonAppender{
		&bookingJSON{CreatedAt: far}, &bookingJSON{CreatedAt: at, UpdatedAt: at, ExpiresAt: &far},
		&bookingJSON{CreatedAt: local, UpdatedAt: at}, &paymentJSON{CreatedAt: at, UpdatedAt: far},
		&bookingListJSON{Items: []bookingJSON{bookings[0], {CreatedAt: far}}},
	} {
		if got, ok := v.appendJSON([]byte("x")); ok || string(got) != "x" {
			t.Errorf("%T with an odd time was encoded: %s", v, got)
		}
	}
}

func check(t *testing.T, v jsonAppender) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := v.appendJSON([]byte("prefix"))
	if !ok || string(got) != "prefix"+string(want) {
		t.Fatalf("%T: encoder wrote (ok=%v)\n%s\nencoding/json wrote\n%s", v, ok, got, want)
	}
}
