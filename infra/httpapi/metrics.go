package httpapi

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the HTTP server's Prometheus metrics, registered with the
// process's registry (which also carries the saga's and projections').
type Metrics struct {
	gatherer prometheus.Gatherer
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	// byKey keeps the series of each (route, method, code) once resolved,
	// so that counting a request neither allocates nor hashes labels.
	mu    sync.RWMutex
	byKey map[metricKey]*routeMetrics
}

type metricKey struct {
	route, method string
	code          int
}

type routeMetrics struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// maxMetricKeys bounds byKey; beyond it (odd methods on unknown paths)
// series are looked up each time.
const maxMetricKeys = 1024

// NewMetrics registers the HTTP metrics with reg.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		gatherer: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ticketd_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ticketd_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		byKey: make(map[metricKey]*routeMetrics),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *Metrics) middleware(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	code := c.Response().StatusCode()
	if err != nil {
		// The error handler has not run yet; count what it will answer
		// (a refusal of the domain is a 4xx, not a 500).
		code = statusOf(err)
	}
	route := c.Route().Path
	if code == fiber.StatusNotFound && route == "/" {
		route = "unmatched"
	}
	rm := m.series(route, c.Method(), code)
	rm.requests.Inc()
	rm.latency.Observe(time.Since(start).Seconds())
	return err
}

// series returns the metrics of one route, method and code.
func (m *Metrics) series(route, method string, code int) *routeMetrics {
	m.mu.RLock()
	rm := m.byKey[metricKey{route, method, code}]
	m.mu.RUnlock()
	if rm != nil {
		return rm
	}
	// Fiber's strings may alias buffers that are reused after the request;
	// a metric keeps its label values for good, so they are copied.
	route, method = strings.Clone(route), strings.Clone(method)
	rm = &routeMetrics{
		requests: m.requests.WithLabelValues(route, method, strconv.Itoa(code)),
		latency:  m.latency.WithLabelValues(route, method),
	}
	m.mu.Lock()
	if len(m.byKey) < maxMetricKeys {
		m.byKey[metricKey{route, method, code}] = rm
	}
	m.mu.Unlock()
	return rm
}

func (m *Metrics) handler() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{}))
}
