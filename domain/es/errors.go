package es

import (
	"errors"
	"fmt"
)

// ErrConflict is matched (with errors.Is) by every expected-revision
// mismatch. Command handlers retry on it by reloading the aggregate.
var ErrConflict = errors.New("es: wrong expected revision")

// ErrStreamNotFound is returned when reading a stream that does not exist.
var ErrStreamNotFound = errors.New("es: stream not found")

// ErrDuplicateEventID is returned when an append reuses event ids that are
// already stored somewhere other than exactly where this append would put
// them (so it is neither new nor an idempotent retry).
var ErrDuplicateEventID = errors.New("es: event id already stored elsewhere")

// ErrClosed is returned by a store or subscription used after Close.
var ErrClosed = errors.New("es: closed")

// ConflictError tells what the append expected and what the stream was.
type ConflictError struct {
	Stream   string
	Expected ExpectedRevision
	// Actual is the stream's last revision; Exists is false when the
	// stream has no records.
	Actual uint64
	Exists bool
}

func (e *ConflictError) Error() string {
	actual := "no stream"
	if e.Exists {
		actual = "revision " + itoa(e.Actual)
	}
	return fmt.Sprintf("es: append to %s: expected %s, stream is at %s", e.Stream, e.Expected, actual)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
