package commands

import (
	"sync"

	"github.com/google/uuid"
)

// stateCache keeps the last stored state of recently written aggregates of
// one kind, so that the next command on one of them need not replay its
// stream. A flash sale decides each booking three or four times within
// seconds (placed, held or refused, paid, confirmed); reloading it from the
// store each time was about a fifth of the server's CPU.
//
// A cached state may be stale only if something other than this process's
// handlers wrote the stream (another instance on a shared store). The
// handlers therefore trust it only where staleness is caught:
//
//   - a decision that records events is appended under the cached
//     version, so a stale state fails with a conflict, the entry is
//     dropped, and the command is decided again on a fresh load;
//   - a decision that records nothing (an idempotent no-op) or refuses
//     proves nothing about the stored state, so it is decided again on a
//     fresh load before it is answered;
//   - fields that never change after creation (a booking's event, say)
//     are read from it freely.
//
// Entries are values with no pending events, written only after their
// events were stored, and never replaced by an older version.
type stateCache[T any, P interface {
	*T
	Version() int64
}] struct {
	mu  sync.Mutex
	m   map[uuid.UUID]cached[T]
	max int
}

type cached[T any] struct {
	state   T
	version int64
}

func newStateCache[T any, P interface {
	*T
	Version() int64
}](max int) *stateCache[T, P] {
	return &stateCache[T, P]{m: make(map[uuid.UUID]cached[T]), max: max}
}

// get returns a copy of the cached state of id.
func (c *stateCache[T, P]) get(id uuid.UUID) (*T, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	return &e.state, true
}

// put caches v, a state whose events are all stored, unless a newer one is
// cached already.
func (c *stateCache[T, P]) put(id uuid.UUID, v *T) {
	if c == nil {
		return
	}
	version := P(v).Version()
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[id]; ok {
		if old.version >= version {
			return
		}
	} else if len(c.m) >= c.max {
		// Forget about a quarter, arbitrarily (map order): a miss only
		// costs a load.
		n := len(c.m) / 4
		for k := range c.m {
			if n == 0 {
				break
			}
			delete(c.m, k)
			n--
		}
	}
	c.m[id] = cached[T]{state: *v, version: version}
}

// drop forgets id, after a failed or doubtful write.
func (c *stateCache[T, P]) drop(id uuid.UUID) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}
