package redis

import (
	"context"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/infra/readstore/viewcodec"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

var (
	_ readmodels.PaymentReader       = (*PaymentViews)(nil)
	_ projections.PaymentsStore      = (*PaymentViews)(nil)
	_ projections.PaymentsBulkReader = (*PaymentViews)(nil)
)

// PaymentViews is the payment read model: the reader port of the payment
// queries and the store port of the payments projector.
type PaymentViews struct {
	sp *space
}

// Checkpoint is the position up to which the payments projection has
// committed.
func (v *PaymentViews) Checkpoint(ctx context.Context) (uint64, error) {
	return v.sp.checkpoint(ctx)
}

// Payment returns the payment id.
func (v *PaymentViews) Payment(ctx context.Context, id uuid.UUID) (readmodels.PaymentView, bool, error) {
	return viewByID(ctx, v.sp, "payment", id, viewcodec.DecodePayment)
}

// Payments returns the payments of ids that exist, a round trip per
// thousand ids.
func (v *PaymentViews) Payments(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]readmodels.PaymentView, error) {
	return viewsByID(ctx, v.sp, "payments", ids, viewcodec.DecodePayment)
}

// Commit stores one batch of the payments projection atomically, with
// the move of its checkpoint.
func (v *PaymentViews) Commit(ctx context.Context, c projections.PaymentsCommit) error {
	return commitByID(ctx, v.sp, "payments", c.From, c.To, c.Payments, func(p *readmodels.PaymentView) uuid.UUID { return p.ID }, viewcodec.EncodePayment)
}

// Stage returns a fresh, empty version of the payment read model for a
// rebuild; see EventViews.Stage.
func (v *PaymentViews) Stage() (*PaymentViews, error) {
	sp, err := v.sp.stage()
	if err != nil {
		return nil, err
	}
	return &PaymentViews{sp: sp}, nil
}

// Promote switches readers and writers of v to the staged version; see
// EventViews.Promote.
func (v *PaymentViews) Promote(staged *PaymentViews) error {
	if staged == nil {
		return v.sp.promote(nil)
	}
	return v.sp.promote(staged.sp)
}

// Discard deletes a staged version that will not be promoted.
func (v *PaymentViews) Discard() error { return v.sp.discard() }
