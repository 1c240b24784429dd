package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Booking statuses as the poller tracks them.
const (
	stUnknown uint8 = iota // not seen in a listing yet
	stPending
	stAwaiting
	stRejected
	stConfirmed
	stExpired
	stCancelled
)

var statusNames = [...]string{"unseen", "pending", "awaiting_payment", "rejected", "confirmed", "expired", "cancelled"}

func parseStatus(s string) uint8 {
	for i, n := range statusNames[1:] {
		if n == s {
			return uint8(i + 1)
		}
	}
	return stUnknown
}

// flash is the state of one flash-sale run.
type flash struct {
	cfg    *config
	d      *dialer
	rep    *Report
	out    io.Writer
	run    string
	event  uuid.UUID
	tokens []string

	// Per request i (customer i % customers): its booking and what the
	// poller last saw of it.
	accepted []bool
	ids      []uuid.UUID
	status   []uint8
	stamp    []int64 // updated_at, Unix ns
	reason   []string
	paid     []bool

	customers []*customer
}

// customer is what the poller keeps per customer: its bookings and the
// pages of its listing. Once every booking has been seen, the set is fixed
// and the keyset cursors of the pages stay valid, so a round re-reads only
// the pages that still hold an unsettled booking.
type customer struct {
	token  string
	ids    map[uuid.UUID]int32
	unseen int
	pages  []listPage
	open   int
	doneAt time.Time
}

type listPage struct {
	cursor string
	reqs   []int32
}

