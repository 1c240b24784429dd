package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/fault"
	"github.com/ticketd/ticketing/infra/auth"
	"github.com/ticketd/ticketing/infra/eventstore/embedded"
	"github.com/ticketd/ticketing/infra/eventstore/kurrentdb"
	"github.com/ticketd/ticketing/infra/httpapi"
	"github.com/ticketd/ticketing/infra/payment/sandbox"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

// run starts the configured services and serves until ctx is done, then
// shuts down in order: stop taking requests and let those in flight
// finish, stop the subscribers at a checkpoint, close the stores.
//
// Embedded mode (no Kafka) runs every service in this process. Distributed
// mode runs the services named in cfg.Services; each keeps its own streams
// in its own store and talks to the others only through Kafka, and the
// read models live in Redis.
func run(ctx context.Context, cfg *Config, log *slog.Logger) error {
	store, err := openEventStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	jwtSecret, webhookSecret, err := secrets(cfg)
	if err != nil {
		return err
	}
	metricsReg := prometheus.NewRegistry()
	metricsReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	obs := newBusMetrics(metricsReg)

	reg := commands.NewRegistry()
	repo := commands.NewRepository(store, reg, time.Now)
	router := commands.NewRouter()

	var p *platform
	if cfg.Distributed() {
		p, err = distributedPlatform(ctx, cfg, log, store, reg, obs)
	} else {
		p, err = embeddedPlatform(cfg, log, store, reg, router, obs)
	}
	if err != nil {
		return err
	}
	defer p.reads.close()
	defer func() {
		for _, c := range p.close {
			c()
		}
	}()

	eventQ := readmodels.NewEventQueries(p.reads.events)
	bookingQ := readmodels.NewBookingQueries(p.reads.bookings)
	paymentQ := readmodels.NewPaymentQueries(p.reads.payments, p.reads.feed)
	profileQ := readmodels.NewProfileQueries(p.reads.profiles)

	var projectors []*projections.Projector
	if p.log != nil {
		projectors = []*projections.Projector{
			projections.NewEvents(p.log, reg, p.reads.events, log),
			projections.NewBookings(p.log, reg, p.reads.bookings, log),
			projections.NewPayments(p.log, reg, p.reads.payments, p.reads.feed, log),
			projections.NewProfiles(p.log, reg, p.reads.profiles, log),
		}
		registerMetrics(metricsReg, projectors, p.log.HeadPosition)
	}
	var catchUp func(context.Context) error
	if p.catchUp != nil {
		catchUp = p.catchUp(ctx, projectors)
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	opts := httpapi.Options{
		Log:     log,
		Metrics: httpapi.NewMetrics(metricsReg),
		CatchUp: catchUp,
		OpenAPI: httpapi.OpenAPIDocument,
		// The per-address login limit and logs see the client behind
		// these proxies.
		TrustedProxies: cfg.TrustedProxies,
		Ready: []httpapi.Check{
			{Name: "eventstore", Check: func(ctx context.Context) error { _, err := store.HeadPosition(ctx); return err }},
			{Name: "readmodels", Check: p.reads.ping},
		},
	}
	tokens, err := auth.NewTokens(jwtSecret, cfg.TokenTTL)
	if err != nil {
		return err
	}
	opts.Tokens = tokens

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var wg sync.WaitGroup
	for _, pr := range projectors {
		supervise(workCtx, &wg, log, "projection "+pr.Name(), pr.Run)
	}
	relay := func(service string) error {
		if p.relay == nil {
			return nil
		}
		run, err := p.relay(service)
		if err != nil {
			return err
		}
		supervise(workCtx, &wg, log, "relay "+service, run)
		return nil
	}
	serveCommands := func(service string) {
		if p.serveCommands != nil {
			supervise(workCtx, &wg, log, service+" commands", func(ctx context.Context) error { return p.serveCommands(ctx, router, service) })
		}
	}

	var users *commands.Users
	if cfg.Runs("users") {
		users = commands.NewUsers(repo, auth.NewArgon2id())
		opts.Users = &httpapi.UserService{
			Commands: users, Profiles: profileQ, Tokens: tokens,
			EmailLimiter: auth.NewLoginLimiter(cfg.LoginsPerEmail, time.Minute, auth.DefaultMaxKeys),
			IPLimiter:    auth.NewLoginLimiter(cfg.LoginsPerIP, time.Minute, auth.DefaultMaxKeys),
		}
		if err := relay("users"); err != nil {
			return err
		}
	}
	if cfg.Runs("events") {
		desk := commands.NewEventDesk(repo, store, log)
		router.RouteEvents(desk, p.sender)
		opts.Events = &httpapi.EventService{Commands: desk, Reads: eventQ}
		serveCommands("events")
		if err := relay("events"); err != nil {
			return err
		}
	}
	if cfg.Runs("bookings") {
		bookings := commands.NewBookings(repo, cfg.HoldTTL)
		router.RouteBookings(bookings)
		serveCommands("bookings")
		opts.Bookings = &httpapi.BookingService{Commands: bookings, Reads: bookingQ, Events: eventQ}
		saga := commands.NewBookingSaga(bookings, p.sender, log)
		supervise(workCtx, &wg, log, "booking saga", func(ctx context.Context) error {
			return p.react(ctx, saga, "bookings", "events", "payments")
		})
		supervise(workCtx, &wg, log, "hold expirer", commands.NewExpirer(bookings, bookingQ, log).WithPayments(paymentQ).Run)
		if err := relay("bookings"); err != nil {
			return err
		}
	}
	if cfg.Runs("payments") {
		payments := commands.NewPayments(repo, payableBookings{q: bookingQ, catchUp: catchUp})
		router.RoutePayments(payments)
		webhookURL := cfg.WebhookURL
		if webhookURL == "" {
			webhookURL = fmt.Sprintf("http://127.0.0.1:%d/payment/status", ln.Addr().(*net.TCPAddr).Port)
		}
		gateway, err := sandbox.Open(filepath.Join(cfg.DataDir, "sandbox-gateway.jsonl"), webhookURL, webhookSecret, log)
		if err != nil {
			return err
		}
		defer gateway.Close()
		gateway.Settle, gateway.Delayed = cfg.SandboxSettle, cfg.SandboxDelayed
		opts.Payments = &httpapi.PaymentService{Commands: payments, Reads: paymentQ, WebhookSecret: webhookSecret}
		processor := commands.NewPaymentProcessor(payments, gateway)
		supervise(workCtx, &wg, log, "payment processor", func(ctx context.Context) error {
			return p.react(ctx, processor, "payments")
		})
		serveCommands("payments")
		if err := relay("payments"); err != nil {
			return err
		}
	}

	if cfg.AdminEmail != "" && users != nil {
		admin, err := users.EnsureAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword, "Administrator")
		if err != nil {
			return fmt.Errorf("bootstrap admin %s: %w", cfg.AdminEmail, err)
		}
		log.Info("bootstrap admin ready", "email", admin.Email, "id", admin.ID)
	}

	server := httpapi.New(opts)
	served := make(chan error, 1)
	go func() { served <- server.App().Listener(ln) }()
	log.Info("ticketd listening", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "services", cfg.Services, "distributed", cfg.Distributed())

	select {
	case err = <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	stopWork()
	wg.Wait()
	log.Info("stopped at a checkpoint")
	return nil
}

// eventStore is what a process needs of its event store, whichever
// adapter keeps it.
type eventStore interface {
	commands.EventStore
	commands.SnapshotStore
	projections.EventLog
	Close() error
}

// openEventStore opens KurrentDB when a connection string is configured,
// else the embedded store in the data directory.
func openEventStore(ctx context.Context, cfg *Config, log *slog.Logger) (eventStore, error) {
	if cfg.EventStoreURL != "" {
		openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := kurrentdb.Open(openCtx, cfg.EventStoreURL, kurrentdb.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("event store %s: %w", redactURL(cfg.EventStoreURL), err)
		}
		return s, nil
	}
	s, err := embedded.Open(filepath.Join(cfg.DataDir, "eventstore"), embedded.Options{Logger: log})
	if errors.Is(err, embedded.ErrDirInUse) {
		return nil, fmt.Errorf("%w (is another ticketd running on %s? stop it or choose another TICKETD_DATA_DIR)", err, cfg.DataDir)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// redactURL hides a connection string's password in messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable connection string)"
	}
	return u.Redacted()
}

// supervise runs fn until ctx is done, restarting it with backoff when it
// fails: a store or broker hiccup must not stop the saga for good.
func supervise(ctx context.Context, wg *sync.WaitGroup, log *slog.Logger, name string, fn func(context.Context) error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		const first = 100 * time.Millisecond
		backoff := first
		for {
			started := time.Now()
			err := fn(ctx)
			if ctx.Err() != nil {
				return
			}
			if time.Since(started) > time.Minute {
				backoff = first // it ran well; this is a new failure, not a loop
			}
			log.Error("restarting after failure", "component", name, "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 10*time.Second)
		}
	}()
}

func secrets(cfg *Config) (jwt, webhook []byte, err error) {
	if cfg.JWTSecret != "" {
		jwt = []byte(cfg.JWTSecret)
	} else if jwt, err = auth.LoadOrCreateSecret(filepath.Join(cfg.DataDir, "jwt.key"), 32); err != nil {
		return nil, nil, err
	}
	if cfg.WebhookSecret != "" {
		webhook = []byte(cfg.WebhookSecret)
	} else if webhook, err = auth.LoadOrCreateSecret(filepath.Join(cfg.DataDir, "webhook.key"), 32); err != nil {
		return nil, nil, err
	}
	return jwt, webhook, nil
}

// payableBookings is the payments service's view of bookings: the booking
// read model. A booking that looks pending may only be lagging behind its
// hold, so the lookup waits for the read models before saying it cannot be
// paid (by catching up when the projectors are local, by polling when
// they are in another process).
type payableBookings struct {
	q       *readmodels.BookingQueries
	catchUp func(context.Context) error
}

func (p payableBookings) PayableBooking(ctx context.Context, id uuid.UUID) (commands.PayableBooking, bool, error) {
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for {
		v, err := p.q.Booking(ctx, id)
		lagging := errors.Is(err, fault.ErrNotFound) || (err == nil && v.Status == booking.StatusPending)
		if lagging && waitCtx.Err() == nil {
			if p.catchUp != nil {
				_ = p.catchUp(waitCtx)
				v, err = p.q.Booking(ctx, id)
			} else {
				select {
				case <-waitCtx.Done():
				case <-time.After(25 * time.Millisecond):
				}
				continue
			}
		}
		if errors.Is(err, fault.ErrNotFound) {
			return commands.PayableBooking{}, false, nil
		}
		if err != nil {
			return commands.PayableBooking{}, false, err
		}
		return commands.PayableBooking{UserID: v.UserID, Status: v.Status, Amount: v.Amount, Currency: v.Currency, ExpiresAt: v.ExpiresAt}, true, nil
	}
}
