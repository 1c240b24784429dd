package embedded

import (
	"context"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/infra/readstore/viewcodec"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

var (
	_ readmodels.PaymentReader  = (*PaymentViews)(nil)
	_ projections.PaymentsStore = (*PaymentViews)(nil)
)

// PaymentViews is the payment read model: the reader port of the payment
// queries and the store port of the payments projector.
type PaymentViews struct {
	sp *space[byIDGen[readmodels.PaymentView], *byIDGen[readmodels.PaymentView]]
}

var (
	newPaymentsGen  = newByIDGen[readmodels.PaymentView]
	loadPaymentsGen = loadByID(viewcodec.DecodePayment)
)

func wrapPayments(sp *space[byIDGen[readmodels.PaymentView], *byIDGen[readmodels.PaymentView]]) *PaymentViews {
	return &PaymentViews{sp: sp}
}

func paymentID(v *readmodels.PaymentView) uuid.UUID { return v.ID }

// Checkpoint is the position up to which the payments projection has
// committed.
func (v *PaymentViews) Checkpoint(context.Context) (uint64, error) {
	return v.sp.gen().checkpoint.Load(), nil
}

// Payment returns the payment id.
func (v *PaymentViews) Payment(_ context.Context, id uuid.UUID) (readmodels.PaymentView, bool, error) {
	p, ok := v.sp.gen().get(id)
	return p, ok, nil
}

// Commit stores one batch of the payments projection atomically and
// durably, then publishes it to readers.
func (v *PaymentViews) Commit(_ context.Context, c projections.PaymentsCommit) error {
	return commitByID(v.sp, c.From, c.To, c.Payments, paymentID, viewcodec.EncodePayment)
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
