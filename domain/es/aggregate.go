package es

import "github.com/google/uuid"

// Changes is the bookkeeping every aggregate embeds: the version it was
// loaded at and the events it has decided but not yet stored.
//
// An aggregate method validates, then calls its own record helper, which
// applies the event (the applier only mutates state, it never validates)
// and appends it to the pending list through Record.
//
// The zero value is an aggregate with no stream yet, so a zero aggregate is
// what a repository replays stored events into.
type Changes struct {
	stored  int64 // number of stored events applied: version+1
	pending []Payload
}

// Version is the revision of the last stored event applied, -1 if none.
func (c *Changes) Version() int64 { return c.stored - 1 }

// Pending returns the events decided but not yet stored, in order.
func (c *Changes) Pending() []Payload { return c.pending }

// Record adds a decided event to the pending list. The caller has already
// applied it to the aggregate's state.
func (c *Changes) Record(p Payload) { c.pending = append(c.pending, p) }

// Replayed notes that a stored event at revision rev was applied.
func (c *Changes) Replayed(rev uint64) { c.stored = int64(rev) + 1 }

// Restored sets the version of an aggregate rebuilt from a snapshot.
func (c *Changes) Restored(version int64) { c.stored = version + 1 }

// Stored notes that the pending events were appended, so that the version
// moves past them and the pending list empties.
func (c *Changes) Stored() {
	c.stored += int64(len(c.pending))
	c.pending = nil
}

// Discard drops the pending events (for example after a failed append,
// before the aggregate itself is thrown away and reloaded).
func (c *Changes) Discard() { c.pending = nil }

// DeriveID returns a deterministic UUID for the name-th consequence of the
// message parent. A handler that derives the ids of the events and
// commands it produces from the id of the message it handles produces the
// same ids when the message is redelivered, which is what makes the store's
// idempotent append and the consumers' dedupe work.
func DeriveID(parent uuid.UUID, name string) uuid.UUID {
	return uuid.NewSHA1(parent, []byte(name))
}
