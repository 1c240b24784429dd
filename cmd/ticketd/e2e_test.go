package main

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs ticketd")
	}
	s := startServer(t, t.TempDir())
	admin := s.admin(t)

	t.Run("users register, log in and keep a profile", func(t *testing.T) {
		anon := s.anon(t)
		reg := anon.expect(201, "POST", "/register", map[string]any{"email": "Ana@Example.com", "password": "long enough", "name": "Ana"})
		if reg["role"] != "customer" || reg["email"] != "ana@example.com" || reg["id"] == "" {
			t.Fatalf("registration = %v", reg)
		}
		anon.expectProblem(409, "POST", "/register", map[string]any{"email": "ANA@example.com", "password": "long enough", "name": "Other"})
		p := anon.expectProblem(400, "POST", "/register", map[string]any{"email": "not-an-email", "password": "short", "name": ""})
		if errs, _ := p["errors"].([]any); len(errs) != 3 {
			t.Fatalf("want 3 field errors, got %v", p["errors"])
		}
		wrongPassword := anon.expectProblem(401, "POST", "/login", map[string]any{"email": "ana@example.com", "password": "wrong password"})
		unknownUser := anon.expectProblem(401, "POST", "/login", map[string]any{"email": "nobody@example.com", "password": "wrong password"})
		if wrongPassword["detail"] != unknownUser["detail"] {
			t.Fatalf("login failures differ: %v vs %v", wrongPassword, unknownUser)
		}

		ana := s.login(t, "ana@example.com", "long enough")
		prof := ana.expect(200, "GET", "/profile", nil)
		if prof["name"] != "Ana" || prof["id"] != reg["id"] || prof["role"] != "customer" {
			t.Fatalf("profile = %v", prof)
		}
		upd := ana.expect(200, "PUT", "/profile/update", map[string]any{"phone": "+62 812 3456 7890"})
		if upd["phone"] != "+62 812 3456 7890" || upd["name"] != "Ana" {
			t.Fatalf("updated profile = %v", upd)
		}
		eventually(t, "the profile shows the phone", func() bool {
			return ana.expect(200, "GET", "/profile", nil)["phone"] == "+62 812 3456 7890"
		})
		anon.expectProblem(401, "GET", "/profile", nil)
	})

	t.Run("admins manage events, everyone lists them", func(t *testing.T) {
		customer := s.customer(t)
		customer.expectProblem(403, "POST", "/event/create", newEvent("Nope", 10))
		ev := admin.expect(201, "POST", "/event/create", newEvent("Listing Concert", 10))
		id := ev["id"].(string)
		if ev["status"] != "scheduled" || available(ev, "general") != 10 || ev["max_per_booking"] != float64(5) {
			t.Fatalf("created event = %v", ev)
		}
		upd := admin.expect(200, "PUT", "/event/update/"+id, map[string]any{"venue": "Bigger Hall", "ticket_types": []map[string]any{{"name": "general", "capacity": 20}}})
		if upd["venue"] != "Bigger Hall" || available(upd, "general") != 20 || upd["name"] != "Listing Concert" {
			t.Fatalf("updated event = %v", upd)
		}
		eventually(t, "the listing finds the event by venue", func() bool {
			list := s.anon(t).expect(200, "GET", "/events?q=bigger+hall&limit=5", nil)
			items := list["items"].([]any)
			return len(items) == 1 && items[0].(map[string]any)["id"] == id
		})
		s.anon(t).expectProblem(400, "GET", "/events?limit=1000", nil)
		s.anon(t).expectProblem(404, "GET", "/events/not-a-uuid", nil)
	})

	t.Run("a booking is held, paid by webhook, confirmed, with live payment status", func(t *testing.T) {
		ev := admin.expect(201, "POST", "/event/create", newEvent("Paid Concert", 10))
		evID := ev["id"].(string)
		buyer := s.customer(t)
		r := buyer.do("POST", "/booking/create", map[string]any{"event_id": evID, "ticket_type": "general", "quantity": 2}, "Idempotency-Key", "order-1")
		if r.status != 202 {
			t.Fatalf("create booking = %d: %s", r.status, r.body)
		}
		b := r.json(t)
		id := b["id"].(string)
		if r.header.Get("Location") != "/bookings/"+id {
			t.Fatalf("Location = %q", r.header.Get("Location"))
		}
		again := buyer.expect(202, "POST", "/booking/create", map[string]any{"event_id": evID, "ticket_type": "general", "quantity": 2}, "Idempotency-Key", "order-1")
		if again["id"] != id {
			t.Fatalf("repeated request created booking %v, want %v", again["id"], id)
		}
		buyer.expectProblem(409, "POST", "/booking/create", map[string]any{"event_id": evID, "ticket_type": "general", "quantity": 3}, "Idempotency-Key", "order-1")

		held := buyer.waitBooking(id, "awaiting_payment")
		if held["amount"] != float64(300000) || held["currency"] != "IDR" || held["expires_at"] == nil {
			t.Fatalf("held booking = %v", held)
		}
		buyer.waitAvailable(evID, "general", 8)

		pay := buyer.do("POST", "/payment/process", map[string]any{"booking_id": id, "payment_token": "tok_delayed"}, "Idempotency-Key", "pay-1")
		if pay.status != 202 {
			t.Fatalf("process payment = %d: %s", pay.status, pay.body)
		}
		p := pay.json(t)
		pid := p["id"].(string)
		if p["status"] != "processing" || p["amount"] != float64(300000) {
			t.Fatalf("payment = %v", p)
		}
		buyer.expectProblem(409, "POST", "/payment/process", map[string]any{"booking_id": id, "payment_token": "tok_success"})

		statuses := buyer.stream("/payment/status/" + pid + "/stream")
		if len(statuses) < 2 || statuses[0] != "processing" || statuses[len(statuses)-1] != "succeeded" {
			t.Fatalf("stream sent %v, want processing ... succeeded", statuses)
		}
		confirmed := buyer.waitBooking(id, "confirmed")
		if confirmed["payment_id"] != pid {
			t.Fatalf("confirmed booking = %v", confirmed)
		}
		list := buyer.expect(200, "GET", "/bookings", nil)
		if items := list["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != id {
			t.Fatalf("own bookings = %v", list)
		}

		t.Run("other users see nothing of it", func(t *testing.T) {
			other := s.customer(t)
			other.expectProblem(404, "GET", "/bookings/"+id, nil)
			other.expectProblem(404, "GET", "/payment/status/"+pid, nil)
			other.expectProblem(404, "POST", "/booking/cancel", map[string]any{"booking_id": id})
			other.expectProblem(404, "POST", "/payment/process", map[string]any{"booking_id": id, "payment_token": "tok_success"})
			if items := other.expect(200, "GET", "/bookings", nil)["items"].([]any); len(items) != 0 {
				t.Fatalf("another user lists %v", items)
			}
			admin.expect(200, "GET", "/bookings/"+id, nil)
		})

		t.Run("forged notifications change nothing", func(t *testing.T) {
			body := fmt.Sprintf(`{"payment_id":%q,"status":"failed","gateway_ref":"x"}`, pid)
			now := strconv.FormatInt(time.Now().Unix(), 10)
			stale := strconv.FormatInt(time.Now().Add(-10*time.Minute).Unix(), 10)
			anon := s.anon(t)
			anon.expectProblem(401, "POST", "/payment/status", body)
			anon.expectProblem(401, "POST", "/payment/status", body, "X-Timestamp", now, "X-Signature", sign("wrong secret", now, body))
			anon.expectProblem(401, "POST", "/payment/status", body, "X-Timestamp", stale, "X-Signature", sign(webhookSecret, stale, body))
			if got := buyer.expect(200, "GET", "/payment/status/"+pid, nil); got["status"] != "succeeded" {
				t.Fatalf("payment after forgeries = %v", got)
			}
			// A genuine repeat of the provider's success is harmless.
			ok := fmt.Sprintf(`{"payment_id":%q,"status":"succeeded","gateway_ref":"sb"}`, pid)
			anon.expect(200, "POST", "/payment/status", ok, "X-Timestamp", now, "X-Signature", sign(webhookSecret, now, ok))
		})

		t.Run("cancelling it refunds the payment and frees the seats", func(t *testing.T) {
			c := buyer.expect(202, "POST", "/booking/cancel", map[string]any{"booking_id": id, "reason": "cannot come"})
			if c["status"] != "cancelled" || c["reason"] != "cannot come" {
				t.Fatalf("cancelled booking = %v", c)
			}
			buyer.waitPayment(pid, "refunded")
			buyer.waitAvailable(evID, "general", 10)
			buyer.expectProblem(409, "POST", "/booking/cancel", map[string]any{"booking_id": id})
		})
	})

	t.Run("a declined payment can be retried; an unpaid hold expires and frees its seats", func(t *testing.T) {
		ev := admin.expect(201, "POST", "/event/create", newEvent("Expiry Concert", 10))
		evID := ev["id"].(string)
		buyer := s.customer(t)
		id := buyer.expect(202, "POST", "/booking/create", map[string]any{"event_id": evID, "ticket_type": "vip", "quantity": 1})["id"].(string)
		buyer.waitBooking(id, "awaiting_payment")
		p := buyer.expect(202, "POST", "/payment/process", map[string]any{"booking_id": id, "payment_token": "tok_decline"})
		failed := buyer.waitPayment(p["id"].(string), "failed")
		if failed["failure_reason"] == nil {
			t.Fatalf("failed payment has no reason: %v", failed)
		}
		buyer.waitAvailable(evID, "vip", 4)
		expired := buyer.waitBooking(id, "expired")
		if expired["reason"] != "hold_expired" {
			t.Fatalf("expired booking = %v", expired)
		}
		buyer.waitAvailable(evID, "vip", 5)
		buyer.expectProblem(409, "POST", "/payment/process", map[string]any{"booking_id": id, "payment_token": "tok_success"})
	})

	t.Run("cancelling an event cancels every booking on it and refunds the paid ones", func(t *testing.T) {
		ev := admin.expect(201, "POST", "/event/create", newEvent("Cancelled Concert", 10))
		evID := ev["id"].(string)
		payer, waiter := s.customer(t), s.customer(t)
		paid := payer.expect(202, "POST", "/booking/create", map[string]any{"event_id": evID, "ticket_type": "general", "quantity": 1})["id"].(string)
		waiting := waiter.expect(202, "POST", "/booking/create", map[string]any{"event_id": evID, "ticket_type": "general", "quantity": 1})["id"].(string)
		payer.waitBooking(paid, "awaiting_payment")
		waiter.waitBooking(waiting, "awaiting_payment")
		pid := payer.expect(202, "POST", "/payment/process", map[string]any{"booking_id": paid, "payment_token": "tok_success"})["id"].(string)
		payer.waitBooking(paid, "confirmed")

		del := admin.expect(202, "DELETE", "/event/delete/"+evID, nil)
		if del["status"] != "cancelled" {
			t.Fatalf("deleted event = %v", del)
		}
		if b := payer.waitBooking(paid, "cancelled"); b["reason"] != "event_cancelled" {
			t.Fatalf("paid booking = %v", b)
		}
		waiter.waitBooking(waiting, "cancelled")
		payer.waitPayment(pid, "refunded")
		eventually(t, "the event leaves the listing", func() bool {
			for _, it := range s.anon(t).expect(200, "GET", "/events?limit=100", nil)["items"].([]any) {
				if it.(map[string]any)["id"] == evID {
					return false
				}
			}
			return true
		})
		if got := s.anon(t).expect(200, "GET", "/events/"+evID, nil); got["status"] != "cancelled" {
			t.Fatalf("cancelled event by id = %v", got)
		}
		payer.expectProblem(409, "POST", "/booking/create", map[string]any{"event_id": evID, "ticket_type": "general", "quantity": 1})
		admin.expectProblem(409, "PUT", "/event/update/"+evID, map[string]any{"name": "Back on"})
	})

	t.Run("racing bookings never oversell", func(t *testing.T) {
		const seats, buyers = 10, 40
		ev := admin.expect(201, "POST", "/event/create", newEvent("Flash Sale", seats))
		evID := ev["id"].(string)
		clients := make([]*client, buyers)
		for i := range clients {
			clients[i] = s.customer(t)
		}
		ids := make([]string, buyers)
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := c.do("POST", "/booking/create", map[string]any{"event_id": evID, "ticket_type": "general", "quantity": 1})
				if r.status == 202 {
					var b struct{ ID string }
					_ = json.Unmarshal(r.body, &b)
					ids[i] = b.ID
				} else {
					t.Errorf("create = %d: %s", r.status, r.body)
				}
			}()
		}
		wg.Wait()
		held, rejected := 0, 0
		eventually(t, "every booking is decided", func() bool {
			held, rejected = 0, 0
			for i, id := range ids {
				switch clients[i].expect(200, "GET", "/bookings/"+id, nil)["status"] {
				case "awaiting_payment":
					held++
				case "rejected":
					rejected++
				}
			}
			return held+rejected == buyers
		})
		if held != seats {
			t.Fatalf("held %d bookings for %d seats", held, seats)
		}
		s.anon(t).waitAvailable(evID, "general", 0)
	})

	t.Run("malformed input is refused clearly and changes nothing", func(t *testing.T) {
		c := s.customer(t)
		cases := []struct {
			name   string
			status int
			body   any
			header []string
		}{
			{"not JSON", 400, "{not json", nil},
			{"unknown field", 400, map[string]any{"event_id": "x", "ticket_type": "general", "quantity": 1, "price": 0}, nil},
			{"wrong type", 400, map[string]any{"event_id": "x", "ticket_type": "general", "quantity": "two"}, nil},
			{"bad uuid", 400, map[string]any{"event_id": "x", "ticket_type": "general", "quantity": 1}, nil},
			{"zero quantity", 400, map[string]any{"event_id": "6f1c1d2e-3c4b-4d5e-8f90-0a1b2c3d4e5f", "ticket_type": "general", "quantity": 0}, nil},
			{"trailing data", 400, `{"event_id":"x","ticket_type":"g","quantity":1} {}`, nil},
			{"empty body", 400, "", nil},
			{"long idempotency key", 400, map[string]any{"event_id": "x"}, []string{"Idempotency-Key", strings.Repeat("k", 256)}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c.expectProblem(tc.status, "POST", "/booking/create", tc.body, tc.header...)
			})
		}
		t.Run("too large", func(t *testing.T) {
			// The server answers 413 from the declared length and closes
			// without reading the body; sending the body would race that
			// close, so only the headers are sent.
			status := rawStatus(t, s.base, "POST /booking/create HTTP/1.1\r\nHost: ticketd\r\nContent-Type: application/json\r\n"+
				"Authorization: Bearer "+c.token+"\r\nContent-Length: 1048576\r\n\r\n")
			if status != 413 {
				t.Fatalf("a 1 MiB body = %d, want 413", status)
			}
		})
		r := c.do("POST", "/booking/create", "quantity=1", "Content-Type", "text/plain")
		if r.status != 415 {
			t.Fatalf("text/plain body = %d, want 415", r.status)
		}
		if items := c.expect(200, "GET", "/bookings", nil)["items"].([]any); len(items) != 0 {
			t.Fatalf("refused requests created bookings: %v", items)
		}
		s.anon(t).expectProblem(401, "GET", "/bookings", nil, "Authorization", "Bearer not-a-token")
		s.anon(t).expectProblem(404, "GET", "/no/such/endpoint", nil)
	})

	t.Run("operations endpoints", func(t *testing.T) {
		a := s.anon(t)
		a.expect(200, "GET", "/healthz", nil)
		if r := a.expect(200, "GET", "/readyz", nil); r["status"] != "ready" {
			t.Fatalf("readyz = %v", r)
		}
		m := a.do("GET", "/metrics", nil)
		if m.status != 200 || !strings.Contains(string(m.body), "ticketd_http_requests_total") || !strings.Contains(string(m.body), "ticketd_projection_lag") {
			t.Fatalf("metrics = %d, missing series:\n%.2000s", m.status, m.body)
		}
		doc := a.do("GET", "/openapi.yaml", nil)
		if doc.status != 200 || !strings.Contains(string(doc.body), "/booking/create") {
			t.Fatalf("openapi = %d", doc.status)
		}
	})
}

func TestRestartAfterSIGKILLLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs ticketd")
	}
	s := startServer(t, t.TempDir())
	admin := s.admin(t)
	ev := admin.expect(201, "POST", "/event/create", newEvent("Crash Concert", 10))
	evID := ev["id"].(string)
	buyer := s.customer(t)
	paid := buyer.expect(202, "POST", "/booking/create", map[string]any{"event_id": evID, "ticket_type": "general", "quantity": 2})["id"].(string)
	buyer.waitBooking(paid, "awaiting_payment")
	buyer.expect(202, "POST", "/payment/process", map[string]any{"booking_id": paid, "payment_token": "tok_success"})
	buyer.waitBooking(paid, "confirmed")
	unpaid := buyer.expect(202, "POST", "/booking/create", map[string]any{"event_id": evID, "ticket_type": "general", "quantity": 3})["id"].(string)
	buyer.waitBooking(unpaid, "awaiting_payment")
	buyer.waitAvailable(evID, "general", 5)

	// Down for longer than the hold: it must expire when the server is back.
	s.stop(9)
	time.Sleep(4 * time.Second)
	s.start()

	buyer = s.login(t, buyer.email(t), "correct horse")
	if b := buyer.expect(200, "GET", "/bookings/"+paid, nil); b["status"] != "confirmed" {
		t.Fatalf("paid booking after crash = %v", b)
	}
	buyer.waitBooking(unpaid, "expired")
	buyer.waitAvailable(evID, "general", 8)

	// And once more, mid-flow: a SIGKILL right after accepting bookings.
	ids := make([]string, 5)
	for i := range ids {
		ids[i] = buyer.expect(202, "POST", "/booking/create", map[string]any{"event_id": evID, "ticket_type": "general", "quantity": 1})["id"].(string)
	}
	s.crashAndRestart()
	buyer = s.login(t, buyer.email(t), "correct horse")
	for _, id := range ids {
		b := buyer.expect(200, "GET", "/bookings/"+id, nil)
		if b["id"] != id {
			t.Fatalf("acknowledged booking %s lost: %v", id, b)
		}
		buyer.waitBooking(id, "expired")
	}
	buyer.waitAvailable(evID, "general", 8)
}

// email returns the logged-in client's email from its profile.
func (c *client) email(t *testing.T) string {
	t.Helper()
	return c.expect(200, "GET", "/profile", nil)["email"].(string)
}

// stream reads a server-sent event stream to its end and returns the
// statuses it carried.
func (c *client) stream(path string) []string {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.s.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		c.t.Fatalf("stream = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var statuses []string
	sc := bufio.NewScanner(resp.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "status":
			var p struct{ Status string }
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &p); err != nil {
				c.t.Fatalf("bad SSE data %q", line)
			}
			statuses = append(statuses, p.Status)
		}
	}
	return statuses
}

func sign(secret, ts, body string) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts + "." + body))
	return "sha256=" + hex.EncodeToString(h.Sum(nil))
}

// rawStatus sends a raw HTTP request head and returns the answer's status.
func rawStatus(t *testing.T, base, head string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
