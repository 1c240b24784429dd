package main

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchWorld is the history the rebuild benchmarks replay; set
// TICKETCTL_BENCH_BOOKINGS for a longer or shorter one. Writing it takes
// a while and is not timed.
func benchWorld() worldSize {
	n := 20_000
	if v, err := strconv.Atoi(os.Getenv("TICKETCTL_BENCH_BOOKINGS")); err == nil && v > 0 {
		n = v
	}
	return worldSize{users: 500, events: 50, bookings: n, workers: 64}
}

// benchRebuild runs `projections rebuild` b.N times with env and reports
// the median rate, in log records per second, over the whole command
// (opening the stores included).
func benchRebuild(b *testing.B, env map[string]string, head uint64) {
	b.Helper()
	args := []string{"projections", "rebuild"}
	if v := os.Getenv("TICKETCTL_BENCH_BATCH"); v != "" {
		args = append(args, "--batch", v)
	}
	var rates, reported []float64
	for b.Loop() {
		start := time.Now()
		r := ctl(b, env, args...)
		took := time.Since(start)
		if r.code != 0 {
			b.Fatalf("rebuild: %s", r)
		}
		rates = append(rates, float64(head)/took.Seconds())
		// What ticketctl reports: from the log head to the last switch,
		// without opening and closing the stores.
		if m := reportedRate.FindStringSubmatch(r.stdout); m != nil {
			n, _ := strconv.ParseFloat(strings.ReplaceAll(m[1], ",", ""), 64)
			reported = append(reported, n)
		}
	}
	b.Logf("%d events; whole command: %.0f events/s; rebuild as reported: %.0f events/s", head, rates, reported)
	slices.Sort(rates)
	slices.Sort(reported)
	b.ReportMetric(rates[len(rates)/2], "events/s")
	if len(reported) > 0 {
		b.ReportMetric(reported[len(reported)/2], "reported-events/s")
	}
}

var reportedRate = regexp.MustCompile(`: ([0-9,]+) events/s\.`)

// BenchmarkRebuildEmbedded rebuilds every read model of a data directory
// from its event store. Run with -benchtime=3x for a median of three.
func BenchmarkRebuildEmbedded(b *testing.B) {
	dir := b.TempDir()
	store := openTestEventStore(b, dir)
	start := time.Now()
	writeHistory(b, store, benchWorld())
	head, _ := store.HeadPosition(context.Background())
	store.Close()
	b.Logf("history of %d records written in %v", head, time.Since(start))
	benchRebuild(b, map[string]string{"TICKETD_DATA_DIR": dir}, head)
}

// BenchmarkRebuildRedis rebuilds every read model in Redis from the Kafka
// log. Run with -benchtime=3x for a median of three.
func BenchmarkRebuildRedis(b *testing.B) {
	c := newCluster(b)
	store := openTestEventStore(b, b.TempDir())
	defer store.Close()
	start := time.Now()
	writeHistory(b, store, benchWorld())
	head, _ := store.HeadPosition(context.Background())
	b.Logf("history of %d records written in %v", head, time.Since(start))
	ctx, stop := context.WithCancel(context.Background())
	relayed := c.relay(ctx, store)
	defer func() { stop(); <-relayed }()
	lr := c.logReader()
	c.waitRelayed(store, lr)
	logHead, err := lr.HeadPosition(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	benchRebuild(b, c.env(), logHead)
}
