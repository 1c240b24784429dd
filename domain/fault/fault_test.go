package fault_test

import (
	"errors"
	"testing"

	"github.com/ticketd/ticketing/domain/fault"
)

func TestInputCollectsEveryWrongField(t *testing.T) {
	var in fault.Input
	in.Check(true, "email", "must be a valid email address")
	if err := in.Err(); err != nil {
		t.Fatalf("Err() with no wrong field = %v, want nil", err)
	}
	in.Check(false, "email", "must be a valid email address")
	in.Add("ticket_types[1].name", "is required")
	err := in.Err()
	want := "invalid input: email must be a valid email address; ticket_types[1].name is required"
	if err == nil || err.Error() != want {
		t.Fatalf("Err() = %v, want %q", err, want)
	}
	var got *fault.Input
	if !errors.As(err, &got) || len(got.Fields) != 2 || got.Fields[1] != (fault.FieldError{Field: "ticket_types[1].name", Message: "is required"}) {
		t.Errorf("the fields are not recoverable with errors.As: %+v", got)
	}
	if errors.Is(err, fault.ErrConflict) || errors.Is(err, fault.ErrNotFound) {
		t.Error("invalid input is classified as a conflict or a missing thing")
	}
}
