// Package fault classifies domain refusals so that adapters can answer them
// properly (an HTTP adapter maps them to 400, 404 and 409) without knowing
// every domain error type.
//
// Domain errors stay specific, carrying what was wrong and what was
// expected; they report their class through errors.Is.
package fault

import (
	"errors"
	"strings"
)

var (
	// ErrConflict classifies refusals that depend on the current state (a
	// transition that is not allowed now, a capacity below what is sold).
	ErrConflict = errors.New("fault: conflict with current state")
	// ErrNotFound classifies references to things that do not exist.
	ErrNotFound = errors.New("fault: not found")
)

// FieldError says what is wrong with one input field.
type FieldError struct {
	Field   string
	Message string
}

// Input is a validation failure listing every field that is wrong, so a
// client can fix them all at once.
type Input struct {
	Fields []FieldError
}

// Check records a field error when ok is false.
func (in *Input) Check(ok bool, field, message string) {
	if !ok {
		in.Fields = append(in.Fields, FieldError{Field: field, Message: message})
	}
}

// Add records a field error.
func (in *Input) Add(field, message string) {
	in.Fields = append(in.Fields, FieldError{Field: field, Message: message})
}

// Err returns the validation failure, or nil when no field was wrong.
func (in *Input) Err() error {
	if len(in.Fields) == 0 {
		return nil
	}
	return in
}

func (in *Input) Error() string {
	parts := make([]string, len(in.Fields))
	for i, f := range in.Fields {
		parts[i] = f.Field + " " + f.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}
