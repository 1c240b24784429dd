package testenv

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// fakeTB records Skipf/Fatalf instead of ending the goroutine, so the
// skip-or-fail policy can be tested without real servers.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, fmt.Sprintf(format, args...)
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
}

// listener returns the address of a TCP listener that lives for the test.
func listener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// closedAddr returns a loopback address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestUnavailableSkipsLocallyAndFailsInCI(t *testing.T) {
	down := closedAddr(t)
	redis := func(s Servers) func(testing.TB) string { return s.Redis }
	kafka := func(s Servers) func(testing.TB) string { return s.Kafka }
	postgres := func(s Servers) func(testing.TB) string { return s.Postgres }
	cases := []struct {
		name    string
		servers Servers
		want    string
		get     func(Servers) func(testing.TB) string
	}{
		{"redis unset", Servers{}, "integration test requires Redis; run scripts/testenv.sh start", redis},
		{"redis down", Servers{RedisURL: "redis://" + down + "/0"}, "does not answer", redis},
		{"redis bad scheme", Servers{RedisURL: "http://" + down}, "scheme must be redis", redis},
		{"kafka unset", Servers{}, "integration test requires Kafka; run scripts/testenv.sh start", kafka},
		{"kafka down", Servers{KafkaBrokers: down}, "no broker in", kafka},
		{"kafka no port", Servers{KafkaBrokers: "127.0.0.1"}, "missing port", kafka},
		{"postgres unset", Servers{}, "integration test requires PostgreSQL; run scripts/benchenv.sh start", postgres},
		{"postgres down", Servers{PostgresURL: "postgres://postgres@" + down + "/ticketd_bench"}, "does not answer", postgres},
		{"postgres bad scheme", Servers{PostgresURL: "mysql://" + down}, "scheme must be postgres", postgres},
	}
	for _, tc := range cases {
		for _, ci := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/CI=%v", tc.name, ci), func(t *testing.T) {
				servers := tc.servers
				servers.CI = ci
				f := &fakeTB{TB: t}
				if got := tc.get(servers)(f); got != "" {
					t.Fatalf("got %q, want empty", got)
				}
				if !ci && (!f.skipped || f.failed) {
					t.Fatalf("want skip without CI, got skipped=%v failed=%v", f.skipped, f.failed)
				}
				if ci && (!f.failed || f.skipped) {
					t.Fatalf("want failure in CI, got skipped=%v failed=%v", f.skipped, f.failed)
				}
				if !strings.Contains(f.msg, tc.want) {
					t.Fatalf("message %q does not contain %q", f.msg, tc.want)
				}
			})
		}
	}
}

func TestReachableServersReturnTheConfiguredValue(t *testing.T) {
	up := listener(t)

	redisURL := "redis://" + up + "/0"
	f := &fakeTB{TB: t}
	if got := (Servers{RedisURL: redisURL, CI: true}).Redis(f); got != redisURL || f.failed || f.skipped {
		t.Fatalf("RedisURL = %q (failed=%v skipped=%v %s)", got, f.failed, f.skipped, f.msg)
	}

	// One reachable broker is enough to bootstrap.
	brokers := closedAddr(t) + ", " + up
	f = &fakeTB{TB: t}
	if got := (Servers{KafkaBrokers: brokers, CI: true}).Kafka(f); got != brokers || f.failed || f.skipped {
		t.Fatalf("KafkaBrokers = %q (failed=%v skipped=%v %s)", got, f.failed, f.skipped, f.msg)
	}
}

func TestReachablePostgresReturnsTheConfiguredValue(t *testing.T) {
	pgURL := "postgresql://postgres@" + listener(t) + "/ticketd_bench?sslmode=disable"
	f := &fakeTB{TB: t}
	if got := (Servers{PostgresURL: pgURL, CI: true}).Postgres(f); got != pgURL || f.failed || f.skipped {
		t.Fatalf("PostgresURL = %q (failed=%v skipped=%v %s)", got, f.failed, f.skipped, f.msg)
	}
	if got, err := postgresAddr("postgres://u@db.internal/x"); err != nil || got != "db.internal:5432" {
		t.Fatalf("postgresAddr = %q, %v; want the default port", got, err)
	}
}

func TestRedisAddrDefaultsPort(t *testing.T) {
	got, err := redisAddr("redis://localhost/0")
	if err != nil || got != "localhost:6379" {
		t.Fatalf("redisAddr = %q, %v", got, err)
	}
}
