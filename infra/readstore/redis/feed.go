package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ticketd/ticketing/infra/readstore/viewcodec"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

var (
	_ readmodels.PaymentFeed       = (*PaymentFeed)(nil)
	_ projections.PaymentPublisher = (*PaymentFeed)(nil)
)

// PaymentFeed carries payment states between processes over Redis
// pub/sub: the payments projector publishes each state it stored on the
// payment's own channel, and every process that serves status streams
// subscribes to the channels of the payments being watched.
//
// A process holds one subscription connection, whatever the number of
// streams: each payment's channel is subscribed while at least one local
// subscriber watches it, and the receiving goroutine hands each state to
// the local subscribers through a one-slot mailbox that a newer state
// replaces. So neither Publish nor the receiver ever waits for a slow
// subscriber, and a subscriber that falls behind skips intermediate
// states but always ends up with the latest.
//
// Subscribe returns only once Redis has confirmed the subscription (a
// PING sent after SUBSCRIBE on the same connection has come back), so a
// state stored after a subscriber's Subscribe returns is delivered to it:
// readmodels.PaymentQueries.Watch subscribes, then reads, and misses
// nothing in between. Pub/sub itself is at-most-once: when the connection
// breaks (or stops answering health checks), the feed opens a new one,
// subscribes again, and then re-reads every watched payment from the
// store and delivers it, so a state published while it was away still
// arrives. Subscribers order states by Position and drop stale ones.
type PaymentFeed struct {
	store     *Store
	client    goredis.UniversalClient
	channelOf string // the channel name of a payment, without its id
	logger    *slog.Logger
	health    time.Duration
	timeout   time.Duration

	mu     sync.Mutex
	closed bool
	subs   map[uuid.UUID]map[*feedSub]struct{}
	// ps is the subscription connection, nil until the first Subscribe;
	// recvCtx, stop and done belong to its receiving goroutine.
	ps      *goredis.PubSub
	recvCtx context.Context
	stop    context.CancelFunc
	done    chan struct{}
	// Barriers: sent is the sequence number of the last PING sent on
	// ps, acked of the last PONG received (PINGs are answered in order,
	// after every command sent before them). ackCh is closed and
	// replaced whenever acked moves. healthSeq is the PING of the last
	// health check, resync the PING after which watched payments are
	// re-read (0: none).
	sent, acked, healthSeq, resync uint64
	ackCh                          chan struct{}
}

type feedSub struct {
	ch chan readmodels.PaymentView
}

func newPaymentFeed(s *Store) *PaymentFeed {
	return &PaymentFeed{
		store: s, client: s.client, channelOf: s.prefix + ":feed:payment:", logger: s.logger,
		health: s.opts.FeedHealthInterval, timeout: s.opts.SubscribeTimeout,
		subs: map[uuid.UUID]map[*feedSub]struct{}{}, ackCh: make(chan struct{}),
	}
}

func (f *PaymentFeed) channel(id uuid.UUID) string { return f.channelOf + id.String() }

// Publish sends v to the subscribers of its payment, in every process,
// without waiting for any of them.
func (f *PaymentFeed) Publish(ctx context.Context, v readmodels.PaymentView) error {
	if f.store.closed.Load() {
		return ErrClosed
	}
	data, err := viewcodec.EncodePayment(&v)
	if err != nil {
		return fmt.Errorf("redis: publish payment %s: %w", v.ID, err)
	}
	if err := f.client.Publish(ctx, f.channel(v.ID), data).Err(); err != nil {
		return fmt.Errorf("redis: publish payment %s: %w", v.ID, err)
	}
	return nil
}

