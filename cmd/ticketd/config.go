package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ticketd/ticketing/infra/httpapi"
)

// Config is everything ticketd is told, read once at start-up from flags
// and TICKETD_* environment variables (a flag wins over its variable) and
// handed down; nothing below cmd reads the environment.
type Config struct {
	HTTPAddr       string
	DataDir        string
	Services       []string
	EventStoreURL  string
	KafkaBrokers   string
	RedisURL       string
	HoldTTL        time.Duration
	JWTSecret      string
	TokenTTL       time.Duration
	WebhookSecret  string
	WebhookURL     string
	AdminEmail     string
	AdminPassword  string
	LogLevel       string
	ShutdownGrace  time.Duration
	SandboxSettle  time.Duration
	SandboxDelayed time.Duration
	// LoginsPerIP and LoginsPerEmail bound login attempts per minute.
	LoginsPerIP    int
	LoginsPerEmail int
	// PprofAddr, when set, serves net/http/pprof there (profiling a flash
	// sale on the real server); keep it on a loopback address.
	PprofAddr string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (the per-address login limit needs the real address).
	TrustedProxies []netip.Prefix
	// Distributed mode.
	KafkaTopicPrefix string
	KafkaPartitions  int
	// InstanceID identifies this process to Kafka across its restarts.
	InstanceID  string
	RedisPrefix string
}

// Distributed reports whether this process is one of several that share
// Kafka and Redis, rather than the whole system on embedded adapters.
func (c *Config) Distributed() bool { return c.KafkaBrokers != "" }

// serviceList names the services this process runs, as one word.
func (c *Config) serviceList() string { return strings.Join(c.Services, "+") }

// AllServices are the services one process can run.
var AllServices = []string{"users", "events", "bookings", "payments", "projector"}

// Runs reports whether this process runs service name.
func (c *Config) Runs(name string) bool { return slices.Contains(c.Services, name) }

