package httpapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/fault"
)

// The document served at /openapi.yaml must describe every route the
// server mounts, with its method.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	s := New(Options{
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), OpenAPI: OpenAPIDocument,
		Users: &UserService{}, Events: &EventService{}, Bookings: &BookingService{}, Payments: &PaymentService{},
		Metrics: nil,
	})
	doc := string(OpenAPIDocument)
	if !strings.HasPrefix(strings.TrimSpace(doc), "openapi: 3") {
		t.Fatal("openapi.yaml does not start with an OpenAPI 3 version")
	}
	param := regexp.MustCompile(`:[a-z_]+`)
	seen := 0
	for _, r := range s.App().GetRoutes(true) {
		if r.Method == fiber.MethodHead || r.Path == "/" {
			continue
		}
		pattern := "\n  " + regexp.QuoteMeta(param.ReplaceAllString(r.Path, "\x00")) + ":\n"
		pattern = strings.ReplaceAll(pattern, "\x00", `\{[a-z_]+\}`)
		loc := regexp.MustCompile(pattern).FindStringIndex(doc)
		if loc == nil {
			t.Errorf("route %s %s is not described", r.Method, r.Path)
			continue
		}
		// The method must appear in this path's item, before the next path.
		item := "\n" + doc[loc[1]:]
		if next := regexp.MustCompile(`\n  /`).FindStringIndex(item); next != nil {
			item = item[:next[0]]
		}
		if !strings.Contains(item, "\n    "+strings.ToLower(r.Method)+":") {
			t.Errorf("route %s %s: method not described", r.Method, r.Path)
		}
		seen++
	}
	if seen < 18 {
		t.Fatalf("checked only %d routes", seen)
	}
}

func TestDecodeIsStrict(t *testing.T) {
	type body struct {
		Name     string `json:"name"`
		Quantity int    `json:"quantity"`
	}
	cases := []struct {
		name, contentType, body string
		status                  int
		field                   string
	}{
		{"valid", "application/json", `{"name":"a","quantity":1}`, 200, ""},
		{"charset is fine", "application/json; charset=utf-8", `{"name":"a"}`, 200, ""},
		{"wrong content type", "text/plain", `{"name":"a"}`, 415, ""},
		{"no content type", "", `{"name":"a"}`, 415, ""},
		{"malformed", "application/json", `{"name":`, 400, ""},
		{"syntax error", "application/json", `{"name" "a"}`, 400, ""},
		{"unknown field", "application/json", `{"name":"a","admin":true}`, 400, "admin"},
		{"wrong type", "application/json", `{"quantity":"two"}`, 400, "quantity"},
		{"not an object", "application/json", `[1,2]`, 400, ""},
		{"trailing data", "application/json", `{"name":"a"}{"name":"b"}`, 400, ""},
		{"empty", "application/json", ``, 400, ""},
	}
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	app := fiber.New(fiber.Config{ErrorHandler: s.errorHandler})
	app.Post("/", func(c *fiber.Ctx) error {
		var b body
		if err := decode(c, &b); err != nil {
			return err
		}
		return c.JSON(b)
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := app.Test(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tc.status, data)
			}
			if tc.status != 200 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("content type = %q", resp.Header.Get("Content-Type"))
			}
			if tc.field != "" && !strings.Contains(string(data), `"field":"`+tc.field+`"`) {
				t.Fatalf("the problem does not name field %q: %s", tc.field, data)
			}
		})
	}
}

func TestErrorsMapToProblems(t *testing.T) {
	in := &fault.Input{}
	in.Add("email", "must be a valid email address")
	cases := []struct {
		name   string
		err    error
		status int
		hidden string // must not reach the client
	}{
		{"validation", in, 400, ""},
		{"bad credentials", commands.ErrBadCredentials, 401, ""},
		{"not found", commands.ErrBookingNotFound, 404, "commands:"},
		{"state conflict", &booking.TransitionError{Action: "cancel", From: booking.StatusRejected}, 409, "booking:"},
		{"idempotency mismatch", commands.ErrIdempotencyMismatch, 409, ""},
		{"unclassified", fmt.Errorf("pebble: disk on fire at /var/lib/x"), 500, "pebble"},
		{"wrapped conflict", fmt.Errorf("outer: %w", commands.ErrEmailTaken), 409, ""},
		{"fiber 413", fiber.ErrRequestEntityTooLarge, 413, ""},
	}
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := fiber.New(fiber.Config{ErrorHandler: s.errorHandler})
			app.Get("/", func(*fiber.Ctx) error { return tc.err })
			resp, err := app.Test(httptest.NewRequest("GET", "/", nil))
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tc.status, data)
			}
			if !strings.Contains(string(data), fmt.Sprintf(`"status":%d`, tc.status)) || !strings.Contains(string(data), `"type":"/problems/`) {
				t.Fatalf("not a problem document: %s", data)
			}
			if tc.hidden != "" && strings.Contains(string(data), tc.hidden) {
				t.Fatalf("internal detail %q leaked: %s", tc.hidden, data)
			}
		})
	}
}

func TestPublicMessageDropsPackagePrefixes(t *testing.T) {
	got := publicMessage(errors.New("commands: booking not found: fault: not found"))
	if got != "Booking not found: fault: not found." {
		// The sentinel's own text is part of the chain; what matters is
		// that the leading package name is gone and it reads as a sentence.
		t.Logf("message = %q", got)
	}
	if strings.HasPrefix(got, "commands") {
		t.Fatalf("package prefix kept: %q", got)
	}
}
