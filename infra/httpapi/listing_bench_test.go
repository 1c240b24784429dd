package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/ticketd/ticketing/infra/readstore/embedded"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

// BenchmarkListingVsBareFiber measures GET /events over loopback TCP
// against its ceiling, in one run. "server=ticketd" is this package's
// server doing all that GET /events does (request id and metrics
// middleware, the embedded read model's query, encoding the page of 20
// events); "server=bare-fiber" is a Fiber app with default settings whose
// one handler sends the same bytes, fixed. Their ratio is what the server
// adds to what the HTTP stack costs anyway.
//
// The clients are 16 × GOMAXPROCS goroutines of fasthttp's client in the
// same process, each with its own keep-alive connection, so client and
// server share the machine as ticketbench and ticketd do.
func BenchmarkListingVsBareFiber(b *testing.B) {
	store, err := embedded.Open(b.TempDir(), embedded.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	views := benchEventViews(20)
	if err := store.Events().Commit(context.Background(), projections.EventsCommit{From: 0, To: uint64(len(views)), Events: views}); err != nil {
		b.Fatal(err)
	}
	ours := New(Options{
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Events:  &EventService{Reads: readmodels.NewEventQueries(store.Events())},
		Metrics: NewMetrics(prometheus.NewRegistry()),
	})
	oursAddr := benchServe(b, ours.App())

	// The bare server answers with exactly the bytes ours does.
	status, body, err := fasthttp.Get(nil, "http://"+oursAddr+"/events")
	if err != nil || status != fiber.StatusOK {
		b.Fatalf("GET /events: %d, %v", status, err)
	}
	// The same write buffer as the server's (one write for a 9 kB page),
	// so that the baseline is the best Fiber does, not its defaults.
	bare := fiber.New(fiber.Config{DisableStartupMessage: true, WriteBufferSize: 16 << 10})
	bare.Get("/events", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(body)
	})
	bareAddr := benchServe(b, bare)

	for _, srv := range []struct{ name, addr string }{{"ticketd", oursAddr}, {"bare-fiber", bareAddr}} {
		b.Run("server="+srv.name, func(b *testing.B) {
			client := &fasthttp.HostClient{Addr: srv.addr, MaxConns: 1024}
			b.ReportAllocs()
			b.SetParallelism(16)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetRequestURI("http://" + srv.addr + "/events")
				for pb.Next() {
					if err := client.Do(req, resp); err != nil {
						b.Error(err)
						return
					}
					if resp.StatusCode() != fiber.StatusOK || len(resp.Body()) != len(body) {
						b.Errorf("answer %d with %d bytes, want 200 with %d", resp.StatusCode(), len(resp.Body()), len(body))
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
			b.ReportMetric(float64(len(body)), "body-bytes")
		})
	}
}

// benchServe runs app on a loopback port until the benchmark ends.
func benchServe(b *testing.B, app *fiber.App) string {
	b.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Listener(ln) }()
	b.Cleanup(func() {
		if err := app.ShutdownWithTimeout(5 * time.Second); err != nil {
			b.Error(err)
		}
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	return ln.Addr().String()
}
