package kafka

import (
	"sort"
	"sync"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// tracker turns out-of-order completions into committable offsets, one
// partition at a time. Messages of one partition are handled concurrently
// (by key), so a later one may finish before an earlier one; committing
// past the earlier one would lose it in a crash. For each partition the
// tracker knows the offsets dispatched and not yet done, in order, and the
// offset after the longest done prefix: what may be committed.
//
// It is the partition-aware twin of the in-process bus's tracker. Offsets
// of a partition are not contiguous (transaction markers take offsets), so
// like that one it tracks the offsets dispatched, not a range.
type tracker struct {
	mu    sync.Mutex
	parts map[partition]*partitionState
}

type partition struct {
	topic string
	id    int32
}

type partitionState struct {
	inflight  []slot // dispatch order, so offsets increase
	next      int64  // offset after the done prefix; -1 before anything is done
	committed int64  // next as last committed
}

type slot struct {
	offset int64
	done   bool
}

func newTracker() *tracker { return &tracker{parts: map[partition]*partitionState{}} }

func (t *tracker) state(p partition) *partitionState {
	st := t.parts[p]
	if st == nil {
		st = &partitionState{next: -1, committed: -1}
		t.parts[p] = st
	}
	return st
}

// dispatched notes that offset of p was handed to a worker. Offsets of
// one partition must be dispatched in increasing order.
func (t *tracker) dispatched(p partition, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.state(p)
	st.inflight = append(st.inflight, slot{offset: offset})
}

// skipped notes that offset of p needs no work (filtered out, or already
// handled): it is done as soon as everything before it is.
func (t *tracker) skipped(p partition, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.state(p)
	if len(st.inflight) == 0 {
		st.next = offset + 1
		return
	}
	st.inflight = append(st.inflight, slot{offset: offset, done: true})
}

// completed notes that offset of p is done and moves the partition's
// committable offset past every done prefix.
func (t *tracker) completed(p partition, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.parts[p]
	if st == nil {
		return
	}
	i := sort.Search(len(st.inflight), func(i int) bool { return st.inflight[i].offset >= offset })
	if i < len(st.inflight) && st.inflight[i].offset == offset {
		st.inflight[i].done = true
	}
	n := 0
	for n < len(st.inflight) && st.inflight[n].done {
		st.next = st.inflight[n].offset + 1
		n++
	}
	if n > 0 {
		st.inflight = append(st.inflight[:0], st.inflight[n:]...)
	}
}

// committable returns, for every partition whose done prefix moved since
// the last commit, the offset to commit: the next one to consume.
func (t *tracker) committable() []ck.TopicPartition {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []ck.TopicPartition
	for p, st := range t.parts {
		if st.next >= 0 && st.next != st.committed {
			topic := p.topic
			out = append(out, ck.TopicPartition{Topic: &topic, Partition: p.id, Offset: ck.Offset(st.next)})
		}
	}
	return out
}

// committed notes that offsets were committed.
func (t *tracker) committed(offsets []ck.TopicPartition) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tp := range offsets {
		if tp.Topic == nil || tp.Error != nil {
			continue
		}
		if st := t.parts[partition{*tp.Topic, tp.Partition}]; st != nil && int64(tp.Offset) > st.committed {
			st.committed = int64(tp.Offset)
		}
	}
}

// pending reports how many dispatched messages are not done.
func (t *tracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, st := range t.parts {
		for _, s := range st.inflight {
			if !s.done {
				n++
			}
		}
	}
	return n
}