func runFlash(ctx context.Context, cfg *config, out io.Writer) (*Report, error) {
	pollers := min(cfg.Customers, 16)
	d, err := newDialer(cfg.URL, cfg.Transport, cfg.Clients+pollers+16, cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	defer d.closeIdle()
	f := &flash{cfg: cfg, d: d, rep: newReport(cfg), out: out, run: uuid.NewString()[:8]}
	f.rep.Flash = &FlashReport{}
	m := &meter{rep: f.rep, serverPID: cfg.ServerPID}

	m.begin("setup")
	err = f.setup(ctx)
	m.end()
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	fmt.Fprintf(out, "setup: event %s, %d customers logged in\n", f.event, len(f.tokens))

	prof := newProfiler(cfg, out)
	defer func() {
		for _, file := range prof.wait() {
			fmt.Fprintln(out, "profile written:", file)
		}
	}()
	m.begin("create")
	prof.start(ctx, "create")
	t0 := time.Now()
	f.rep.Flash.Create = f.create(ctx)
	createEnd := time.Now()
	m.end()
	fmt.Fprintf(out, "create: %d/%d accepted in %.3fs\n", f.rep.Flash.Create.Accepted, cfg.Requests, createEnd.Sub(t0).Seconds())

	m.begin("decide")
	f.indexCustomers()
	decide := f.settle(ctx, t0, createEnd, func(i int) bool { return f.status[i] <= stPending }, 10*time.Millisecond)
	m.end()
	f.rep.Flash.Decide = decide
	decided := decide.Statuses[statusNames[stAwaiting]] + decide.Statuses[statusNames[stRejected]]
	settleErr := ctx.Err()

	held := 0
	for i := range f.status {
		if f.accepted[i] && f.status[i] == stAwaiting {
			held++
		}
	}
	accepted := f.rep.Flash.Create.Accepted
	expected := min(accepted, cfg.Capacity/cfg.Quantity)
	f.rep.Flash.Held, f.rep.Flash.ExpectedHeld = held, expected
	f.rep.check("every booking decided", decided == accepted, "%d of %d accepted bookings held or rejected, statuses %s", decided, accepted, sortedMap(decide.Statuses))
	f.rep.check("held == min(capacity, requests)", held == expected, "%d bookings hold seats, expected min(%d accepted, %d seats / %d) = %d", held, accepted, cfg.Capacity, cfg.Quantity, expected)
	f.rep.check("every request accepted", accepted == cfg.Requests, "%d of %d booking requests answered 202 %s", accepted, cfg.Requests, sortedMap(f.rep.Flash.Create.Failed))

	if cfg.Pay && settleErr == nil {
		prof.wait()
		m.begin("pay")
		prof.start(ctx, "pay")
		tp := time.Now()
		pay := f.pay(ctx)
		payEnd := time.Now()
		m.end()
		f.rep.Flash.Pay = &pay
		fmt.Fprintf(out, "pay: %d/%d accepted in %.3fs\n", pay.Accepted, pay.Sent, payEnd.Sub(tp).Seconds())

		m.begin("confirm")
		confirm := f.settle(ctx, tp, payEnd, func(i int) bool { return f.paid[i] && f.status[i] == stAwaiting }, 25*time.Millisecond)
		m.end()
		confirmed := 0
		for i := range f.status {
			if f.paid[i] && f.status[i] == stConfirmed {
				confirmed++
			}
		}
		// Only the paid bookings count as confirmations.
		confirm.Count = confirmed
		confirm.PerSecondObserved = perSecond(confirmed, time.Duration(confirm.SecondsObserved*1e9))
		confirm.PerSecondStamped = perSecond(confirmed, time.Duration(confirm.SecondsStamped*1e9))
		f.rep.Flash.Confirm = &confirm
		f.rep.check("every hold paid", pay.Accepted == held, "%d of %d holds accepted for payment %s", pay.Accepted, held, sortedMap(pay.Failed))
		f.rep.check("every paid booking confirmed", confirmed == pay.Accepted, "%d of %d paid bookings confirmed", confirmed, pay.Accepted)
		held = 0
		for i := range f.status {
			if f.accepted[i] && (f.status[i] == stAwaiting || f.status[i] == stConfirmed) {
				held++
			}
		}
		f.rep.check("held or sold unchanged by paying", held == expected, "%d bookings hold or bought seats, expected %d", held, expected)
	}

	m.begin("check")
	avail, err := f.awaitAvailable(ctx, cfg.Capacity-held*cfg.Quantity)
	m.end()
	f.rep.Flash.Available = avail
	if err != nil {
		f.rep.check("available == capacity - held - sold", false, "GET /events/%s: %v", f.event, err)
	} else {
		f.rep.check("available == capacity - held - sold", avail == cfg.Capacity-held*cfg.Quantity, "available %d, capacity %d - %d seats held or sold = %d", avail, cfg.Capacity, held*cfg.Quantity, cfg.Capacity-held*cfg.Quantity)
	}
	f.rep.check("nothing oversold", held*cfg.Quantity <= cfg.Capacity && avail >= 0, "%d seats held or sold of %d", held*cfg.Quantity, cfg.Capacity)
	if settleErr != nil {
		return f.rep, fmt.Errorf("bookings still unsettled: %w", settleErr)
	}
	return f.rep, nil
}

func (f *flash) setup(ctx context.Context) error {
	c := f.d.conn()
	defer c.close()
	admin, err := login(c, f.cfg.AdminEmail, f.cfg.AdminPassword)
	if err != nil {
		return fmt.Errorf("admin login (set -admin-email and -admin-password): %w", err)
	}
	ev, err := createEvent(c, admin, "ticketbench flash "+f.run, f.cfg.Capacity, max(f.cfg.Quantity, 10))
	if err != nil {
		return err
	}
	f.event = ev.ID
	f.rep.Flash.EventID = ev.ID.String()
	f.tokens, err = setupCustomers(ctx, f.d, f.run, f.cfg.Customers)
	return err
}

// worker state shared by create and pay.
type batch struct {
	mu       sync.Mutex
	hist     hist
	failed   map[string]int
	firstErr string
}

func (b *batch) add(h *hist, failed map[string]int, firstErr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hist.merge(h)
	for k, v := range failed {
		b.failed[k] += v
	}
	if b.firstErr == "" {
		b.firstErr = firstErr
	}
}

// fire sends n requests from cfg.Clients workers; prepare fills request i
// and reports whether to send it, done handles its answer and reports
// whether it was accepted.
func (f *flash) fire(ctx context.Context, n int, prepare func(i int, req *request, scratch *[]byte) bool, done func(i int, resp *response) bool) Requests {
	var next atomic.Int64
	var acceptedN, sentN atomic.Int64
	b := &batch{failed: map[string]int{}}
	var wg sync.WaitGroup
	start := time.Now()
	for range f.cfg.Clients {
		wg.Go(func() {
			c := f.d.conn()
			defer c.close()
			h := new(hist)
			failed := map[string]int{}
			firstErr := ""
			var req request
			var resp response
			scratch := make([]byte, 0, 256)
			sent, acc := 0, 0
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					break
				}
				if !prepare(i, &req, &scratch) {
					continue
				}
				sent++
				t := time.Now()
				err := c.do(&req, &resp)
				el := time.Since(t)
				if err != nil {
					failed["transport"]++
					if firstErr == "" {
						firstErr = err.Error()
					}
					continue
				}
				h.record(el)
				if done(i, &resp) {
					acc++
					continue
				}
				failed[strconv.Itoa(resp.status)]++
				if firstErr == "" {
					firstErr = fmt.Sprintf("status %d: %.200s", resp.status, bytes.TrimSpace(resp.body))
				}
			}
			sentN.Add(int64(sent))
			acceptedN.Add(int64(acc))
			b.add(h, failed, firstErr)
		})
	}
	wg.Wait()
	el := time.Since(start)
	r := Requests{Sent: int(sentN.Load()), Accepted: int(acceptedN.Load()), FirstError: b.firstErr, Seconds: el.Seconds(), Latency: b.hist.latency()}
	r.PerSecond = perSecond(r.Accepted, el)
	if len(b.failed) > 0 {
		r.Failed = b.failed
	}
	return r
}

