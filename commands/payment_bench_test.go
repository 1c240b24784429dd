package commands_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/booking"
	"github.com/ticketd/ticketing/infra/eventstore/embedded"
)

// payableEverywhere is a booking lookup that finds every booking held and
// payable: the benchmark measures the payments service alone.
type payableEverywhere struct{ user uuid.UUID }

func (p payableEverywhere) PayableBooking(context.Context, uuid.UUID) (commands.PayableBooking, bool, error) {
	return commands.PayableBooking{UserID: p.user, Status: booking.StatusAwaitingPayment, Amount: 150_000, Currency: "IDR", ExpiresAt: time.Now().Add(time.Hour)}, true, nil
}

// BenchmarkProcessPayment measures POST /payment/process's command: each
// call starts the first payment attempt of another booking, on the
// embedded store with fsync on, from 1 and 64 concurrent callers. It
// reports payments started per second.
func BenchmarkProcessPayment(b *testing.B) {
	for _, clients := range []int{1, 64} {
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			st, err := embedded.Open(b.TempDir(), embedded.Options{Logger: log})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			user := uuid.New()
			payments := commands.NewPayments(commands.NewRepository(st, commands.NewRegistry(), time.Now), payableEverywhere{user})
			ctx := context.Background()
			rate := concurrently(b, clients, func() error {
				bookingID := uuid.New()
				_, err := payments.Process(ctx, commands.Msg{ID: uuid.New(), CorrelationID: bookingID}, commands.ProcessPayment{BookingID: bookingID, UserID: user, Token: "tok_success"})
				return err
			})
			b.ReportMetric(rate, "payments/s")
		})
	}
}
