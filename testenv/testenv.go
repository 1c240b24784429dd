// Package testenv connects integration tests to the real Redis and Kafka
// servers that scripts/testenv.sh starts on 127.0.0.1, and to the
// PostgreSQL of the benchmark baseline that scripts/benchenv.sh starts.
//
// Typical use:
//
//	scripts/testenv.sh start
//	eval "$(scripts/testenv.sh env)"
//	go test ./...
//
// A test package fills one Servers value from the variables named by
// RedisURLEnv, KafkaBrokersEnv and CIEnv, once, in a _test.go file (see
// servers_env_test.go in any package that uses it), and asks it:
//
//	func TestOutboxRelay(t *testing.T) {
//		brokers := testServers.Kafka(t)
//		...
//	}
//
// When a server is not configured or does not answer, the test is skipped
// on a developer machine and fails when the CI environment variable is set,
// so a CI run can never pass by silently skipping its integration tests.
//
// The package reads no environment itself and depends on the standard
// library only.
package testenv

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Environment variables read by this package; scripts/testenv.sh env
// prints them.
const (
	RedisURLEnv     = "TICKETD_TEST_REDIS_URL"     // e.g. redis://127.0.0.1:16379/0
	KafkaBrokersEnv = "TICKETD_TEST_KAFKA_BROKERS" // e.g. 127.0.0.1:19092 (comma-separated list)
	// PostgresURLEnv names the PostgreSQL of the benchmark baseline (an
	// event table to measure the embedded store against), which
	// scripts/benchenv.sh starts and its env prints.
	PostgresURLEnv = "TICKETD_BENCH_POSTGRES_URL" // e.g. postgres://postgres@127.0.0.1:15432/ticketd_bench
	CIEnv          = "CI"
)

// DialTimeout bounds the reachability check of each server address.
const DialTimeout = 2 * time.Second

const startHint = "run scripts/testenv.sh start, then eval \"$(scripts/testenv.sh env)\""

// Servers says which real servers the integration tests use and whether
// this is CI. Each test package reads it once from its environment (in a
// _test.go file, with the variable names above) and passes it down; this
// package only checks what it is given.
type Servers struct {
	RedisURL     string // TICKETD_TEST_REDIS_URL
	KafkaBrokers string // TICKETD_TEST_KAFKA_BROKERS
	PostgresURL  string // TICKETD_BENCH_POSTGRES_URL
	CI           bool   // CI set: a missing server fails the test
}

// Redis returns the Redis URL after checking that the server accepts
// TCP connections. It skips the test (fails it in CI) if the URL is unset,
// malformed or the server is down.
func (s Servers) Redis(t testing.TB) string {
	t.Helper()
	unavailable := s.unavailable
	raw := strings.TrimSpace(s.RedisURL)
	if raw == "" {
		unavailable(t, "integration test requires Redis; %s (%s is not set)", startHint, RedisURLEnv)
		return ""
	}
	addr, err := redisAddr(raw)
	if err != nil {
		unavailable(t, "integration test requires Redis; %s=%q is not usable: %v", RedisURLEnv, raw, err)
		return ""
	}
	if err := dial(addr); err != nil {
		unavailable(t, "integration test requires Redis, but %s (from %s) does not answer: %v; %s",
			addr, RedisURLEnv, err, startHint)
		return ""
	}
	return raw
}

// Kafka returns the comma-separated bootstrap broker list from
// TICKETD_TEST_KAFKA_BROKERS after checking that at least one of the
// brokers accepts TCP connections (a client needs only one to bootstrap).
// It skips the test (fails it when CI is set) otherwise.
func (s Servers) Kafka(t testing.TB) string {
	t.Helper()
	unavailable := s.unavailable
	raw := strings.TrimSpace(s.KafkaBrokers)
	if raw == "" {
		unavailable(t, "integration test requires Kafka; %s (%s is not set)", startHint, KafkaBrokersEnv)
		return ""
	}
	addrs, err := brokerAddrs(raw)
	if err != nil {
		unavailable(t, "integration test requires Kafka; %s=%q is not usable: %v", KafkaBrokersEnv, raw, err)
		return ""
	}
	var errs []string
	for _, a := range addrs {
		err := dial(a)
		if err == nil {
			return raw
		}
		errs = append(errs, err.Error())
	}
	unavailable(t, "integration test requires Kafka, but no broker in %s=%q answers (%s); %s",
		KafkaBrokersEnv, raw, strings.Join(errs, "; "), startHint)
	return ""
}

// Postgres returns the PostgreSQL URL of the benchmark baseline after
// checking that the server accepts TCP connections. It skips the test
// (fails it when CI is set) otherwise.
func (s Servers) Postgres(t testing.TB) string {
	t.Helper()
	const hint = "run scripts/benchenv.sh start, then eval \"$(scripts/benchenv.sh env)\""
	raw := strings.TrimSpace(s.PostgresURL)
	if raw == "" {
		s.unavailable(t, "integration test requires PostgreSQL; %s (%s is not set)", hint, PostgresURLEnv)
		return ""
	}
	addr, err := postgresAddr(raw)
	if err != nil {
		s.unavailable(t, "integration test requires PostgreSQL; %s=%q is not usable: %v", PostgresURLEnv, raw, err)
		return ""
	}
	if err := dial(addr); err != nil {
		s.unavailable(t, "integration test requires PostgreSQL, but %s (from %s) does not answer: %v; %s",
			addr, PostgresURLEnv, err, hint)
		return ""
	}
	return raw
}

// unavailable fails the test in CI and skips it elsewhere. Both end the
// test's goroutine; the callers' `return ""` only matters for fakes.
func (s Servers) unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if s.CI {
		t.Fatalf(format, args...)
		return
	}
	t.Skipf(format, args...)
}

// redisAddr extracts host:port from a redis:// or rediss:// URL.
func redisAddr(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return "", fmt.Errorf("scheme must be redis:// or rediss://, got %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("no host in URL")
	}
	port := u.Port()
	if port == "" {
		port = "6379"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// postgresAddr extracts host:port from a postgres:// or postgresql:// URL.
func postgresAddr(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("scheme must be postgres:// or postgresql://, got %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("no host in URL")
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// brokerAddrs splits "h1:p1,h2:p2" and checks each entry is host:port.
func brokerAddrs(raw string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(part); err != nil {
			return nil, fmt.Errorf("broker %q: %v", part, err)
		}
		out = append(out, part)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no broker address")
	}
	return out, nil
}

func dial(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, DialTimeout)
	if err != nil {
		return err
	}
	return conn.Close()
}
