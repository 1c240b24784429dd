package embedded

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ticketd/ticketing/domain/es"
)

// BenchmarkAppend measures acknowledged (fsynced) appends of one small
// event by concurrent writers, each on its own stream as command handlers
// on different aggregates are, and all on one stream with Any.
//
// Besides ns/op it reports appends/s and appends/fsync, the number of
// appends that shared one WAL sync.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("stream-per-writer/writers=%d", writers), func(b *testing.B) {
			benchmarkAppend(b, writers, false)
		})
	}
	b.Run("same-stream-any/writers=64", func(b *testing.B) {
		benchmarkAppend(b, 64, true)
	})
}

func benchmarkAppend(b *testing.B, writers int, sameStream bool) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	data := []byte(`{"booking_id":"5b0c6a4e-2f61-4f51-9a0e-3c1f0f6d2f7a","seats":2,"ticket_type":"standard"}`)
	newRecord := func() []es.Record {
		return []es.Record{{
			ID: uuid.New(), Type: "booking.SeatsHeld", SchemaVersion: 1, AggregateID: uuid.New(),
			Time: time.Now(), CorrelationID: uuid.New(), CausationID: uuid.New(), Data: data,
		}}
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	syncs0, appends0 := s.syncs.Load(), s.appends.Load()
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("bench-%d", w)
			expected := es.NoStream
			if sameStream {
				stream, expected = "bench-hot", es.Any
			}
			for next.Add(1) <= int64(b.N) {
				res, err := s.Append(ctx, stream, expected, newRecord())
				if err != nil {
					b.Error(err)
					return
				}
				if !sameStream {
					expected = es.Exact(res.NextRevision)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	if n := s.syncs.Load() - syncs0; n > 0 {
		b.ReportMetric(float64(s.appends.Load()-appends0)/float64(n), "appends/fsync")
	}
}
