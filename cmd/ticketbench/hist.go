package main

import (
	"math"
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram in the manner of HDR Histogram:
// values below 256 ns are exact, larger ones fall into buckets 1/128 of
// their power of two wide, so every percentile is within 0.8% of the true
// value. Recording is an increment; workers keep their own and merge.
type hist struct {
	counts [histBuckets]uint64
	n      uint64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	// Values up to 2^40 ns (about 18 minutes); longer ones are clamped.
	histMaxShift = 40 - histSubBits - 1
	histBuckets  = (histMaxShift + 2) * histSub
)

func histIndex(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1
	if shift > histMaxShift {
		return histBuckets - 1
	}
	return (shift+1)*histSub + int(v>>shift) - histSub
}

// histValue is the midpoint of bucket i.
func histValue(i int) uint64 {
	if i < 2*histSub {
		return uint64(i)
	}
	shift := i/histSub - 1
	sub := uint64(i%histSub + histSub)
	return sub<<shift + (uint64(1)<<shift)/2
}

func (h *hist) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[histIndex(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

func (h *hist) merge(o *hist) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// quantile returns the value below which a fraction q of the samples lie
// (nearest rank), never above the largest sample.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(max(time.Duration(histValue(i)), h.min), h.max)
		}
	}
	return h.max
}

// latency summarises h in milliseconds for the report.
func (h *hist) latency() Latency {
	if h.n == 0 {
		return Latency{}
	}
	return Latency{
		Count: h.n,
		Mean:  ms(h.sum / time.Duration(h.n)),
		P50:   ms(h.quantile(0.50)),
		P90:   ms(h.quantile(0.90)),
		P95:   ms(h.quantile(0.95)),
		P99:   ms(h.quantile(0.99)),
		P999:  ms(h.quantile(0.999)),
		Max:   ms(h.max),
	}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
