package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
	"github.com/ticketd/ticketing/infra/bus/inproc"
	"github.com/ticketd/ticketing/infra/checkpoint"
	"github.com/ticketd/ticketing/infra/eventstore/embedded"
	"github.com/ticketd/ticketing/infra/httpapi"
	"github.com/ticketd/ticketing/infra/payment/sandbox"
	readstore "github.com/ticketd/ticketing/infra/readstore/embedded"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

// run starts every configured service and serves until ctx is done, then
// shuts down in order: stop taking requests and let those in flight
// finish, stop the subscribers at a checkpoint, close the stores.
func run(ctx context.Context, cfg *Config, log *slog.Logger) error {
	store, err := embedded.Open(filepath.Join(cfg.DataDir, "eventstore"), embedded.Options{Logger: log})
	if err != nil {
		if errors.Is(err, embedded.ErrDirInUse) {
			return fmt.Errorf("%w (is another ticketd running on %s? stop it or choose another TICKETD_DATA_DIR)", err, cfg.DataDir)
		}
		return err
	}
	defer store.Close()
	reads, err := readstore.Open(filepath.Join(cfg.DataDir, "readmodels"), readstore.Options{Logger: log})
	if err != nil {
		return err
	}
	defer reads.Close()
	checkpoints, err := checkpoint.Open(filepath.Join(cfg.DataDir, "checkpoints"))
	if err != nil {
		return err
	}
	jwtSecret, webhookSecret, err := secrets(cfg)
	if err != nil {
		return err
	}
	metricsReg := prometheus.NewRegistry()
	metricsReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	reg := commands.NewRegistry()
	repo := commands.NewRepository(store, reg, time.Now)
	feed := readstore.NewPaymentFeed()

	projectors := []*projections.Projector{
		projections.NewEvents(store, reg, reads.Events(), log),
		projections.NewBookings(store, reg, reads.Bookings(), log),
		projections.NewPayments(store, reg, reads.Payments(), feed, log),
		projections.NewProfiles(store, reg, reads.Profiles(), log),
	}
	catchUp := func(ctx context.Context) error {
		head, err := store.HeadPosition(ctx)
		if err != nil {
			return err
		}
		for _, p := range projectors {
			if err := p.WaitFor(ctx, head); err != nil {
				return err
			}
		}
		return nil
	}
	eventQ := readmodels.NewEventQueries(reads.Events())
	bookingQ := readmodels.NewBookingQueries(reads.Bookings())
	paymentQ := readmodels.NewPaymentQueries(reads.Payments(), feed)
	profileQ := readmodels.NewProfileQueries(reads.Profiles())

	hasher := auth.NewArgon2id()
	tokens, err := auth.NewTokens(jwtSecret, cfg.TokenTTL)
	if err != nil {
		return err
	}
	users := commands.NewUsers(repo, hasher)
	desk := commands.NewEventDesk(repo, store, log)
	bookings := commands.NewBookings(repo, cfg.HoldTTL)
	payments := commands.NewPayments(repo, payableBookings{q: bookingQ, catchUp: catchUp})
	router := commands.NewRouter()
	router.RouteEvents(desk)
	router.RoutePayments(payments)

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	webhookURL := cfg.WebhookURL
	if webhookURL == "" {
		webhookURL = fmt.Sprintf("http://127.0.0.1:%d/payment/status", ln.Addr().(*net.TCPAddr).Port)
	}
	gateway, err := sandbox.Open(filepath.Join(cfg.DataDir, "sandbox-gateway.jsonl"), webhookURL, webhookSecret, log)
	if err != nil {
		return err
	}
	gateway.Settle, gateway.Delayed = cfg.SandboxSettle, cfg.SandboxDelayed
	defer gateway.Close()

	obs := newBusMetrics(metricsReg)
	for _, p := range projectors {
		registerLag(metricsReg, p, store)
	}
	runner := inproc.NewRunner(store, reg, checkpoints, store, log, obs)

	server := httpapi.New(httpapi.Options{
		Log:    log,
		Tokens: tokens,
		Users: &httpapi.UserService{Commands: users, Profiles: profileQ, Tokens: tokens,
			EmailLimiter: auth.NewLoginLimiter(cfg.LoginsPerEmail, time.Minute, auth.DefaultMaxKeys),
			IPLimiter:    auth.NewLoginLimiter(cfg.LoginsPerIP, time.Minute, auth.DefaultMaxKeys)},
		Events:   &httpapi.EventService{Commands: desk, Reads: eventQ},
		Bookings: &httpapi.BookingService{Commands: bookings, Reads: bookingQ, Events: eventQ},
		Payments: &httpapi.PaymentService{Commands: payments, Reads: paymentQ, WebhookSecret: webhookSecret},
		Ready: []httpapi.Check{
			{Name: "eventstore", Check: func(ctx context.Context) error { _, err := store.HeadPosition(ctx); return err }},
			{Name: "readmodels", Check: func(ctx context.Context) error {
				_, err := eventQ.ListEvents(ctx, readmodels.EventListRequest{})
				return err
			}},
		},
		Metrics: httpapi.NewMetrics(metricsReg),
		CatchUp: catchUp,
		OpenAPI: httpapi.OpenAPIDocument,
	})

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var wg sync.WaitGroup
	for _, p := range projectors {
		supervise(workCtx, &wg, log, "projection "+p.Name(), p.Run)
	}
	supervise(workCtx, &wg, log, "booking saga", func(ctx context.Context) error {
		return runner.Run(ctx, commands.NewBookingSaga(bookings, router, log))
	})
	supervise(workCtx, &wg, log, "payment processor", func(ctx context.Context) error {
		return runner.Run(ctx, commands.NewPaymentProcessor(payments, gateway))
	})
	supervise(workCtx, &wg, log, "hold expirer", commands.NewExpirer(bookings, bookingQ, log).Run)

	if cfg.AdminEmail != "" {
		admin, err := users.EnsureAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword, "Administrator")
		if err != nil {
			return fmt.Errorf("bootstrap admin %s: %w", cfg.AdminEmail, err)
		}
		log.Info("bootstrap admin ready", "email", admin.Email, "id", admin.ID)
	}

	served := make(chan error, 1)
	go func() { served <- server.App().Listener(ln) }()
	log.Info("ticketd listening", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "services", cfg.Services)

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

// supervise runs fn until ctx is done, restarting it with backoff when it
// fails: a store hiccup must not stop the saga for good.
func supervise(ctx context.Context, wg *sync.WaitGroup, log *slog.Logger, name string, fn func(context.Context) error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		backoff := 100 * time.Millisecond
		for {
			err := fn(ctx)
			if ctx.Err() != nil {
				return
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
// hold, so the lookup waits for the read models to catch up before saying
// it cannot be paid.
type payableBookings struct {
	q       *readmodels.BookingQueries
	catchUp func(context.Context) error
}

func (p payableBookings) PayableBooking(ctx context.Context, id uuid.UUID) (commands.PayableBooking, bool, error) {
	v, err := p.q.Booking(ctx, id)
	if errors.Is(err, fault.ErrNotFound) || (err == nil && v.Status == booking.StatusPending) {
		waitCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_ = p.catchUp(waitCtx)
		cancel()
		v, err = p.q.Booking(ctx, id)
	}
	if errors.Is(err, fault.ErrNotFound) {
		return commands.PayableBooking{}, false, nil
	}
	if err != nil {
		return commands.PayableBooking{}, false, err
	}
	return commands.PayableBooking{UserID: v.UserID, Status: v.Status, Amount: v.Amount, Currency: v.Currency, ExpiresAt: v.ExpiresAt}, true, nil
}
