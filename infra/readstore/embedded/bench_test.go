package embedded

import (
	"io"
	"testing"

	"github.com/ticketd/ticketing/infra/readstore/storetest"
)

// openBench opens an empty store in a directory of its own for
// storetest's benchmarks.
func openBench(b *testing.B) (storetest.Views, io.Closer) {
	s := open(b, b.TempDir(), Options{})
	return viewsOf(s), s
}

// BenchmarkListEvents: see storetest.BenchmarkListEvents.
func BenchmarkListEvents(b *testing.B) { storetest.BenchmarkListEvents(b, openBench) }

// BenchmarkProjectorApply: see storetest.BenchmarkProjectorApply. Every
// commit here is an fsync; the store reads views one at a time, so the
// bookings cases run once.
func BenchmarkProjectorApply(b *testing.B) { storetest.BenchmarkProjectorApply(b, openBench) }