// Subscribe returns the states of payment id published from now on, in
// any process. It returns once Redis has confirmed the subscription. The
// channel is closed when cancel is called, ctx is done or the store is
// closed; cancel may be called more than once.
func (f *PaymentFeed) Subscribe(ctx context.Context, id uuid.UUID) (<-chan readmodels.PaymentView, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	s := &feedSub{ch: make(chan readmodels.PaymentView, 1)}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, nil, ErrClosed
	}
	f.startLocked()
	subs := f.subs[id]
	if subs == nil {
		subs = map[*feedSub]struct{}{}
		f.subs[id] = subs
	}
	subs[s] = struct{}{}
	// The writes are bounded by the feed's own context, not the
	// caller's: a caller giving up must not break the shared connection.
	wctx, cancel := context.WithTimeout(f.recvCtx, f.timeout)
	var err error
	if len(subs) == 1 {
		err = f.ps.Subscribe(wctx, f.channel(id))
	}
	var seq uint64
	if err == nil {
		seq, err = f.pingLocked(wctx)
	}
	cancel()
	if err != nil {
		// The connection may have been replaced under go-redis's feet,
		// losing messages: start afresh, re-reading what is watched, and
		// wait for the new connection instead (it subscribes to id too).
		f.replaceLocked(err)
		seq = f.resync
	}
	f.mu.Unlock()

	var once sync.Once
	remove := func() { once.Do(func() { f.remove(id, s) }) }
	if err := f.wait(ctx, seq); err != nil {
		remove()
		return nil, nil, fmt.Errorf("redis: subscribe to payment %s: %w", id, err)
	}
	stop := context.AfterFunc(ctx, remove)
	return s.ch, func() { stop(); remove() }, nil
}

// remove ends subscription s, unsubscribing the payment's channel when it
// was the last local one.
func (f *PaymentFeed) remove(id uuid.UUID, s *feedSub) {
	f.mu.Lock()
	defer f.mu.Unlock()
	subs, ok := f.subs[id]
	if !ok {
		return // closed with the store
	}
	if _, ok := subs[s]; !ok {
		return
	}
	delete(subs, s)
	close(s.ch)
	if len(subs) > 0 {
		return
	}
	delete(f.subs, id)
	// Under f.mu, so that it reaches the server before any later
	// SUBSCRIBE of the same channel.
	ctx, cancel := context.WithTimeout(f.recvCtx, f.timeout)
	defer cancel()
	if err := f.ps.Unsubscribe(ctx, f.channel(id)); err != nil {
		f.logger.Debug("payment feed: unsubscribe failed; the connection will be replaced", "payment_id", id, "err", err)
	}
}

// wait waits until the PING seq has come back.
func (f *PaymentFeed) wait(ctx context.Context, seq uint64) error {
	timer := time.NewTimer(f.timeout)
	defer timer.Stop()
	for {
		f.mu.Lock()
		acked, ch, closed := f.acked, f.ackCh, f.closed
		f.mu.Unlock()
		switch {
		case closed:
			return ErrClosed
		case acked >= seq:
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("the server did not confirm the subscription within %s", f.timeout)
		}
	}
}

// startLocked opens the subscription connection and its receiver, once.
func (f *PaymentFeed) startLocked() {
	if f.ps != nil {
		return
	}
	f.recvCtx, f.stop = context.WithCancel(context.Background())
	f.done = make(chan struct{})
	f.ps = f.client.Subscribe(f.recvCtx)
	go f.receive(f.recvCtx)
}

// pingLocked sends the next barrier PING on the connection.
func (f *PaymentFeed) pingLocked(ctx context.Context) (uint64, error) {
	f.sent++
	return f.sent, f.ps.Ping(ctx, "b"+strconv.FormatUint(f.sent, 10))
}

// replaceLocked replaces the subscription connection with a new one,
// subscribed to every watched payment, and arranges for the watched
// payments to be read again once it is live.
func (f *PaymentFeed) replaceLocked(reason error) {
	if f.closed {
		return
	}
	old := f.ps
	channels := make([]string, 0, len(f.subs))
	for id := range f.subs {
		channels = append(channels, f.channel(id))
	}
	f.ps = f.client.Subscribe(f.recvCtx, channels...)
	f.healthSeq = 0
	// If this PING fails its PONG never comes, but any later one (a
	// health check) is as good: it follows the new subscriptions too.
	f.resync, _ = f.pingLocked(f.recvCtx)
	f.logger.Warn("payment feed: subscription connection replaced", "reason", reason, "payments", len(channels))
	// Closing ends a receive in progress on it; the receiver then reads
	// from the new one.
	_ = old.Close()
}

