package kafka_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/infra/kafka"
)

// inbox records the commands a router dispatched.
type inbox struct {
	mu    sync.Mutex
	msgs  []commands.Msg
	cmds  []commands.Command
	calls map[uuid.UUID]int
}

func newInbox() *inbox { return &inbox{calls: map[uuid.UUID]int{}} }

func (in *inbox) handle(_ context.Context, msg commands.Msg, cmd commands.Command) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.msgs = append(in.msgs, msg)
	in.cmds = append(in.cmds, cmd)
	in.calls[msg.ID]++
	return nil
}

func (in *inbox) distinct() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.calls)
}

func (in *inbox) router(types ...string) *commands.Router {
	r := commands.NewRouter()
	for _, typ := range types {
		r.Handle(typ, in.handle)
	}
	return r
}

func TestCommandsRoundTripThroughRouter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 3)
	in := newInbox()
	router := in.router(commands.TypeHoldSeats, commands.TypeSellSeats, commands.TypeReleaseSeats, commands.TypeRefundPayment)
	runner := kafka.NewRunner(e.cfg, testRegistry(), e.log, nil)
	stopEvents := run(t, func(ctx context.Context) error { return runner.RunCommands(ctx, router, "events") })
	stopPayments := run(t, func(ctx context.Context) error { return runner.RunCommands(ctx, router, "payments") })
	sender, err := kafka.NewSender(e.cfg, "bookings", e.log)
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	event, booking := uuid.New(), uuid.New()
	type sent struct {
		msg commands.Msg
		cmd commands.Command
	}
	msg := func() commands.Msg {
		return commands.Msg{ID: uuid.New(), CorrelationID: booking, Meta: map[string]string{"traceparent": traceparent}}
	}
	flow := []sent{
		{msg(), commands.HoldSeats{EventID: event, BookingID: booking, TicketType: "standard", Quantity: 2}},
		{msg(), commands.ReleaseSeats{EventID: event, BookingID: booking}},
		{msg(), commands.HoldSeats{EventID: event, BookingID: booking, TicketType: "vip", Quantity: 1}},
		{msg(), commands.SellSeats{EventID: event, BookingID: booking}},
		{msg(), commands.RefundPayment{PaymentID: uuid.New(), BookingID: booking, Reason: "cancelled"}},
	}
	// Other bookings' holds on the same event spread over the partitions.
	for range 30 {
		other := uuid.New()
		if err := sender.Send(ctx, commands.Msg{ID: uuid.New(), CorrelationID: other}, commands.HoldSeats{EventID: event, BookingID: other, Quantity: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range flow {
		if err := sender.Send(ctx, s.msg, s.cmd); err != nil {
			t.Fatal(err)
		}
	}
	// A redelivered command (same message id) is skipped.
	if err := sender.Send(ctx, flow[0].msg, flow[0].cmd); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "every command dispatched", func() bool { return in.distinct() >= 30+len(flow) })
	time.Sleep(200 * time.Millisecond) // room for the duplicate to show up
	for _, stop := range []func() error{stopEvents, stopPayments} {
		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	}

	in.mu.Lock()
	defer in.mu.Unlock()
	var got []sent
	for i, m := range in.msgs {
		if m.CorrelationID == booking {
			got = append(got, sent{m, in.cmds[i]})
		}
	}
	// The refund travels on another topic; the events service's commands
	// of one booking arrive in the order sent.
	var eventsFlow, gotEvents []sent
	for _, s := range flow {
		if commands.Service(s.cmd.CommandType()) == "events" {
			eventsFlow = append(eventsFlow, s)
		}
	}
	for _, s := range got {
		if commands.Service(s.cmd.CommandType()) == "events" {
			gotEvents = append(gotEvents, s)
		}
	}
	if !reflect.DeepEqual(gotEvents, eventsFlow) {
		t.Errorf("the booking's commands to events arrived as\n%+v\nwant\n%+v", gotEvents, eventsFlow)
	}
	if len(got) != len(flow) {
		t.Errorf("%d of the booking's commands dispatched, want %d", len(got), len(flow))
	}
	if n := in.calls[flow[0].msg.ID]; n != 1 {
		t.Errorf("the redelivered command was dispatched %d times, want once", n)
	}
}

// TestCommandsSurviveBrokerRestart stops and restarts the broker while
// commands stream through it: every send that was acknowledged is
// consumed, by a handler that counts distinct ids.
func TestCommandsSurviveBrokerRestart(t *testing.T) {
	e := newEnv(t, 3)
	script := filepath.Join(moduleRoot(t), "scripts", "testenv.sh")
	broker := func(action string) time.Duration {
		start := time.Now()
		out, err := exec.Command("bash", script, action).CombinedOutput()
		if err != nil {
			t.Fatalf("testenv.sh %s: %v\n%s", action, err, out)
		}
		return time.Since(start)
	}
	t.Cleanup(func() { _, _ = exec.Command("bash", script, "kafka-start").CombinedOutput() })

	in := newInbox()
	runner := kafka.NewRunner(e.cfg, testRegistry(), e.log, nil)
	stopConsumer := run(t, func(ctx context.Context) error {
		return runner.RunCommands(ctx, in.router(commands.TypeHoldSeats), "events")
	})
	sender, err := kafka.NewSender(e.cfg, "bookings", e.log)
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()

	var (
		mu             sync.Mutex
		acked          []uuid.UUID
		failed         atomic.Int64
		restartedAt    atomic.Int64 // unix nanos, once the broker is back
		firstAckAfter  atomic.Int64 // nanos from restartedAt to the first ack after it
		ackedAfterBack atomic.Int64
		stopSending    = make(chan struct{})
		senders        sync.WaitGroup
	)
	event := uuid.New()
	for range 4 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for {
				select {
				case <-stopSending:
					return
				default:
				}
				booking := uuid.New()
				msg := commands.Msg{ID: uuid.New(), CorrelationID: booking}
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				err := sender.Send(ctx, msg, commands.HoldSeats{EventID: event, BookingID: booking, Quantity: 1})
				cancel()
				if err != nil {
					if !errors.Is(err, kafka.ErrNotDelivered) {
						t.Errorf("a failed send does not say it was not delivered: %v", err)
					}
					failed.Add(1)
					continue
				}
				mu.Lock()
				acked = append(acked, msg.ID)
				mu.Unlock()
				if back := restartedAt.Load(); back != 0 {
					firstAckAfter.CompareAndSwap(0, time.Now().UnixNano()-back)
					ackedAfterBack.Add(1)
				}
			}
		}()
	}
	time.Sleep(time.Second)
	stopTook := broker("kafka-stop")
	time.Sleep(time.Second)
	startTook := broker("kafka-start")
	restartedAt.Store(time.Now().UnixNano())
	// Sends go on until enough of them are acknowledged after the restart.
	// How soon that happens depends on the broker and on the client
	// noticing it is back (up to deliveryTimeout for a producer wedged
	// without a sign); the limit only keeps a broken sender from hanging
	// the test.
	recovered := true
	for deadline := time.Now().Add(90 * time.Second); ackedAfterBack.Load() < 200; {
		if time.Now().After(deadline) {
			recovered = false
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stopSending)
	senders.Wait()

	mu.Lock()
	sent := append([]uuid.UUID(nil), acked...)
	mu.Unlock()
	eventually(t, 60*time.Second, "every acknowledged command consumed", func() bool {
		in.mu.Lock()
		defer in.mu.Unlock()
		for _, id := range sent {
			if in.calls[id] == 0 {
				return false
			}
		}
		return true
	})
	if err := stopConsumer(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if !recovered {
		t.Errorf("%d sends acknowledged in the 90s after the broker came back", ackedAfterBack.Load())
	}
	t.Logf("broker stop took %v, start %v; first send acknowledged %v after the broker was back; %d sends acknowledged (%d after the restart), %d failed; handler saw %d distinct ids in %d calls",
		stopTook.Round(time.Millisecond), startTook.Round(time.Millisecond), time.Duration(firstAckAfter.Load()).Round(time.Millisecond),
		len(sent), ackedAfterBack.Load(), failed.Load(), len(in.calls), len(in.msgs))
}
