package commands

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/booking"
)

// DueHolds lists bookings awaiting payment whose hold ran out by now. The
// booking read model answers it from an index, and keeps it durably with
// its checkpoint: that is what makes deadlines survive a restart.
type DueHolds interface {
	DueHolds(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error)
}

// Expirer expires the holds that ran out, including those that ran out
// while the process was down. It is part of the booking saga: the expiry it
// records leads the saga to release the seats.
type Expirer struct {
	bookings *Bookings
	due      DueHolds
	log      *slog.Logger
	// Every is how often it looks for holds that ran out.
	Every time.Duration
}

// NewExpirer returns an expirer of bookings whose holds due lists.
func NewExpirer(bookings *Bookings, due DueHolds, log *slog.Logger) *Expirer {
	return &Expirer{bookings: bookings, due: due, log: log, Every: 250 * time.Millisecond}
}

// Run expires due holds until ctx is done.
func (x *Expirer) Run(ctx context.Context) error {
	t := time.NewTicker(x.Every)
	defer t.Stop()
	for {
		if _, err := x.ExpireDue(ctx); err != nil && ctx.Err() == nil {
			x.log.Warn("expiring holds", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// ExpireDue expires every hold due now and reports how many it looked at.
func (x *Expirer) ExpireDue(ctx context.Context) (int, error) {
	ids, err := x.due.DueHolds(ctx, x.bookings.repo.clock(), 1000)
	if err != nil {
		return 0, err
	}
	var firstErr error
	for _, id := range ids {
		// One deadline, one message: a second instance (or a second pass
		// before the read model caught up) sends the same message again,
		// which the booking recognises.
		msg := Msg{ID: uuid.NewSHA1(id, []byte("expire")), CorrelationID: id}
		err := x.bookings.ExpireBooking(ctx, msg, id)
		var notDue *booking.NotDueError
		if err != nil && !errors.As(err, &notDue) && firstErr == nil {
			firstErr = err
		}
	}
	return len(ids), firstErr
}
