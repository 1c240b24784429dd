package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/infra/bus/inproc"
	"github.com/ticketd/ticketing/infra/checkpoint"
	"github.com/ticketd/ticketing/infra/kafka"
	readembedded "github.com/ticketd/ticketing/infra/readstore/embedded"
	readredis "github.com/ticketd/ticketing/infra/readstore/redis"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

// readSide is the read models a process uses, whichever adapter keeps
// them: each view is both what the queries read and what its projector
// commits to.
type readSide struct {
	events interface {
		readmodels.EventReader
		projections.EventsStore
	}
	bookings interface {
		readmodels.BookingReader
		projections.BookingsStore
	}
	payments interface {
		readmodels.PaymentReader
		projections.PaymentsStore
	}
	profiles interface {
		readmodels.ProfileReader
		projections.ProfilesStore
	}
	feed interface {
		readmodels.PaymentSubscriber
		projections.PaymentPublisher
	}
	ping  func(context.Context) error
	close func() error
}

// platform is what differs between the embedded mode and the distributed
// one: how records reach the process managers and the projectors, how
// commands reach other services, and where the read models live.
type platform struct {
	reads readSide
	// log feeds the projectors; nil when this process runs none.
	log projections.EventLog
	// sender carries commands to the service that handles them.
	sender commands.Sender
	// react runs a process manager over the records of the given services.
	react func(ctx context.Context, r inproc.Reactor, services ...string) error
	// serveCommands consumes the command topic of a service this process
	// runs; nil in-process, where the router is called directly.
	serveCommands func(ctx context.Context, router *commands.Router, service string) error
	// relay publishes this process's own records to the bus; nil
	// in-process.
	relay func(service string) (func(context.Context) error, error)
	// catchUp gives read-your-writes when the projectors are local.
	catchUp func(context.Context, []*projections.Projector) func(context.Context) error
	close   []func()
}

// embeddedPlatform runs everything in this process: the in-process bus fed
// by the store's subscription, embedded read models.
func embeddedPlatform(cfg *Config, log *slog.Logger, store eventStore, reg *es.Registry, router *commands.Router, obs inproc.Observer) (*platform, error) {
	reads, err := readembedded.Open(filepath.Join(cfg.DataDir, "readmodels"), readembedded.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	checkpoints, err := checkpoint.Open(filepath.Join(cfg.DataDir, "checkpoints"))
	if err != nil {
		reads.Close()
		return nil, err
	}
	runner := inproc.NewRunner(store, reg, checkpoints, store, log, obs)
	return &platform{
		reads: readSide{
			events: reads.Events(), bookings: reads.Bookings(), payments: reads.Payments(), profiles: reads.Profiles(),
			feed:  readembedded.NewPaymentFeed(),
			ping:  func(ctx context.Context) error { _, err := reads.Events().Checkpoint(ctx); return err },
			close: reads.Close,
		},
		log:    store,
		sender: router,
		react: func(ctx context.Context, r inproc.Reactor, _ ...string) error {
			return runner.Run(ctx, r)
		},
		catchUp: func(_ context.Context, ps []*projections.Projector) func(context.Context) error {
			return func(ctx context.Context) error {
				head, err := store.HeadPosition(ctx)
				if err != nil {
					return err
				}
				for _, p := range ps {
					if err := p.WaitFor(ctx, head); err != nil {
						return err
					}
				}
				return nil
			}
		},
	}, nil
}

// distributedPlatform connects this process to the others through Kafka
// and Redis: its own records are relayed to Kafka, the process managers and
// command handlers consume Kafka, the read models live in Redis and are fed
// by the projector process from the Kafka log.
func distributedPlatform(ctx context.Context, cfg *Config, log *slog.Logger, store eventStore, reg *es.Registry, obs inproc.Observer) (*platform, error) {
	kcfg := kafka.Config{
		Brokers: cfg.KafkaBrokers, TopicPrefix: cfg.KafkaTopicPrefix, Partitions: cfg.KafkaPartitions,
		ClientID: "ticketd-" + cfg.serviceList(), InstanceID: cfg.InstanceID,
	}
	if err := kafka.EnsureTopics(ctx, kcfg, log, kafka.Services()...); err != nil {
		return nil, fmt.Errorf("kafka topics: %w", err)
	}
	reads, err := readredis.Open(ctx, cfg.RedisURL, readredis.Options{Prefix: cfg.RedisPrefix, Logger: log})
	if err != nil {
		return nil, err
	}
	p := &platform{
		reads: readSide{
			events: reads.Events(), bookings: reads.Bookings(), payments: reads.Payments(), profiles: reads.Profiles(),
			feed: reads.Feed(), ping: reads.Ping, close: reads.Close,
		},
	}
	if cfg.Runs("projector") {
		lr := kafka.NewLogReader(kcfg, log)
		p.log = lr
		p.close = append(p.close, func() { lr.Close() })
	}
	sender, err := kafka.NewSender(kcfg, cfg.serviceList(), log)
	if err != nil {
		reads.Close()
		return nil, err
	}
	p.sender = sender
	p.close = append(p.close, sender.Close)
	runner := kafka.NewRunner(kcfg, reg, log, obs)
	p.react = runner.Run
	p.serveCommands = runner.RunCommands
	p.relay = func(service string) (func(context.Context) error, error) {
		r, err := kafka.NewRelay(kcfg, service, store, log)
		if err != nil {
			return nil, err
		}
		return r.Run, nil
	}
	return p, nil
}

// registerMetrics is shared by both platforms.
func registerMetrics(reg *prometheus.Registry, ps []*projections.Projector, head func(context.Context) (uint64, error)) {
	for _, p := range ps {
		registerLag(reg, p, head)
	}
}
