package kafka

import (
	"container/list"
	"sync"
)

// seenSet remembers the ids of the last messages handled successfully, so
// that a redelivery (after a rebalance, or a restart of the runner in the
// same process, or a commit that did not make it) is skipped instead of
// handled again. Handlers are idempotent anyway; this saves their work
// and keeps duplicates out of metrics. Bounded: the least recently added
// id goes first.
type seenSet struct {
	mu    sync.Mutex
	max   int
	order *list.List // front: newest
	ids   map[string]*list.Element
}

func newSeenSet(max int) *seenSet {
	return &seenSet{max: max, order: list.New(), ids: map[string]*list.Element{}}
}

func (s *seenSet) contains(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ids[id]
	return ok
}

func (s *seenSet) add(id string) {
	if s.max <= 0 || id == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.ids[id]; ok {
		s.order.MoveToFront(e)
		return
	}
	s.ids[id] = s.order.PushFront(id)
	for s.order.Len() > s.max {
		oldest := s.order.Back()
		s.order.Remove(oldest)
		delete(s.ids, oldest.Value.(string))
	}
}
