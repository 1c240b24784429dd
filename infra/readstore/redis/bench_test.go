package redis

import (
	"io"
	"testing"

	"github.com/ticketd/ticketing/infra/readstore/storetest"
	"github.com/ticketd/ticketing/readmodels"
)

// openBench opens an empty store under a key prefix of its own for
// storetest's benchmarks.
func openBench(b *testing.B) (storetest.Views, io.Closer) {
	s := newStore(b)
	return viewsOf(s), s
}

// BenchmarkListEvents: see storetest.BenchmarkListEvents. Each case is
// one script call, so the figures are dominated by the round trip and
// the decoding of the page's views. "search, rare match" finds one event
// of the 1,000, so the script reads through the whole listing for it.
func BenchmarkListEvents(b *testing.B) {
	storetest.BenchmarkListEvents(b, openBench,
		storetest.ListCase{Name: "search, rare match", Req: readmodels.EventListRequest{Q: "concert 999"}, Want: 1})
}

// BenchmarkProjectorApply: see storetest.BenchmarkProjectorApply. Each
// batch is one commit script; "hot event" loads its one view in one call,
// and the bookings store reads a batch's views in one round trip
// (projections.BookingsBulkReader), so its cases run both ways.
func BenchmarkProjectorApply(b *testing.B) { storetest.BenchmarkProjectorApply(b, openBench) }
