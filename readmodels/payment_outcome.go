package readmodels

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/payment"
)

// PaymentOutcome returns payment id's status and when it was reached, and
// false for a payment the read model does not know. The hold expirer asks
// it so as not to expire a booking whose payment succeeded in time.
func (q *PaymentQueries) PaymentOutcome(ctx context.Context, id uuid.UUID) (payment.Status, time.Time, bool, error) {
	v, ok, err := q.payments.Payment(ctx, id)
	if err != nil {
		return "", time.Time{}, false, fmt.Errorf("readmodels: get payment %s: %w", id, err)
	}
	if !ok {
		return "", time.Time{}, false, nil
	}
	return v.Status, v.UpdatedAt, true, nil
}
