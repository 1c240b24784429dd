package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// The untimed calls of the API (setup and polling), with encoding/json.

// apiError is an answer with an unexpected status.
type apiError struct {
	method, path string
	status       int
	body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.method, e.path, e.status, e.body)
}

// call sends in (JSON, when not nil) and decodes the answer into out when
// it has status want.
func call(c conn, method, path, token string, in, out any, want int) error {
	return callWith(c, new(response), method, path, token, in, out, want)
}

// callWith is call with a response buffer to reuse.
func callWith(c conn, resp *response, method, path, token string, in, out any, want int) error {
	req := request{method: method, path: path, token: token}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		req.body = b
	}
	if err := c.do(&req, resp); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.status != want {
		body := resp.body
		if len(body) > 300 {
			body = body[:300]
		}
		return &apiError{method: method, path: path, status: resp.status, body: string(bytes.TrimSpace(body))}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	return nil
}

func login(c conn, email, password string) (string, error) {
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err := call(c, http.MethodPost, "/login", "", map[string]string{"email": email, "password": password}, &tok, http.StatusOK)
	if err != nil {
		return "", err
	}
	if tok.AccessToken == "" {
		return "", fmt.Errorf("login %s: no access_token", email)
	}
	return tok.AccessToken, nil
}

type ticketTypeJSON struct {
	Name      string `json:"name"`
	Price     int64  `json:"price"`
	Capacity  int    `json:"capacity"`
	Available int    `json:"available"`
}

type eventJSON struct {
	ID          uuid.UUID        `json:"id"`
	Status      string           `json:"status"`
	TicketTypes []ticketTypeJSON `json:"ticket_types"`
}

const ticketType = "general"

func createEvent(c conn, admin, name string, capacity, maxPerBooking int) (eventJSON, error) {
	in := map[string]any{
		"name":            name,
		"description":     "created by ticketbench",
		"venue":           "Bench Hall",
		"starts_at":       time.Now().UTC().Add(90 * 24 * time.Hour).Truncate(time.Hour).Format(time.RFC3339),
		"currency":        "IDR",
		"max_per_booking": maxPerBooking,
		"ticket_types":    []map[string]any{{"name": ticketType, "price": 150000, "capacity": capacity}},
	}
	var ev eventJSON
	err := call(c, http.MethodPost, "/event/create", admin, in, &ev, http.StatusCreated)
	return ev, err
}

func getEvent(c conn, id uuid.UUID) (eventJSON, error) {
	var ev eventJSON
	err := call(c, http.MethodGet, "/events/"+id.String(), "", nil, &ev, http.StatusOK)
	return ev, err
}

func (e *eventJSON) available(name string) (int, bool) {
	for _, t := range e.TicketTypes {
		if t.Name == name {
			return t.Available, true
		}
	}
	return 0, false
}

// setupCustomers registers and logs in n customers, a few at a time (the
// server bounds password hashing anyway), and returns their tokens.
func setupCustomers(ctx context.Context, d *dialer, run string, n int) ([]string, error) {
	tokens := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for range min(n, 16) {
		wg.Go(func() {
			c := d.conn()
			defer c.close()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				email := fmt.Sprintf("tb-%s-%d@example.com", run, i)
				const password = "ticketbench-password"
				err := call(c, http.MethodPost, "/register", "", map[string]string{"email": email, "password": password, "name": fmt.Sprintf("Bench Customer %d", i)}, nil, http.StatusCreated)
				if err == nil {
					tokens[i], err = login(c, email, password)
				}
				if err != nil {
					select {
					case errs <- fmt.Errorf("customer %d: %w", i, err):
					default:
					}
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return tokens, nil
}

// bookingItem is the part of a booking the poller reads.
type bookingItem struct {
	ID        uuid.UUID `json:"id"`
	Status    string    `json:"status"`
	Reason    *string   `json:"reason"`
	UpdatedAt time.Time `json:"updated_at"`
}

type bookingPage struct {
	Items      []bookingItem `json:"items"`
	NextCursor *string       `json:"next_cursor"`
}

// listBookings reads one page of the caller's bookings, newest first, and
// returns the size of the answer.
func listBookings(c conn, resp *response, token, cursor string, page *bookingPage) (int, error) {
	path := "/bookings?limit=100"
	if cursor != "" {
		path += "&cursor=" + url.QueryEscape(cursor)
	}
	*page = bookingPage{Items: page.Items[:0]}
	err := callWith(c, resp, http.MethodGet, path, token, nil, page, http.StatusOK)
	return len(resp.body), err
}
