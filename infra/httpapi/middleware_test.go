package httpapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketd/ticketing/domain/fault"
)

func TestRequestIDs(t *testing.T) {
	var logged strings.Builder
	s := New(Options{Log: slog.New(slog.NewTextHandler(&logged, nil))})
	s.App().Get("/boom", func(*fiber.Ctx) error { return errors.New("boom") })
	get := func(path, id string) string {
		req := httptest.NewRequest("GET", path, nil)
		if id != "" {
			req.Header.Set("X-Request-ID", id)
		}
		resp, err := s.App().Test(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		return resp.Header.Get("X-Request-ID")
	}
	seen := map[string]bool{}
	for range 100 {
		id := get("/healthz", "")
		if len(id) < 16 || seen[id] {
			t.Fatalf("generated request id %q is short or repeated", id)
		}
		seen[id] = true
	}
	if got := get("/healthz", "from-the-proxy"); got != "from-the-proxy" {
		t.Fatalf("a proxy's request id came back as %q", got)
	}
	if got := get("/healthz", strings.Repeat("x", 129)); got == strings.Repeat("x", 129) || got == "" {
		t.Fatalf("an overlong request id was kept: %q", got)
	}
	id := get("/boom", "trace-me")
	if id != "trace-me" || !strings.Contains(logged.String(), "request_id=trace-me") {
		t.Fatalf("a failed request is not logged with its id %q: %s", id, logged.String())
	}
}

func TestMetricsCountByRouteMethodAndCode(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	s := New(Options{Log: slog.New(slog.DiscardHandler), Metrics: m})
	s.App().Get("/teapot/:id", func(c *fiber.Ctx) error { return c.SendStatus(fiber.StatusTeapot) })
	s.App().Get("/refused", func(c *fiber.Ctx) error { return fmt.Errorf("wrapped: %w", fault.ErrConflict) })
	for _, path := range []string{"/healthz", "/healthz", "/teapot/1", "/teapot/2", "/nowhere", "/refused"} {
		resp, err := s.App().Test(httptest.NewRequest("GET", path, nil))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	latencies := map[string]uint64{}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range metric.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetName() {
			case "ticketd_http_requests_total":
				counts[labels["route"]+" "+labels["method"]+" "+labels["code"]] = metric.GetCounter().GetValue()
			case "ticketd_http_request_duration_seconds":
				latencies[labels["route"]+" "+labels["method"]] = metric.GetHistogram().GetSampleCount()
			}
		}
	}
	wantCounts := map[string]float64{"/healthz GET 200": 2, "/teapot/:id GET 418": 2, "unmatched GET 404": 1, "/refused GET 409": 1}
	wantLatencies := map[string]uint64{"/healthz GET": 2, "/teapot/:id GET": 2, "unmatched GET": 1, "/refused GET": 1}
	if !maps.Equal(counts, wantCounts) || !maps.Equal(latencies, wantLatencies) {
		t.Fatalf("requests %v, latencies %v; want %v, %v", counts, latencies, wantCounts, wantLatencies)
	}
}