func loadConfig(args []string, getenv func(string) string) (*Config, error) {
	fs := flag.NewFlagSet("ticketd", flag.ContinueOnError)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var c Config
	var services, holdTTL, tokenTTL, grace, settle, delayed, proxies string
	fs.StringVar(&c.HTTPAddr, "http-addr", env("TICKETD_HTTP_ADDR", ":8080"), "listen address (TICKETD_HTTP_ADDR)")
	fs.StringVar(&c.DataDir, "data-dir", env("TICKETD_DATA_DIR", "./data"), "embedded store and read model files (TICKETD_DATA_DIR)")
	fs.StringVar(&services, "services", env("TICKETD_SERVICES", "all"), "comma list of users,events,bookings,payments,projector, or all (TICKETD_SERVICES)")
	fs.StringVar(&c.EventStoreURL, "eventstore-url", env("TICKETD_EVENTSTORE_URL", ""), "KurrentDB connection string; empty = embedded (TICKETD_EVENTSTORE_URL)")
	fs.StringVar(&c.KafkaBrokers, "kafka-brokers", env("TICKETD_KAFKA_BROKERS", ""), "Kafka bootstrap servers; empty = in-process bus (TICKETD_KAFKA_BROKERS)")
	fs.StringVar(&c.RedisURL, "redis-url", env("TICKETD_REDIS_URL", ""), "redis:// URL; empty = embedded read models (TICKETD_REDIS_URL)")
	fs.StringVar(&holdTTL, "hold-ttl", env("TICKETD_HOLD_TTL", "10m"), "how long seats are held awaiting payment (TICKETD_HOLD_TTL)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", env("TICKETD_JWT_SECRET", ""), "token signing secret; empty = generated and kept in the data dir (TICKETD_JWT_SECRET)")
	fs.StringVar(&tokenTTL, "token-ttl", env("TICKETD_TOKEN_TTL", "1h"), "access token lifetime (TICKETD_TOKEN_TTL)")
	fs.StringVar(&c.WebhookSecret, "payment-webhook-secret", env("TICKETD_PAYMENT_WEBHOOK_SECRET", ""), "webhook HMAC key; empty = generated and kept in the data dir (TICKETD_PAYMENT_WEBHOOK_SECRET)")
	fs.StringVar(&c.WebhookURL, "payment-webhook-url", env("TICKETD_PAYMENT_WEBHOOK_URL", ""), "where the sandbox gateway posts notifications; empty = this process's /payment/status (TICKETD_PAYMENT_WEBHOOK_URL)")
	fs.StringVar(&c.AdminEmail, "admin-email", env("TICKETD_ADMIN_EMAIL", ""), "bootstrap admin email (TICKETD_ADMIN_EMAIL)")
	fs.StringVar(&c.AdminPassword, "admin-password", env("TICKETD_ADMIN_PASSWORD", ""), "bootstrap admin password (TICKETD_ADMIN_PASSWORD)")
	fs.StringVar(&c.LogLevel, "log-level", env("TICKETD_LOG_LEVEL", "info"), "debug, info, warn or error (TICKETD_LOG_LEVEL)")
	fs.StringVar(&grace, "shutdown-grace", env("TICKETD_SHUTDOWN_GRACE", "10s"), "how long requests in flight may finish at shutdown (TICKETD_SHUTDOWN_GRACE)")
	fs.StringVar(&settle, "sandbox-settle", env("TICKETD_SANDBOX_SETTLE", "200ms"), "how long the sandbox gateway takes to settle tok_success (TICKETD_SANDBOX_SETTLE)")
	fs.StringVar(&delayed, "sandbox-delayed", env("TICKETD_SANDBOX_DELAYED", "3s"), "how long the sandbox gateway takes to settle tok_delayed (TICKETD_SANDBOX_DELAYED)")
	fs.IntVar(&c.LoginsPerIP, "login-limit-per-ip", envInt(getenv, "TICKETD_LOGIN_LIMIT_PER_IP", 30), "login attempts per minute from one client address (TICKETD_LOGIN_LIMIT_PER_IP)")
	fs.IntVar(&c.LoginsPerEmail, "login-limit-per-email", envInt(getenv, "TICKETD_LOGIN_LIMIT_PER_EMAIL", 10), "failed login attempts per minute for one account (TICKETD_LOGIN_LIMIT_PER_EMAIL)")
	fs.StringVar(&proxies, "trusted-proxies", env("TICKETD_TRUSTED_PROXIES", ""), "comma list of reverse proxy addresses or CIDR prefixes whose X-Forwarded-For is believed; empty = none (TICKETD_TRUSTED_PROXIES)")
	fs.StringVar(&c.PprofAddr, "pprof-addr", env("TICKETD_PPROF_ADDR", ""), "serve net/http/pprof on this address, e.g. 127.0.0.1:6060; empty = off (TICKETD_PPROF_ADDR)")
	fs.StringVar(&c.KafkaTopicPrefix, "kafka-topic-prefix", env("TICKETD_KAFKA_TOPIC_PREFIX", "ticketing"), "prefix of every Kafka topic (TICKETD_KAFKA_TOPIC_PREFIX)")
	fs.IntVar(&c.KafkaPartitions, "kafka-partitions", envInt(getenv, "TICKETD_KAFKA_PARTITIONS", 6), "partitions of the service and command topics created at start-up (TICKETD_KAFKA_PARTITIONS)")
	fs.StringVar(&c.InstanceID, "instance-id", env("TICKETD_INSTANCE_ID", ""), "stable id making this process a static member of its Kafka consumer groups; empty = dynamic membership (TICKETD_INSTANCE_ID)")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", env("TICKETD_REDIS_PREFIX", "ticketd"), "prefix of every Redis key (TICKETD_REDIS_PREFIX)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var errs []error
	dur := func(name, s string, dst *time.Duration) {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive duration such as 10m", name, s))
		}
		*dst = d
	}
	dur("hold-ttl", holdTTL, &c.HoldTTL)
	dur("token-ttl", tokenTTL, &c.TokenTTL)
	dur("shutdown-grace", grace, &c.ShutdownGrace)
	dur("sandbox-settle", settle, &c.SandboxSettle)
	dur("sandbox-delayed", delayed, &c.SandboxDelayed)
	if p, err := httpapi.ParseTrustedProxies(proxies); err != nil {
		errs = append(errs, fmt.Errorf("trusted-proxies: %w", err))
	} else {
		c.TrustedProxies = p
	}
	if c.LoginsPerIP < 1 || c.LoginsPerEmail < 1 {
		errs = append(errs, errors.New("login limits must be at least 1 per minute"))
	}
	for _, s := range strings.Split(services, ",") {
		s = strings.TrimSpace(strings.ToLower(s))
		switch {
		case s == "all":
			c.Services = append(c.Services, AllServices...)
		case slices.Contains(AllServices, s):
			c.Services = append(c.Services, s)
		case s != "":
			errs = append(errs, fmt.Errorf("services: unknown service %q (want %s or all)", s, strings.Join(AllServices, ",")))
		}
	}
	slices.Sort(c.Services)
	c.Services = slices.Compact(c.Services)
	if len(c.Services) == 0 {
		errs = append(errs, errors.New("services: none given"))
	}
	if (c.AdminEmail == "") != (c.AdminPassword == "") {
		errs = append(errs, errors.New("admin: set both TICKETD_ADMIN_EMAIL and TICKETD_ADMIN_PASSWORD, or neither"))
	}
	if c.EventStoreURL != "" && !strings.HasPrefix(c.EventStoreURL, "esdb://") && !strings.HasPrefix(c.EventStoreURL, "kurrentdb://") &&
		!strings.HasPrefix(c.EventStoreURL, "esdb+discover://") && !strings.HasPrefix(c.EventStoreURL, "kurrentdb+discover://") {
		errs = append(errs, errors.New("eventstore-url: want a kurrentdb:// or esdb:// connection string"))
	}
	if (c.KafkaBrokers == "") != (c.RedisURL == "") {
		errs = append(errs, errors.New("distributed mode needs both TICKETD_KAFKA_BROKERS and TICKETD_REDIS_URL (or neither, for the embedded mode)"))
	}
	if len(c.Services) != len(AllServices) && c.KafkaBrokers == "" {
		errs = append(errs, errors.New("services: running only some services needs the distributed mode (TICKETD_KAFKA_BROKERS and TICKETD_REDIS_URL)"))
	}
	if c.KafkaPartitions < 1 {
		errs = append(errs, errors.New("kafka-partitions must be at least 1"))
	}
	return &c, errors.Join(errs...)
}

func envInt(getenv func(string) string, name string, def int) int {
	if v := getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		return -1 // reported as invalid by the range check
	}
	return def
}
