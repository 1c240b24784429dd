package checkpoint

import (
	"context"
	"maps"
	"sync"
)

// Memory keeps checkpoints in memory: for tests, and for subscribers whose
// progress need not outlive the process. Safe for concurrent use.
type Memory struct {
	mu sync.Mutex
	m  map[string]uint64
}

// NewMemory returns checkpoints starting at initial (which may be nil).
func NewMemory(initial map[string]uint64) *Memory {
	m := make(map[string]uint64, len(initial))
	maps.Copy(m, initial)
	return &Memory{m: m}
}

// Load returns the checkpoint of name, 0 if it has none.
func (c *Memory) Load(_ context.Context, name string) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[name], nil
}

// Save sets the checkpoint of name.
func (c *Memory) Save(_ context.Context, name string, pos uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[name] = pos
	return nil
}
