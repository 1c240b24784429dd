package embedded

import (
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// byIDGen is one generation of a read model that is only ever read by id
// (payments, profiles): a map, no index.
type byIDGen[V any] struct {
	gen
	mu   sync.RWMutex
	byID map[uuid.UUID]*V
}

func newByIDGen[V any](name string, num uint64) *byIDGen[V] {
	g := &byIDGen[V]{byID: map[uuid.UUID]*V{}}
	g.init(name, num)
	return g
}

// loadByID returns the loader of a byIDGen whose views decode.
func loadByID[V any](decode func([]byte) (V, error)) func(*byIDGen[V], *pebble.DB) error {
	return func(g *byIDGen[V], db *pebble.DB) error {
		if err := loadCheckpoint(&g.gen, db); err != nil {
			return err
		}
		return eachView(&g.gen, db, func(id uuid.UUID, value []byte) error {
			v, err := decode(value)
			if err != nil {
				return err
			}
			g.byID[id] = &v
			return nil
		})
	}
}

func (g *byIDGen[V]) get(id uuid.UUID) (V, bool) {
	g.mu.RLock()
	v, ok := g.byID[id]
	g.mu.RUnlock()
	if !ok {
		var zero V
		return zero, false
	}
	return *v, true
}

// commitByID commits views of a byIDGen space, each keyed by idOf.
func commitByID[V any](sp *space[byIDGen[V], *byIDGen[V]], from, to uint64, views []V, idOf func(*V) uuid.UUID, encode func(*V) ([]byte, error)) error {
	return sp.commit(from, to, func(g *byIDGen[V], b *pebble.Batch) error {
		for i := range views {
			data, err := encode(&views[i])
			if err != nil {
				return fmt.Errorf("encode %s view %s: %w", sp.name, idOf(&views[i]), err)
			}
			if err := b.Set(g.key(kindView, idOf(&views[i])), data, nil); err != nil {
				return err
			}
		}
		return nil
	}, func(g *byIDGen[V]) {
		g.mu.Lock()
		defer g.mu.Unlock()
		for i := range views {
			v := views[i]
			g.byID[idOf(&v)] = &v
		}
	})
}
