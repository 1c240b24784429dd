package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// runListing creates cfg.ListingEvents events, then has cfg.Clients
// workers GET cfg.ListingPath back to back: unmeasured for cfg.Warmup,
// then measured for cfg.Duration.
func runListing(ctx context.Context, cfg *config, out io.Writer) (*Report, error) {
	d, err := newDialer(cfg.URL, cfg.Transport, cfg.Clients+4, cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	defer d.closeIdle()
	rep := newReport(cfg)
	m := &meter{rep: rep, serverPID: cfg.ServerPID}

	m.begin("setup")
	err = seedEvents(d, cfg)
	m.end()
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	// measuring flips on after the warm-up; stop ends the run.
	var measuring, stop atomic.Bool
	var mu sync.Mutex
	total := new(hist)
	failed := map[string]int{}
	var okN, allN atomic.Int64
	var wg sync.WaitGroup
	for range cfg.Clients {
		wg.Go(func() {
			c := d.conn()
			defer c.close()
			h := new(hist)
			fails := map[string]int{}
			req := request{method: http.MethodGet, path: cfg.ListingPath}
			var resp response
			n, ok := 0, 0
			for !stop.Load() && ctx.Err() == nil {
				t := time.Now()
				err := c.do(&req, &resp)
				el := time.Since(t)
				if !measuring.Load() {
					continue
				}
				n++
				switch {
				case err != nil:
					fails["transport"]++
				case resp.status != http.StatusOK:
					fails[strconv.Itoa(resp.status)]++
					h.record(el)
				default:
					ok++
					h.record(el)
				}
			}
			okN.Add(int64(ok))
			allN.Add(int64(n))
			mu.Lock()
			total.merge(h)
			for k, v := range fails {
				failed[k] += v
			}
			mu.Unlock()
		})
	}
	sleep(ctx, cfg.Warmup)
	// What one answer looks like, once the seeded events are listed.
	l, err := sampleListing(d, cfg)
	if err != nil {
		stop.Store(true)
		wg.Wait()
		return nil, err
	}
	rep.Listing = l
	fmt.Fprintf(out, "listing: GET %s answers %d items in %d bytes; measuring %s with %d clients\n", cfg.ListingPath, l.ItemsPerPage, l.BytesPerResponse, cfg.Duration, cfg.Clients)
	prof := newProfiler(cfg, out)
	m.begin("listing")
	prof.start(ctx, "listing")
	start := time.Now()
	measuring.Store(true)
	sleep(ctx, cfg.Duration)
	measuring.Store(false)
	el := time.Since(start)
	m.end()
	stop.Store(true)
	wg.Wait()
	for _, file := range prof.wait() {
		fmt.Fprintln(out, "profile written:", file)
	}

	l.Requests, l.OKAnswers = int(allN.Load()), int(okN.Load())
	l.Seconds, l.PerSecond = el.Seconds(), perSecond(l.OKAnswers, el)
	l.Latency = total.latency()
	if len(failed) > 0 {
		l.Failed = failed
	}
	rep.check("every listing request answered 200", l.OKAnswers == l.Requests, "%d of %d", l.OKAnswers, l.Requests)
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	return rep, nil
}

func sampleListing(d *dialer, cfg *config) (*ListingReport, error) {
	c := d.conn()
	defer c.close()
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	var resp response
	if err := callWith(c, &resp, http.MethodGet, cfg.ListingPath, "", nil, &page, http.StatusOK); err != nil {
		return nil, err
	}
	return &ListingReport{Path: cfg.ListingPath, BytesPerResponse: len(resp.body), ItemsPerPage: len(page.Items)}, nil
}

// seedEvents creates the events to list, so that the listing is not an
// empty page.
func seedEvents(d *dialer, cfg *config) error {
	if cfg.ListingEvents == 0 {
		return nil
	}
	c := d.conn()
	defer c.close()
	admin, err := login(c, cfg.AdminEmail, cfg.AdminPassword)
	if err != nil {
		return fmt.Errorf("admin login (set -admin-email and -admin-password): %w", err)
	}
	run := uuid.NewString()[:8]
	for i := range cfg.ListingEvents {
		if _, err := createEvent(c, admin, fmt.Sprintf("ticketbench listing %s #%d", run, i), 1000, 10); err != nil {
			return err
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
