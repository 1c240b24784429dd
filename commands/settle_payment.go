package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/payment"
)

// SettlePayment is the provider's verdict on a payment.
type SettlePayment struct {
	PaymentID     uuid.UUID
	Succeeded     bool
	GatewayRef    string
	FailureReason string
}

// Settle records the provider's verdict. A repeated notification changes
// nothing.
func (h *Payments) Settle(ctx context.Context, msg Msg, cmd SettlePayment) (PaymentState, error) {
	return h.change(ctx, cmd.PaymentID, msg, func(p *payment.Payment, now time.Time) error {
		if cmd.Succeeded {
			return p.Succeed(cmd.GatewayRef, now)
		}
		return p.Fail(cmd.GatewayRef, cmd.FailureReason, now)
	})
}