func (f *flash) create(ctx context.Context) Requests {
	n := f.cfg.Requests
	f.accepted = make([]bool, n)
	f.ids = make([]uuid.UUID, n)
	f.status = make([]uint8, n)
	f.stamp = make([]int64, n)
	f.reason = make([]string, n)
	f.paid = make([]bool, n)
	body := fmt.Appendf(nil, `{"event_id":%q,"ticket_type":%q,"quantity":%d}`, f.event.String(), ticketType, f.cfg.Quantity)
	keyPrefix := "tb-" + f.run + "-book-"
	customers := len(f.tokens)
	return f.fire(ctx, n, func(i int, req *request, scratch *[]byte) bool {
		req.method, req.path, req.body, req.token = http.MethodPost, "/booking/create", body, f.tokens[i%customers]
		req.idemKey = nil
		if f.cfg.Idempotency {
			*scratch = strconv.AppendInt(append((*scratch)[:0], keyPrefix...), int64(i), 10)
			req.idemKey = *scratch
		}
		return true
	}, func(i int, resp *response) bool {
		if resp.status != http.StatusAccepted {
			return false
		}
		id, ok := bytes.CutPrefix(resp.location, []byte("/bookings/"))
		if !ok {
			return false
		}
		u, err := uuid.ParseBytes(id)
		if err != nil {
			return false
		}
		f.ids[i], f.accepted[i] = u, true
		return true
	})
}

func (f *flash) pay(ctx context.Context) Requests {
	var holds []int
	for i, s := range f.status {
		if f.accepted[i] && s == stAwaiting {
			holds = append(holds, i)
		}
	}
	keyPrefix := "tb-" + f.run + "-pay-"
	customers := len(f.tokens)
	return f.fire(ctx, len(holds), func(k int, req *request, scratch *[]byte) bool {
		i := holds[k]
		// The body goes first in scratch, the key after it.
		b := fmt.Appendf((*scratch)[:0], `{"booking_id":%q,"payment_token":%q}`, f.ids[i].String(), f.cfg.Token)
		n := len(b)
		b = strconv.AppendInt(append(b, keyPrefix...), int64(i), 10)
		*scratch = b
		req.method, req.path, req.token = http.MethodPost, "/payment/process", f.tokens[i%customers]
		req.body = b[:n:n]
		req.idemKey = nil
		if f.cfg.Idempotency {
			req.idemKey = b[n:]
		}
		return true
	}, func(k int, resp *response) bool {
		if resp.status != http.StatusAccepted {
			return false
		}
		f.paid[holds[k]] = true
		return true
	})
}

// indexCustomers groups the accepted bookings by customer.
func (f *flash) indexCustomers() {
	f.customers = make([]*customer, len(f.tokens))
	for k, t := range f.tokens {
		f.customers[k] = &customer{token: t, ids: map[uuid.UUID]int32{}}
	}
	for i, ok := range f.accepted {
		if ok {
			c := f.customers[i%len(f.tokens)]
			c.ids[f.ids[i]] = int32(i)
		}
	}
	for _, c := range f.customers {
		c.unseen = len(c.ids)
		c.open = len(c.ids)
	}
}

