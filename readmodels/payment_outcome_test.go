package readmodels_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/payment"
	"github.com/ticketd/ticketing/readmodels"
)

type failingPayments struct{ err error }

func (f failingPayments) Payment(context.Context, uuid.UUID) (readmodels.PaymentView, bool, error) {
	return readmodels.PaymentView{}, false, f.err
}

func TestPaymentOutcomeTellsStatusAndWhenItWasReached(t *testing.T) {
	ctx := context.Background()
	id := uuid.New()
	settled := time.Date(2026, 11, 26, 12, 0, 3, 0, time.UTC)
	q := readmodels.NewPaymentQueries(payments{id: {ID: id, Status: payment.Succeeded, CreatedAt: settled.Add(-3 * time.Second), UpdatedAt: settled}}, nil)

	status, at, found, err := q.PaymentOutcome(ctx, id)
	if err != nil || !found || status != payment.Succeeded || !at.Equal(settled) {
		t.Fatalf("PaymentOutcome = %s, %v, %v, %v; want succeeded at %v", status, at, found, err, settled)
	}
	if _, _, found, err := q.PaymentOutcome(ctx, uuid.New()); found || err != nil {
		t.Fatalf("unknown payment: found %v, err %v; want not found and no error (an attempt never started)", found, err)
	}
	boom := errors.New("redis down")
	if _, _, _, err := readmodels.NewPaymentQueries(failingPayments{boom}, nil).PaymentOutcome(ctx, id); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the reader's error: not knowing is not 'not found'", err)
	}
}
