package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/internal/baseline/pgstore"
)

// benchPostgresURL is the server of scripts/benchenv.sh, read once from
// the environment its `env` subcommand sets. Without it the PostgreSQL
// half of BenchmarkAppendSideBySide skips.
var benchPostgresURL = os.Getenv("TICKETD_BENCH_POSTGRES_URL")

// sideBySideStore is what the workloads need of either store.
type sideBySideStore interface {
	Append(ctx context.Context, stream string, expected es.ExpectedRevision, records []es.Record) (es.AppendResult, error)
	ReadStream(ctx context.Context, stream string, opts es.ReadOptions) ([]es.Record, error)
}

// BenchmarkAppendSideBySide runs one append workload against the embedded
// store and against a plain PostgreSQL event table with UNIQUE (stream_id,
// version) (internal/baseline/pgstore, synchronous_commit = on), one right
// after the other, so that their ratio survives a noisy machine. Every
// append carries one event under an exact expected revision and is durable
// when it returns.
//
//   - workload=stream-per-writer: each writer appends to its own stream,
//     as command handlers on different aggregates do. No conflicts.
//   - workload=one-stream: every writer appends to one stream, the way
//     handlers without a single writer per aggregate would on a hot event.
//     A writer that loses the race learns the stream's head from the
//     conflict and tries again; conflicts/op counts those lost races.
//
// It reports appends/s (acknowledged appends per second of wall time);
// for the embedded store also appends/fsync, the group commit's sharing.
//
// Compare with:
//
//	benchstat -col /store results.txt
func BenchmarkAppendSideBySide(b *testing.B) {
	var pg *pgstore.Store
	if benchPostgresURL != "" {
		var err error
		if pg, err = pgstore.Open(context.Background(), benchPostgresURL, 64); err != nil {
			b.Fatalf("postgres baseline: %v", err)
		}
		defer pg.Close()
		if err := pg.Warm(context.Background(), 64); err != nil {
			b.Fatalf("postgres baseline: %v", err)
		}
	}
	for _, workload := range []string{"stream-per-writer", "one-stream"} {
		for _, writers := range []int{1, 8, 64} {
			for _, store := range []string{"embedded", "postgres"} {
				b.Run(fmt.Sprintf("workload=%s/writers=%d/store=%s", workload, writers, store), func(b *testing.B) {
					b.ReportAllocs()
					oneStream := workload == "one-stream"
					if store == "embedded" {
						s, err := Open(b.TempDir(), Options{})
						if err != nil {
							b.Fatal(err)
						}
						defer s.Close()
						syncs0, appends0 := s.syncs.Load(), s.appends.Load()
						runSideBySide(b, s, writers, oneStream)
						if n := s.syncs.Load() - syncs0; n > 0 {
							b.ReportMetric(float64(s.appends.Load()-appends0)/float64(n), "appends/fsync")
						}
						return
					}
					if pg == nil {
						b.Skip("postgres baseline: TICKETD_BENCH_POSTGRES_URL is not set; run " +
							"scripts/benchenv.sh start && eval \"$(scripts/benchenv.sh env)\" (or make bench-baseline)")
					}
					if err := pg.Reset(context.Background()); err != nil {
						b.Fatal(err)
					}
					runSideBySide(b, pg, writers, oneStream)
				})
			}
		}
	}
}

func runSideBySide(b *testing.B, s sideBySideStore, writers int, oneStream bool) {
	ctx := context.Background()
	data := []byte(`{"booking_id":"5b0c6a4e-2f61-4f51-9a0e-3c1f0f6d2f7a","seats":2,"ticket_type":"standard"}`)
	newRecord := func() []es.Record {
		return []es.Record{{
			ID: uuid.New(), Type: "event.seats_held", SchemaVersion: 1, AggregateID: uuid.New(),
			Time: time.Now(), CorrelationID: uuid.New(), CausationID: uuid.New(), Data: data,
		}}
	}
	streamOf := func(w int) string {
		if oneStream {
			return "bench-hot"
		}
		return fmt.Sprintf("bench-%d", w)
	}

	var next, conflicts atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			stream, expected := streamOf(w), es.NoStream
			for next.Add(1) <= int64(b.N) {
				for {
					res, err := s.Append(ctx, stream, expected, newRecord())
					var ce *es.ConflictError
					if oneStream && errors.As(err, &ce) {
						// Reload and decide again, as a command handler does.
						conflicts.Add(1)
						expected = es.NoStream
						if ce.Exists {
							expected = es.Exact(ce.Actual)
						}
						continue
					}
					if err != nil {
						b.Error(err)
						return
					}
					expected = es.Exact(res.NextRevision)
					break
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	if oneStream {
		b.ReportMetric(float64(conflicts.Load())/float64(b.N), "conflicts/op")
	}

	// Every acknowledged append is there, once, at its own revision.
	streams := writers
	if oneStream {
		streams = 1
	}
	stored := 0
	for w := range streams {
		last, err := s.ReadStream(ctx, streamOf(w), es.ReadOptions{Direction: es.Backward, FromEnd: true, Limit: 1})
		switch {
		case errors.Is(err, es.ErrStreamNotFound):
		case err != nil:
			b.Fatal(err)
		default:
			stored += int(last[0].Revision) + 1
		}
	}
	if stored != b.N {
		b.Fatalf("%d events stored after %d acknowledged appends", stored, b.N)
	}
}
