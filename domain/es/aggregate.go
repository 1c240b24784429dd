package es

import "github.com/google/uuid"

// Changes is the bookkeeping every aggregate embeds: the version it was
// loaded at and the events it has decided but not yet stored.
//
// An aggregate method validates, then calls its own record helper, which
// applies the event (the applier only mutates state, it never validates)
// and appends it to the pending list through Record.
type Changes struct {
	version int64
	pending []Payload
}

// NewChanges starts the bookkeeping of an aggregate that has no stream yet.
func NewChanges() Changes { return Changes{version: -1} }

// Version is the revision of the last stored event applied, -1 if none.
func (c *Changes) Version() int64 { return c.version }

// Pending returns the events decided but not yet stored, in order.
func (c *Changes) Pending() []Payload { return c.pending }

// Record adds a decided event to the pending list. The caller has already
// applied it to the aggregate's state.
func (c *Changes) Record(p Payload) { c.pending = append(c.pending, p) }

// Replayed notes that a stored event at revision rev was applied.
func (c *Changes) Replayed(rev uint64) { c.version = int64(rev) }

// Restored sets the version of an aggregate rebuilt from a snapshot.
func (c *Changes) Restored(version int64) { c.version = version }

// Stored notes that the pending events were appended, so that the version
// moves past them and the pending list empties.
func (c *Changes) Stored() {
	c.version += int64(len(c.pending))
	c.pending = c.pending[:0]
}

// Discard drops the pending events (for example after a failed append,
// before the aggregate itself is thrown away and reloaded).
func (c *Changes) Discard() { c.pending = c.pending[:0] }

// DeriveID returns a deterministic UUID for the name-th consequence of the
// message parent. A handler that derives the ids of the events and
// commands it produces from the id of the message it handles produces the
// same ids when the message is redelivered, which is what makes the store's
// idempotent append and the consumers' dedupe work.
func DeriveID(parent uuid.UUID, name string) uuid.UUID {
	return uuid.NewSHA1(parent, []byte(name))
}
