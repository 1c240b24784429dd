package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// profiler fetches profiles of the server from its opt-in net/http/pprof
// listener (ticketd's TICKETD_PPROF_ADDR) while a phase runs, so that the
// profile covers the load and not the idle time around it.
type profiler struct {
	base    string // e.g. http://127.0.0.1:6060
	prefix  string // output files are <prefix>-<phase>.cpu.pprof and .trace
	cpu     time.Duration
	trace   time.Duration
	out     io.Writer
	wg      sync.WaitGroup
	mu      sync.Mutex
	written []string
}

func newProfiler(cfg *config, out io.Writer) *profiler {
	if cfg.PprofURL == "" {
		return nil
	}
	return &profiler{base: strings.TrimRight(cfg.PprofURL, "/"), prefix: cfg.ProfileOut, cpu: cfg.ProfileLength, trace: cfg.TraceLength, out: out}
}

// start begins the profiles of phase in the background.
func (p *profiler) start(ctx context.Context, phase string) {
	if p == nil {
		return
	}
	if p.cpu > 0 {
		p.fetch(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.base, max(1, int(p.cpu.Seconds()))), p.prefix+"-"+phase+".cpu.pprof")
	}
	if p.trace > 0 {
		p.fetch(ctx, fmt.Sprintf("%s/debug/pprof/trace?seconds=%g", p.base, p.trace.Seconds()), p.prefix+"-"+phase+".trace")
	}
}

func (p *profiler) fetch(ctx context.Context, url, file string) {
	p.wg.Go(func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			fmt.Fprintln(p.out, "profile:", err)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintln(p.out, "profile:", err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fmt.Fprintf(p.out, "profile: GET %s: status %d\n", url, resp.StatusCode)
			return
		}
		f, err := os.Create(file)
		if err != nil {
			fmt.Fprintln(p.out, "profile:", err)
			return
		}
		_, err = io.Copy(f, resp.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintln(p.out, "profile:", err)
			return
		}
		p.mu.Lock()
		p.written = append(p.written, file)
		p.mu.Unlock()
	})
}

// wait waits for the profiles in flight and names the files written.
func (p *profiler) wait() []string {
	if p == nil {
		return nil
	}
	p.wg.Wait()
	return p.written
}
