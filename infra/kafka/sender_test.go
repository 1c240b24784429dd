package kafka_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/infra/kafka"
)

// unreachable is a sender configuration whose broker never answers, so
// that every send stays pending until something fails it.
func unreachable(t *testing.T) kafka.Config {
	t.Helper()
	return kafka.Config{Brokers: "127.0.0.1:1", TopicPrefix: "unreachable", Partitions: 1, ReplicationFactor: 1, ClientID: "ticketd-test"}
}

// A producer that ignored a partition's new leader is replaced once per
// burst of such hints, and the sends waiting on it fail at once as not
// delivered (for their callers to send again), instead of waiting out the
// delivery timeout or, worse, their contexts.
func TestSenderReplacesAProducerThatDroppedALeader(t *testing.T) {
	sender, err := kafka.NewSender(unreachable(t), "bookings", testLogger(t, slog.LevelWarn))
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()

	const pending = 3
	errs := make(chan error, pending)
	for range pending {
		go func() { errs <- sendHold(sender) }()
	}
	eventually(t, 10*time.Second, "the sends are queued on the first producer", func() bool { return kafka.SenderProduced(sender) == pending })

	began := time.Now()
	gen := kafka.SenderGeneration(sender)
	var hints sync.WaitGroup
	for range 4 { // one hint per partition, as librdkafka logs them
		hints.Go(func() { kafka.DropLeader(sender, gen) })
	}
	hints.Wait()
	if got := kafka.SenderGeneration(sender); got != gen+1 {
		t.Fatalf("after a burst of hints the sender made %d producers, want %d", got, gen+1)
	}
	purged := func(what string, errs <-chan error) {
		t.Helper()
		select {
		case err := <-errs:
			var kerr ck.Error
			if !errors.Is(err, kafka.ErrNotDelivered) || !errors.As(err, &kerr) || kerr.Code() != ck.ErrPurgeQueue {
				t.Errorf("%s failed with %v, want not delivered (purged)", what, err)
			}
		case <-time.After(10 * time.Second): // below the 15 s delivery timeout
			t.Fatalf("%s still waits %v after the replacement", what, time.Since(began).Round(time.Millisecond))
		}
	}
	for range pending {
		purged("a send pending on the replaced producer", errs)
	}

	// The replacement is current: a send now is queued on it, and a hint
	// about it replaces it in turn.
	done := make(chan error, 1)
	go func() { done <- sendHold(sender) }()
	eventually(t, 10*time.Second, "the send is queued on the second producer", func() bool { return kafka.SenderProduced(sender) == pending+1 })
	began = time.Now()
	kafka.DropLeader(sender, gen+1)
	if got := kafka.SenderGeneration(sender); got != gen+2 {
		t.Fatalf("the sender made %d producers, want %d", got, gen+2)
	}
	purged("the send pending on the second producer", done)
}

// sendHold sends a HoldSeats command.
func sendHold(sender *kafka.Sender) error {
	booking := uuid.New()
	return sender.Send(context.Background(), commands.Msg{ID: uuid.New(), CorrelationID: booking},
		commands.HoldSeats{EventID: uuid.New(), BookingID: booking, Quantity: 1})
}

// Close fails the sends still pending rather than leaving them waiting.
func TestSenderCloseFailsPendingSends(t *testing.T) {
	sender, err := kafka.NewSender(unreachable(t), "bookings", testLogger(t, slog.LevelWarn))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sendHold(sender) }()
	eventually(t, 10*time.Second, "the send is queued", func() bool { return kafka.SenderProduced(sender) == 1 })
	sender.Close()
	select {
	case err := <-done:
		if !errors.Is(err, kafka.ErrNotDelivered) {
			t.Fatalf("send pending at Close: %v, want not delivered", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a send pending at Close still waits after Close returned")
	}
}
