package commands

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/payment"
)

// Gateway is the payment provider. Charges settle asynchronously: the
// provider later calls the webhook with its verdict. Both calls are
// idempotent by payment id, so the processor may repeat them.
type Gateway interface {
	Charge(ctx context.Context, c Charge) (ChargeResult, error)
	Refund(ctx context.Context, r RefundOrder) (gatewayRef string, err error)
}

// Charge asks the provider to take Amount with Token.
type Charge struct {
	PaymentID uuid.UUID
	Amount    int64
	Currency  string
	Token     string
}

// ChargeResult is the provider's immediate answer: accepted for
// settlement, or declined on the spot (an unusable token, say).
type ChargeResult struct {
	Declined   bool
	Reason     string
	GatewayRef string
}

// RefundOrder asks the provider to give a settled payment's money back.
type RefundOrder struct {
	PaymentID  uuid.UUID
	GatewayRef string
	Amount     int64
	Currency   string
}

// PaymentProcessor is the payments service's process manager: it charges
// the provider for each requested payment and carries out each requested
// refund.
type PaymentProcessor struct {
	payments *Payments
	gateway  Gateway
}

// NewPaymentProcessor returns the processor.
func NewPaymentProcessor(payments *Payments, gateway Gateway) *PaymentProcessor {
	return &PaymentProcessor{payments: payments, gateway: gateway}
}

// Name identifies the processor's subscription.
func (*PaymentProcessor) Name() string { return "payment-processor" }

// Filter selects the records the processor reacts to.
func (*PaymentProcessor) Filter() es.Filter {
	return es.Filter{Types: []string{payment.TypeRequested, payment.TypeRefundRequested}}
}

// React handles one record.
func (pp *PaymentProcessor) React(ctx context.Context, rec *es.Record, p es.Payload) error {
	switch e := p.(type) {
	case payment.Requested:
		res, err := pp.gateway.Charge(ctx, Charge{PaymentID: e.PaymentID, Amount: e.Amount, Currency: e.Currency, Token: e.Token})
		if err != nil {
			return fmt.Errorf("charge payment %s: %w", e.PaymentID, err)
		}
		if res.Declined {
			_, err = pp.payments.Settle(ctx, Caused(rec, "declined"), SettlePayment{PaymentID: e.PaymentID, GatewayRef: res.GatewayRef, FailureReason: res.Reason})
		}
		return err
	case payment.RefundRequested:
		pay, err := pp.payments.load(ctx, rec.AggregateID)
		if err != nil {
			return err
		}
		if pay.Status() != payment.RefundPending {
			return nil
		}
		ref, err := pp.gateway.Refund(ctx, RefundOrder{PaymentID: pay.ID(), GatewayRef: pay.GatewayRef(), Amount: pay.Amount(), Currency: pay.Currency()})
		if err != nil {
			return fmt.Errorf("refund payment %s: %w", pay.ID(), err)
		}
		return pp.payments.CompleteRefund(ctx, Caused(rec, "refunded"), pay.ID(), ref)
	}
	return nil
}
