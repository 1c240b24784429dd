package projections

import (
	"context"
	"log/slog"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/readmodels"
)

// BookingsStore is what the bookings projection needs of its store.
//
// Commit stores c atomically and durably, the bookings and the move of the
// checkpoint from c.From to c.To together, and keeps the store's indexes
// (a user's bookings, the holds by deadline) in step. If the stored
// checkpoint is not c.From it changes nothing and returns an error
// matching ErrCheckpointConflict.
type BookingsStore interface {
	Checkpoint(ctx context.Context) (uint64, error)
	Booking(ctx context.Context, id uuid.UUID) (readmodels.BookingView, bool, error)
	Commit(ctx context.Context, c BookingsCommit) error
}

// BookingsBulkReader is implemented by bookings stores that read many
// views in one round trip (Redis). The projection then reads the views a
// batch touches up front, not one at a time.
type BookingsBulkReader interface {
	// Bookings returns the views of ids that exist.
	Bookings(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]readmodels.BookingView, error)
}

// BookingsCommit is one batch of the bookings projection: each changed
// booking once.
type BookingsCommit struct {
	From, To uint64
	Bookings []readmodels.BookingView
}

// bookingsTypes are the records the bookings projection reads: the
// booking's own, and payment requests, which name the booking's latest
// payment attempt.
var bookingsTypes = []string{
	booking.TypePlaced, booking.TypeAwaitingPayment, booking.TypeRejected,
	booking.TypeConfirmed, booking.TypeExpired, booking.TypeCancelled,
	payment.TypeRequested,
}

// NewBookings returns the projector of the booking views, which also
// answer a user's booking listing and the holds that are due. reg must
// know the Booking and Payment aggregates' events.
func NewBookings(log EventLog, reg *es.Registry, store BookingsStore, logger *slog.Logger) *Projector {
	return newProjector(NameBookings, log, reg, es.Filter{Types: bookingsTypes}, &bookingsProjection{store: store}, logger)
}

type bookingsProjection struct {
	store BookingsStore
}

func (p *bookingsProjection) checkpoint(ctx context.Context) (uint64, error) {
	return p.store.Checkpoint(ctx)
}

func (p *bookingsProjection) apply(ctx context.Context, from, to uint64, batch []decoded) error {
	w := newWorkset[readmodels.BookingView]()
	if bulk, ok := p.store.(BookingsBulkReader); ok {
		if err := p.preload(ctx, bulk, &w, batch); err != nil {
			return err
		}
	}
	for _, d := range batch {
		if err := p.applyOne(ctx, &w, d); err != nil {
			return err
		}
	}
	return p.store.Commit(ctx, BookingsCommit{From: from, To: to, Bookings: w.values()})
}

// preload reads in one go the stored views that batch's records change:
// every booking they name but do not place.
func (p *bookingsProjection) preload(ctx context.Context, bulk BookingsBulkReader, w *workset[readmodels.BookingView], batch []decoded) error {
	placed := map[uuid.UUID]bool{}
	seen := map[uuid.UUID]bool{}
	var ids []uuid.UUID
	for _, d := range batch {
		id, places, err := bookingOf(d)
		switch {
		case err != nil:
			continue // applyOne reports it
		case places:
			placed[id] = true
		case !placed[id] && !seen[id]:
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	views, err := bulk.Bookings(ctx, ids)
	if err != nil {
		return err
	}
	w.prime(views)
	return nil
}

// bookingOf is the booking record d changes, and whether d places it: a
// booking's own records name it by their stream, a payment request by its
// booking id.
func bookingOf(d decoded) (id uuid.UUID, places bool, err error) {
	switch e := d.payload.(type) {
	case booking.Placed:
		if e.BookingID != uuid.Nil {
			return e.BookingID, true, nil
		}
		id, err = aggregateID(d.rec, booking.StreamPrefix)
		return id, true, err
	case payment.Requested:
		return e.BookingID, false, nil
	}
	id, err = aggregateID(d.rec, booking.StreamPrefix)
	return id, false, err
}

func (p *bookingsProjection) booking(ctx context.Context, w *workset[readmodels.BookingView], rec *es.Record, id uuid.UUID) (*readmodels.BookingView, error) {
	v, err := w.get(ctx, id, p.store.Booking, nil)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, inconsistent(rec, "booking %s was never placed", id)
	}
	return v, nil
}

func (p *bookingsProjection) applyOne(ctx context.Context, w *workset[readmodels.BookingView], d decoded) error {
	rec := d.rec
	id, _, err := bookingOf(d)
	if err != nil {
		return err
	}
	if e, ok := d.payload.(booking.Placed); ok {
		at := e.At.UTC()
		w.put(id, &readmodels.BookingView{
			ID: id, UserID: e.UserID, EventID: e.EventID,
			TicketType: e.TicketType, Quantity: e.Quantity,
			Status: booking.StatusPending, CreatedAt: at, UpdatedAt: at,
			Position: rec.Position,
		})
		return nil
	}
	v, err := p.booking(ctx, w, rec, id)
	if err != nil {
		return err
	}
	if e, ok := d.payload.(payment.Requested); ok {
		// The booking's own updated_at stays: its state did not change,
		// only the pointer to its latest payment.
		v.PaymentID, v.Position = e.PaymentID, rec.Position
		return nil
	}
	switch e := d.payload.(type) {
	case booking.AwaitingPayment:
		v.Status = booking.StatusAwaitingPayment
		v.UnitPrice, v.Amount, v.Currency = e.UnitPrice, e.Amount, e.Currency
		v.ExpiresAt, v.UpdatedAt = e.ExpiresAt.UTC(), e.At.UTC()
	case booking.Rejected:
		v.Status, v.Reason, v.UpdatedAt = booking.StatusRejected, e.Reason, e.At.UTC()
	case booking.Confirmed:
		v.Status, v.UpdatedAt = booking.StatusConfirmed, e.At.UTC()
		if e.PaymentID != uuid.Nil {
			v.PaymentID = e.PaymentID
		}
	case booking.Expired:
		v.Status, v.Reason, v.UpdatedAt = booking.StatusExpired, e.Reason, e.At.UTC()
	case booking.Cancelled:
		v.Status, v.Reason, v.UpdatedAt = booking.StatusCancelled, e.Reason, e.At.UTC()
	default:
		return nil
	}
	v.Position = rec.Position
	return nil
}
