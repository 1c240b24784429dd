package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/payment"
)

// RefundPayment asks the payments service to give a payment's money back.
type RefundPayment struct {
	PaymentID uuid.UUID
	BookingID uuid.UUID
	Reason    string
}

// Refund records the refund request; the payment processor then asks the
// provider and records the completion.
func (h *Payments) Refund(ctx context.Context, msg Msg, cmd RefundPayment) error {
	_, err := h.change(ctx, cmd.PaymentID, msg, func(p *payment.Payment, now time.Time) error {
		return p.RequestRefund(cmd.Reason, now)
	})
	return err
}

// CompleteRefund records that the provider gave the money back.
func (h *Payments) CompleteRefund(ctx context.Context, msg Msg, paymentID uuid.UUID, gatewayRef string) error {
	_, err := h.change(ctx, paymentID, msg, func(p *payment.Payment, now time.Time) error {
		return p.CompleteRefund(gatewayRef, now)
	})
	return err
}
