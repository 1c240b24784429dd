package projections

import (
	"context"
	"log/slog"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/readmodels"
)

// PaymentsStore is what the payments projection needs of its store.
//
// Commit stores c atomically and durably, the payments and the move of the
// checkpoint from c.From to c.To together. If the stored checkpoint is not
// c.From it changes nothing and returns an error matching
// ErrCheckpointConflict.
type PaymentsStore interface {
	Checkpoint(ctx context.Context) (uint64, error)
	Payment(ctx context.Context, id uuid.UUID) (readmodels.PaymentView, bool, error)
	Commit(ctx context.Context, c PaymentsCommit) error
}

// PaymentsCommit is one batch of the payments projection: each changed
// payment once.
type PaymentsCommit struct {
	From, To uint64
	Payments []readmodels.PaymentView
}

// PaymentPublisher announces a payment's new state to the live status
// streams. readmodels.PaymentFeed is one.
type PaymentPublisher interface {
	Publish(ctx context.Context, v readmodels.PaymentView) error
}

var paymentsTypes = []string{
	payment.TypeRequested, payment.TypeSucceeded, payment.TypeFailed,
	payment.TypeRefundRequested, payment.TypeRefunded,
}

// NewPayments returns the projector of the payment views. After each
// commit it publishes every payment the batch changed, in its latest
// state, to feed (nil publishes nothing). A failed publish is logged and
// does not stop the projection: the view is stored, and a status stream
// that missed it still reads the stored state when it starts. reg must
// know the Payment aggregate's events.
func NewPayments(log EventLog, reg *es.Registry, store PaymentsStore, feed PaymentPublisher, logger *slog.Logger) *Projector {
	proj := &paymentsProjection{store: store, feed: feed}
	p := newProjector(NamePayments, log, reg, es.Filter{Types: paymentsTypes}, proj, logger)
	proj.logger = p.logger
	return p
}

type paymentsProjection struct {
	store  PaymentsStore
	feed   PaymentPublisher
	logger *slog.Logger
}

func (p *paymentsProjection) checkpoint(ctx context.Context) (uint64, error) {
	return p.store.Checkpoint(ctx)
}

func (p *paymentsProjection) apply(ctx context.Context, from, to uint64, batch []decoded) error {
	w := newWorkset[readmodels.PaymentView]()
	if bulk, ok := p.store.(PaymentsBulkReader); ok {
		if err := p.preload(ctx, bulk, &w, batch); err != nil {
			return err
		}
	}
	for _, d := range batch {
		if err := p.applyOne(ctx, &w, d); err != nil {
			return err
		}
	}
	views := w.values()
	if err := p.store.Commit(ctx, PaymentsCommit{From: from, To: to, Payments: views}); err != nil {
		return err
	}
	if p.feed == nil {
		return nil
	}
	for _, v := range views {
		if err := p.feed.Publish(ctx, v); err != nil {
			p.logger.Warn("payment status not published", "payment_id", v.ID, "status", v.Status, "err", err)
		}
	}
	return nil
}

// PaymentsBulkReader is implemented by payments stores that read many
// views in one round trip (Redis); see BookingsBulkReader.
type PaymentsBulkReader interface {
	// Payments returns the views of ids that exist.
	Payments(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]readmodels.PaymentView, error)
}

// preload reads in one go the stored views that batch's records change:
// every payment they name but do not request.
func (p *paymentsProjection) preload(ctx context.Context, bulk PaymentsBulkReader, w *workset[readmodels.PaymentView], batch []decoded) error {
	requested := map[uuid.UUID]bool{}
	seen := map[uuid.UUID]bool{}
	var ids []uuid.UUID
	for _, d := range batch {
		id, err := paymentOf(d)
		switch _, requests := d.payload.(payment.Requested); {
		case err != nil:
			continue // applyOne reports it
		case requests:
			requested[id] = true
		case !requested[id] && !seen[id]:
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	views, err := bulk.Payments(ctx, ids)
	if err != nil {
		return err
	}
	w.prime(views)
	return nil
}

// paymentOf is the payment record d changes: its stream's, or the id a
// request names.
func paymentOf(d decoded) (uuid.UUID, error) {
	if e, ok := d.payload.(payment.Requested); ok && e.PaymentID != uuid.Nil {
		return e.PaymentID, nil
	}
	return aggregateID(d.rec, payment.StreamPrefix)
}

func (p *paymentsProjection) applyOne(ctx context.Context, w *workset[readmodels.PaymentView], d decoded) error {
	rec := d.rec
	id, err := paymentOf(d)
	if err != nil {
		return err
	}
	if e, ok := d.payload.(payment.Requested); ok {
		at := e.At.UTC()
		w.put(id, &readmodels.PaymentView{
			ID: id, BookingID: e.BookingID, UserID: e.UserID,
			Amount: e.Amount, Currency: e.Currency, Status: payment.Processing,
			CreatedAt: at, UpdatedAt: at, Position: rec.Position,
		})
		return nil
	}
	v, err := w.get(ctx, id, p.store.Payment, nil)
	if err != nil {
		return err
	}
	if v == nil {
		return inconsistent(rec, "payment %s was never requested", id)
	}
	switch e := d.payload.(type) {
	case payment.Settled:
		v.Status, v.UpdatedAt = payment.Succeeded, e.At.UTC()
	case payment.Declined:
		v.Status, v.FailureReason, v.UpdatedAt = payment.Failed, e.Reason, e.At.UTC()
	case payment.RefundRequested:
		v.Status, v.UpdatedAt = payment.RefundPending, e.At.UTC()
	case payment.RefundCompleted:
		v.Status, v.UpdatedAt = payment.Refunded, e.At.UTC()
	default:
		return nil
	}
	v.Position = rec.Position
	return nil
}
