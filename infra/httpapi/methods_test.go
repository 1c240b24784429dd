package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
)

func TestUnknownAndUnroutedMethodsAreProblems(t *testing.T) {
	s := New(Options{Log: slog.New(slog.DiscardHandler)})
	for _, tc := range []struct {
		method, path string
		status       int
		typ          string
	}{
		{"QUERY", "/bookings", fiber.StatusNotImplemented, typeNoMethod},
		{"BREW", "/healthz", fiber.StatusNotImplemented, typeNoMethod},
		{"DELETE", "/healthz", fiber.StatusMethodNotAllowed, typeMethod},
		{"GET", "/healthz", fiber.StatusOK, ""},
	} {
		resp, err := s.App().Test(httptest.NewRequest(tc.method, tc.path, nil))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
		if tc.typ == "" {
			continue
		}
		var p problem
		if ct := resp.Header.Get(fiber.HeaderContentType); ct != "application/problem+json" {
			t.Errorf("%s %s: content type %q, want application/problem+json", tc.method, tc.path, ct)
		}
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || p.Type != tc.typ || p.Status != tc.status {
			t.Errorf("%s %s: problem %+v, %v; want type %s and status %d", tc.method, tc.path, p, err, tc.typ, tc.status)
		}
	}
}