// settle polls the customers' listings until no booking is open, and
// reports how fast they settled: counted from start, the last request of
// the phase answered at requestsEnd.
func (f *flash) settle(ctx context.Context, start, requestsEnd time.Time, open func(i int) bool, minPause time.Duration) Settled {
	var polls, rounds atomic.Int64
	var pollBytes atomic.Int64
	for _, c := range f.customers {
		c.doneAt = time.Time{}
		c.open = 1 // look at everyone at least once
	}
	pollers := min(len(f.customers), 16)
	conns := make([]conn, pollers)
	for k := range conns {
		conns[k] = f.d.conn()
		defer conns[k].close()
	}
	var pollErr error
	for ctx.Err() == nil {
		var todo []*customer
		for _, c := range f.customers {
			if c.open > 0 {
				todo = append(todo, c)
			}
		}
		if len(todo) == 0 {
			break
		}
		roundStart := time.Now()
		rounds.Add(1)
		var next atomic.Int64
		var wg sync.WaitGroup
		var errMu sync.Mutex
		for k := range pollers {
			wg.Go(func() {
				var page bookingPage
				var resp response
				for {
					j := int(next.Add(1) - 1)
					if j >= len(todo) || ctx.Err() != nil {
						return
					}
					n, bytes, err := f.poll(conns[k], &resp, todo[j], open, &page)
					polls.Add(int64(n))
					pollBytes.Add(bytes)
					if err != nil {
						errMu.Lock()
						pollErr = err
						errMu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		if pollErr != nil {
			fmt.Fprintf(f.out, "poll: %v\n", pollErr)
			pollErr = nil
		}
		// Poll at most half the time, so that the poller does not take
		// the server's CPU away from the work it measures.
		pause := min(max(time.Since(roundStart), minPause), 200*time.Millisecond)
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}

	s := Settled{Statuses: map[string]int{}, Reasons: map[string]int{}, PollRequests: int(polls.Load()), PollRounds: int(rounds.Load()), PollBytes: pollBytes.Load()}
	var lastStamp int64
	var observed time.Time
	for _, c := range f.customers {
		if c.doneAt.After(observed) {
			observed = c.doneAt
		}
		for _, i := range c.ids {
			s.Statuses[statusNames[f.status[i]]]++
			if f.reason[i] != "" {
				s.Reasons[f.reason[i]]++
			}
			if !open(int(i)) && f.stamp[i] > lastStamp {
				lastStamp = f.stamp[i]
			}
		}
	}
	for _, c := range f.customers {
		if c.open > 0 {
			observed = time.Time{} // never all settled
		}
	}
	if !observed.IsZero() {
		s.SecondsObserved = observed.Sub(start).Seconds()
	}
	if lastStamp > 0 {
		last := time.Unix(0, lastStamp)
		s.SecondsStamped = last.Sub(start).Seconds()
		s.LastAfterRequestsMs = ms(last.Sub(requestsEnd))
	}
	for _, c := range f.customers {
		for _, i := range c.ids {
			if !open(int(i)) {
				s.Count++
			}
		}
	}
	s.PerSecondObserved = perSecond(s.Count, time.Duration(s.SecondsObserved*1e9))
	s.PerSecondStamped = perSecond(s.Count, time.Duration(s.SecondsStamped*1e9))
	return s
}

// poll reads a customer's listing: every page while some of its bookings
// have not been seen yet, else only the pages that hold an open booking.
func (f *flash) poll(c conn, resp *response, cu *customer, open func(i int) bool, page *bookingPage) (requests int, read int64, err error) {
	fetch := func(cursor string) ([]int32, *string, error) {
		requests++
		n, err := listBookings(c, resp, cu.token, cursor, page)
		read += int64(n)
		if err != nil {
			return nil, nil, err
		}
		reqs := make([]int32, 0, len(page.Items))
		for _, it := range page.Items {
			i, ok := cu.ids[it.ID]
			if !ok {
				continue // not booked by this run
			}
			reqs = append(reqs, i)
			f.status[i] = parseStatus(it.Status)
			f.stamp[i] = it.UpdatedAt.UnixNano()
			if it.Reason != nil {
				f.reason[i] = *it.Reason
			}
		}
		return reqs, page.NextCursor, nil
	}
	if cu.unseen > 0 || cu.pages == nil {
		var pages []listPage
		seen := 0
		cursor := ""
		for {
			reqs, next, err := fetch(cursor)
			if err != nil {
				return requests, read, err
			}
			pages = append(pages, listPage{cursor: cursor, reqs: reqs})
			seen += len(reqs)
			if next == nil || *next == "" {
				break
			}
			cursor = *next
		}
		cu.pages, cu.unseen = pages, len(cu.ids)-seen
	} else {
		for k := range cu.pages {
			p := &cu.pages[k]
			if !anyOpen(p.reqs, open) {
				continue
			}
			reqs, _, err := fetch(p.cursor)
			if err != nil {
				return requests, read, err
			}
			if len(reqs) != len(p.reqs) {
				// The page moved under its cursor; list everything again.
				cu.unseen = 1
				break
			}
		}
	}
	cu.open = cu.unseen
	for _, i := range cu.ids {
		if open(int(i)) {
			cu.open++
		}
	}
	if cu.open == 0 {
		cu.doneAt = time.Now()
	}
	return requests, read, nil
}

func anyOpen(reqs []int32, open func(i int) bool) bool {
	for _, i := range reqs {
		if open(int(i)) {
			return true
		}
	}
	return false
}

// awaitAvailable reads the event until its availability is want (the
// event listing is a read model and may lag a moment), for up to 10s.
func (f *flash) awaitAvailable(ctx context.Context, want int) (int, error) {
	c := f.d.conn()
	defer c.close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ev, err := getEvent(c, f.event)
		if err != nil {
			return 0, err
		}
		avail, ok := ev.available(ticketType)
		if !ok {
			return 0, errors.New("the event has no ticket type " + ticketType)
		}
		if avail == want || time.Now().After(deadline) || ctx.Err() != nil {
			return avail, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}
