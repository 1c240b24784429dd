package es

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
)

// Payload is the body of a domain event. Its type name is an explicit,
// stable constant (never derived from the Go type name), so that renaming a
// struct cannot break stored streams.
type Payload interface {
	EventType() string
}

// Upcaster rewrites the encoded payload of one schema version into the next
// version's shape.
type Upcaster func(data []byte) ([]byte, error)

type registration struct {
	version int
	typ     reflect.Type
}

// Registry maps event type names to payload types and schema versions and
// encodes and decodes payloads. Stored history is never rewritten: when a
// payload's shape changes, its version is bumped and an upcaster from the
// old version is registered.
type Registry struct {
	mu        sync.RWMutex
	types     map[string]registration
	upcasters map[string]map[int]Upcaster
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{types: map[string]registration{}, upcasters: map[string]map[int]Upcaster{}}
}

// Register records that payloads named p.EventType() have the Go type of p
// (a struct value, not a pointer) at the given schema version. It panics on
// a duplicate name, which is a programming error caught at start-up.
func (r *Registry) Register(p Payload, version int) {
	t := reflect.TypeOf(p)
	if t.Kind() == reflect.Pointer {
		panic(fmt.Sprintf("es: register %s: pass a value, not a pointer", p.EventType()))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	name := p.EventType()
	if _, dup := r.types[name]; dup {
		panic("es: event type registered twice: " + name)
	}
	r.types[name] = registration{version: version, typ: t}
}

// RegisterUpcaster registers the rewrite of type name's payload from schema
// version from to version from+1.
func (r *Registry) RegisterUpcaster(name string, from int, up Upcaster) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.upcasters[name] == nil {
		r.upcasters[name] = map[int]Upcaster{}
	}
	r.upcasters[name][from] = up
}

// Encode returns the payload's type name, current schema version and
// encoded bytes.
func (r *Registry) Encode(p Payload) (name string, version int, data []byte, err error) {
	name = p.EventType()
	r.mu.RLock()
	reg, ok := r.types[name]
	r.mu.RUnlock()
	if !ok {
		return "", 0, nil, fmt.Errorf("es: encode: unregistered event type %q", name)
	}
	data, err = json.Marshal(p)
	if err != nil {
		return "", 0, nil, fmt.Errorf("es: encode %s: %w", name, err)
	}
	return name, reg.version, data, nil
}

// Decode returns the payload of rec as its registered Go type (a value),
// upcasting older schema versions first.
func (r *Registry) Decode(rec *Record) (Payload, error) {
	r.mu.RLock()
	reg, ok := r.types[rec.Type]
	ups := r.upcasters[rec.Type]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("es: decode %s@%d: unregistered event type %q", rec.Stream, rec.Revision, rec.Type)
	}
	data := rec.Data
	for v := rec.SchemaVersion; v < reg.version; v++ {
		up, ok := ups[v]
		if !ok {
			return nil, fmt.Errorf("es: decode %s v%d: no upcaster from version %d", rec.Type, rec.SchemaVersion, v)
		}
		var err error
		if data, err = up(data); err != nil {
			return nil, fmt.Errorf("es: upcast %s from v%d: %w", rec.Type, v, err)
		}
	}
	ptr := reflect.New(reg.typ)
	if err := json.Unmarshal(data, ptr.Interface()); err != nil {
		return nil, fmt.Errorf("es: decode %s@%d (%s): %w", rec.Stream, rec.Revision, rec.Type, err)
	}
	return ptr.Elem().Interface().(Payload), nil
}

// Known reports whether name is registered.
func (r *Registry) Known(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.types[name]
	return ok
}