// receive reads the subscription connection until ctx is done.
func (f *PaymentFeed) receive(ctx context.Context) {
	defer close(f.done)
	backoff := 50 * time.Millisecond
	for {
		f.mu.Lock()
		ps := f.ps
		f.mu.Unlock()
		msg, err := ps.ReceiveTimeout(ctx, f.health)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			wait := time.Duration(0)
			f.mu.Lock()
			switch {
			case ps != f.ps:
				// Replaced meanwhile: go on with the new one.
			case isTimeout(err) && (f.healthSeq == 0 || f.acked >= f.healthSeq):
				// Quiet: check that the connection is alive.
				seq, perr := f.pingLocked(ctx)
				if perr != nil {
					f.replaceLocked(perr)
				} else {
					f.healthSeq = seq
				}
			case isTimeout(err):
				f.replaceLocked(errors.New("no answer to a health check"))
			default:
				f.replaceLocked(err)
				wait, backoff = backoff, min(2*backoff, 2*time.Second)
			}
			f.mu.Unlock()
			if wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
			continue
		}
		backoff = 50 * time.Millisecond
		switch m := msg.(type) {
		case *goredis.Message:
			f.deliver(m)
		case *goredis.Pong:
			f.ack(ctx, m.Payload)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ack records the PONG of a barrier PING, and re-reads the watched
// payments when it is the one after a new connection.
func (f *PaymentFeed) ack(ctx context.Context, payload string) {
	seq, err := strconv.ParseUint(strings.TrimPrefix(payload, "b"), 10, 64)
	if err != nil || !strings.HasPrefix(payload, "b") {
		return
	}
	f.mu.Lock()
	if seq > f.acked {
		f.acked = seq
		close(f.ackCh)
		f.ackCh = make(chan struct{})
	}
	var ids []uuid.UUID
	if f.resync != 0 && f.acked >= f.resync {
		f.resync = 0
		for id := range f.subs {
			ids = append(ids, id)
		}
	}
	f.mu.Unlock()
	if len(ids) > 0 {
		go f.reread(ctx, ids)
	}
}

// reread delivers the stored state of every payment in ids, which may
// have changed while the feed had no connection.
func (f *PaymentFeed) reread(ctx context.Context, ids []uuid.UUID) {
	views, err := f.store.payments.Payments(ctx, ids)
	if err != nil {
		f.logger.Warn("payment feed: watched payments not read again after a reconnection", "err", err)
		return
	}
	for _, v := range views {
		f.hand(v)
	}
}

func (f *PaymentFeed) deliver(m *goredis.Message) {
	v, err := viewcodec.DecodePayment([]byte(m.Payload))
	if err != nil || f.channel(v.ID) != m.Channel {
		f.logger.Warn("payment feed: message dropped", "channel", m.Channel, "err", err)
		return
	}
	f.hand(v)
}

// hand puts v in the mailbox of every local subscriber of its payment.
func (f *PaymentFeed) hand(v readmodels.PaymentView) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs[v.ID] {
		// Drop an older state the subscriber has not read. Senders hold
		// f.mu, so the slot is free afterwards and the send cannot block.
		select {
		case <-s.ch:
		default:
		}
		s.ch <- v
	}
}

// Subscribers is how many subscriptions are open in this process, for
// tests and metrics.
func (f *PaymentFeed) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, subs := range f.subs {
		n += len(subs)
	}
	return n
}

// close ends every subscription and the receiver.
func (f *PaymentFeed) close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	for _, subs := range f.subs {
		for s := range subs {
			close(s.ch)
		}
	}
	f.subs = map[uuid.UUID]map[*feedSub]struct{}{}
	close(f.ackCh)
	f.ackCh = make(chan struct{})
	// Once closed is set no connection replaces ps, so ps is the last.
	ps, stop, done := f.ps, f.stop, f.done
	f.mu.Unlock()
	if ps == nil {
		return
	}
	stop()
	_ = ps.Close()
	<-done
}
