package inproc

import (
	"sort"
	"sync"
)

// tracker turns out-of-order completions into a checkpoint: the highest
// position at or below which every dispatched record is done. Records are
// handled concurrently, so a later one may finish before an earlier one;
// checkpointing the later one would lose the earlier one in a crash.
type tracker struct {
	mu       sync.Mutex
	inflight []slot // dispatch order, so positions increase
	done     uint64 // the checkpoint
}

type slot struct {
	pos  uint64
	done bool
}

func newTracker(from uint64) *tracker { return &tracker{done: from} }

// dispatched notes that pos was handed to a worker. Positions must be
// dispatched in increasing order.
func (t *tracker) dispatched(pos uint64) {
	t.mu.Lock()
	t.inflight = append(t.inflight, slot{pos: pos})
	t.mu.Unlock()
}

// completed notes that pos is done and advances the checkpoint past every
// done prefix.
func (t *tracker) completed(pos uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := sort.Search(len(t.inflight), func(i int) bool { return t.inflight[i].pos >= pos })
	if i < len(t.inflight) && t.inflight[i].pos == pos {
		t.inflight[i].done = true
	}
	n := 0
	for n < len(t.inflight) && t.inflight[n].done {
		t.done = t.inflight[n].pos
		n++
	}
	if n > 0 {
		t.inflight = append(t.inflight[:0], t.inflight[n:]...)
	}
}

// checkpoint returns the position up to which everything is done.
func (t *tracker) checkpoint() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done
}

// pending reports how many dispatched records are not done.
func (t *tracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.inflight)
}
