package httpapi

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/valyala/fasthttp"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/readmodels"
)

// benchEventViews are n events as ticketbench's listing scenario creates
// them (one ticket type, the server's own nanosecond timestamps), so that
// a page of them is the size ticketbench measures (20 events: 8.7 kB).
func benchEventViews(n int) []readmodels.EventView {
	now := time.Date(2026, 11, 26, 9, 14, 3, 123456789, time.UTC)
	views := make([]readmodels.EventView, n)
	for i := range views {
		created := now.Add(time.Duration(i) * 7919 * time.Microsecond)
		views[i] = readmodels.EventView{
			ID: uuid.New(), Name: fmt.Sprintf("ticketbench listing 1f3a9c2e #%d", i),
			Description: "created by ticketbench", Venue: "Bench Hall",
			StartsAt: now.Add(90 * 24 * time.Hour).Truncate(time.Hour), Currency: "IDR", MaxPerBooking: 10,
			Status:      event.Scheduled,
			TicketTypes: []readmodels.TicketTypeView{{Name: "general", Price: 150_000, Capacity: 1000, Available: 1000}},
			CreatedAt:   created, UpdatedAt: created, Position: uint64(i + 1),
		}
	}
	return views
}

// BenchmarkJSONBodies measures the JSON work of the hot endpoints, per body:
//
//   - event-page: GET /events' answer, a full default page of 20 events;
//   - booking-create: POST /booking/create's request, decoded by the
//     server's strict decoder, and its 202 answer;
//   - payment-status: GET /payment/status/{id}'s answer, which a paying
//     client polls.
//
// op=encode maps the view or state to its wire shape, then json.Marshals
// it (Fiber's c.JSON), the server's fallback; op=encode-by-hand is what
// the server does (jsonenc.go), byte for byte the same output. op=decode of a request is
// the server's decode; of an answer it is a client's json.Unmarshal.
// SetBytes makes MB/s the body's throughput.
func BenchmarkJSONBodies(b *testing.B) {
	now := time.Date(2026, 11, 26, 9, 14, 3, 123456789, time.UTC)
	page := readmodels.EventPage{Items: benchEventViews(20)} // all there is: no next page
	bookingState := commands.BookingState{
		ID: uuid.New(), UserID: uuid.New(), EventID: uuid.New(), TicketType: "general", Quantity: 2,
		Amount: 300_000, Currency: "IDR", Status: booking.StatusPending, CreatedAt: now, UpdatedAt: now,
	}
	paymentView := readmodels.PaymentView{
		ID: uuid.New(), BookingID: bookingState.ID, UserID: bookingState.UserID, Amount: 300_000, Currency: "IDR",
		Status: payment.Processing, CreatedAt: now, UpdatedAt: now.Add(time.Second),
	}
	createRequest := []byte(`{"event_id":"` + bookingState.EventID.String() + `","ticket_type":"general","quantity":2}`)

	encodings := []struct {
		name   string
		encode func() any
		decode func([]byte) error
		// byHand is the server's own encoder (jsonenc.go), which it uses
		// whenever it can; encoding/json is its fallback.
		byHand func(dst []byte) ([]byte, bool)
	}{
		{"event-page", func() any {
			out := eventListJSON{Items: make([]eventJSON, len(page.Items)), NextCursor: optString(page.NextCursor)}
			for i := range page.Items {
				out.Items[i] = eventFromView(&page.Items[i])
			}
			return out
		}, func(data []byte) error {
			var v eventListJSON
			if err := json.Unmarshal(data, &v); err != nil {
				return err
			}
			if len(v.Items) != 20 {
				return fmt.Errorf("decoded %d events", len(v.Items))
			}
			return nil
		}, func(dst []byte) ([]byte, bool) { return appendEventListJSON(dst, &page) }},
		{"booking-create-response", func() any { return bookingFromState(&bookingState) }, func(data []byte) error {
			var v bookingJSON
			if err := json.Unmarshal(data, &v); err != nil {
				return err
			}
			if v.ID != bookingState.ID {
				return fmt.Errorf("decoded booking %s", v.ID)
			}
			return nil
		}, func(dst []byte) ([]byte, bool) { v := bookingFromState(&bookingState); return v.appendJSON(dst) }},
		{"payment-status", func() any { return paymentFromView(&paymentView) }, func(data []byte) error {
			var v paymentJSON
			if err := json.Unmarshal(data, &v); err != nil {
				return err
			}
			if v.Status != string(payment.Processing) {
				return fmt.Errorf("decoded status %q", v.Status)
			}
			return nil
		}, func(dst []byte) ([]byte, bool) { v := paymentFromView(&paymentView); return v.appendJSON(dst) }},
	}
	for _, e := range encodings {
		body, err := json.Marshal(e.encode())
		if err != nil {
			b.Fatal(err)
		}
		b.Run("body="+e.name+"/op=encode", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for range b.N {
				out, err := json.Marshal(e.encode())
				if err != nil || len(out) != len(body) {
					b.Fatalf("encoded %d bytes, want %d: %v", len(out), len(body), err)
				}
			}
		})
		b.Run("body="+e.name+"/op=encode-by-hand", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			buf := make([]byte, 0, 2*len(body))
			for range b.N {
				out, ok := e.byHand(buf[:0])
				if !ok || len(out) != len(body) {
					b.Fatalf("encoded %d bytes by hand (ok %v), want the %d of encoding/json", len(out), ok, len(body))
				}
			}
		})
		b.Run("body="+e.name+"/op=decode", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for range b.N {
				if err := e.decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}

	b.Run("body=booking-create-request/op=decode", func(b *testing.B) {
		app := fiber.New()
		fctx := &fasthttp.RequestCtx{}
		fctx.Request.Header.SetMethod(fiber.MethodPost)
		fctx.Request.Header.SetContentType(fiber.MIMEApplicationJSON)
		fctx.Request.SetBody(createRequest)
		c := app.AcquireCtx(fctx)
		defer app.ReleaseCtx(c)
		b.ReportAllocs()
		b.SetBytes(int64(len(createRequest)))
		for range b.N {
			var req createBookingRequest
			if err := decode(c, &req); err != nil || req.Quantity != 2 {
				b.Fatalf("decoded %+v: %v", req, err)
			}
		}
	})
}
