package booking

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// Schema history of the booking's events. Stored records are never
// rewritten: a record keeps the schema version it was written with, and
// the registry upcasts it when it is read.
//
//	booking.cancelled v1  Reason, From, PaymentID, At
//	booking.cancelled v2  adds Refund (the booking decides the refund)

// upcastCancelledV1 rewrites a version 1 booking.cancelled payload into
// version 2 by adding Refund as version 1's code decided it, implicitly:
// every confirmed booking that was cancelled had its payment refunded, and
// no other. Every other field is kept byte for byte.
func upcastCancelledV1(data []byte) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, fmt.Errorf("booking: cancelled v1: %w", err)
	}
	if fields == nil {
		return nil, errors.New("booking: cancelled v1: payload is null, want an object")
	}
	var v1 struct {
		From      *Status
		PaymentID uuid.UUID
	}
	if err := json.Unmarshal(data, &v1); err != nil {
		return nil, fmt.Errorf("booking: cancelled v1: %w", err)
	}
	if v1.From == nil {
		// Version 1 always recorded the status the booking left; without
		// it, whether a refund is owed cannot be told.
		return nil, errors.New("booking: cancelled v1: no From status")
	}
	refund := *v1.From == StatusConfirmed && v1.PaymentID != uuid.Nil
	if _, ok := fields["Refund"]; ok {
		return nil, errors.New("booking: cancelled v1: already has Refund, which version 1 never wrote")
	}
	fields["Refund"], _ = json.Marshal(refund)
	return json.Marshal(fields)
}
