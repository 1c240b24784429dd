// Package commands is the write side's application layer: one command
// handler per use case (load the aggregate, decide, append with the
// expected revision) and the process managers that drive the booking saga
// across services.
//
// Every handler is idempotent under redelivery: the ids of the events a
// message causes are derived from the message's id, aggregates ignore a
// decision they already took, and appends carry expected revisions.
package commands

import (
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/domain/user"
)

// Msg identifies the message a handler acts on. Its ID is the causation
// id of everything the handler records, and the seed from which their ids
// are derived, so that handling the same message twice records nothing
// twice.
type Msg struct {
	ID            uuid.UUID
	CorrelationID uuid.UUID
	// Meta carries transport context (W3C "traceparent") along the flow.
	Meta map[string]string
}

// NewMsg starts a new flow: a fresh message that is its own correlation.
func NewMsg() Msg {
	id := uuid.New()
	return Msg{ID: id, CorrelationID: id}
}

// Caused is the message that rec causes: the handler reacting to rec acts
// under this identity, derived from rec's id and the reaction's name.
func Caused(rec *es.Record, reaction string) Msg {
	return Msg{ID: es.DeriveID(rec.ID, reaction), CorrelationID: rec.CorrelationID, Meta: rec.Meta}
}

// Clock tells the time. Handlers take it as a dependency so that tests can
// move time (the domain itself only ever receives time as a value).
type Clock func() time.Time

// NewRegistry returns a registry with every aggregate's events.
func NewRegistry() *es.Registry {
	r := es.NewRegistry()
	user.Register(r)
	event.Register(r)
	booking.Register(r)
	payment.Register(r)
	return r
}
