package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress shows how far a rebuild is through the log: a bar redrawn in
// place when it writes to a terminal, a plain line a second otherwise
// (a log file or a pipe would fill with redrawn bars).
//
// Progress is the mean, over the projections being rebuilt, of how far
// each has applied the log (they run side by side, each reading it all),
// in positions of the log up to the head the rebuild started at. Where a
// position is a record's number (the embedded store), that is also the
// count of events; where it is an offset (KurrentDB), counted tells the
// events read instead, and the bar shows no total.
type progress struct {
	out   io.Writer
	tty   bool
	head  uint64
	total int // projections being rebuilt
	every time.Duration
	// counted, when set, is the number of events read so far; set it
	// before Start.
	counted func() uint64

	mu      sync.Mutex
	logs    []*replayLog
	start   time.Time
	samples []sample // recent (time, done) pairs, for the rate
	width   int      // of the last line drawn in place

	stop chan struct{}
	done chan struct{}
}

type sample struct {
	at   time.Time
	done float64 // positions applied
	n    float64 // events counted, when counted is set
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newProgress(out io.Writer, head uint64, total int) *progress {
	p := &progress{out: out, tty: isTerminal(out), head: head, total: max(total, 1), every: time.Second, start: time.Now()}
	if p.tty {
		p.every = 200 * time.Millisecond
	}
	return p
}

// track adds the log of one projection being rebuilt.
func (p *progress) track(l *replayLog) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logs = append(p.logs, l)
}

// Start draws the progress until Stop.
func (p *progress) Start() {
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(p.every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
}

// Stop stops drawing, and draws the last state, with the mean rate of
// the whole rebuild.
func (p *progress) Stop() {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	p.samples = []sample{{at: p.start}}
	p.mu.Unlock()
	p.draw()
	if p.tty {
		fmt.Fprintln(p.out)
	}
}

// applied is how many records of the log, on average over the
// projections, are applied, up to the head.
func (p *progress) applied() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var sum float64
	for _, l := range p.logs {
		sum += float64(min(l.Applied(), p.head))
	}
	return sum / float64(p.total)
}

func (p *progress) draw() {
	now := time.Now()
	done := p.applied()
	var n float64
	if p.counted != nil {
		n = float64(p.counted())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.samples = append(p.samples, sample{now, done, n})
	// The rate over the last five seconds follows changes of pace (a
	// stretch of big events, a slow store) without jumping about.
	for len(p.samples) > 2 && now.Sub(p.samples[0].at) > 5*time.Second {
		p.samples = p.samples[1:]
	}
	rate, nRate := 0.0, 0.0 // positions and events per second
	if first := p.samples[0]; now.Sub(first.at) > 0 && len(p.samples) > 1 {
		rate = (done - first.done) / now.Sub(first.at).Seconds()
		nRate = (n - first.n) / now.Sub(first.at).Seconds()
	} else if el := now.Sub(p.start).Seconds(); el > 0 {
		rate, nRate = done/el, n/el
	}
	frac := 1.0
	if p.head > 0 {
		frac = done / float64(p.head)
	}
	eta := "--"
	if rate > 0 {
		eta = fmtDuration(time.Duration((float64(p.head) - done) / rate * float64(time.Second)))
	}
	var stats string
	if p.counted != nil {
		stats = fmt.Sprintf("%3.0f%%  %s events  %s events/s  ETA %s", 100*frac, count(uint64(n)), count(uint64(nRate)), eta)
	} else {
		stats = fmt.Sprintf("%3.0f%%  %s/%s events  %s events/s  ETA %s",
			100*frac, count(uint64(done)), count(p.head), count(uint64(rate)), eta)
	}
	if !p.tty {
		fmt.Fprintf(p.out, "rebuild: %s\n", stats)
		return
	}
	const barWidth = 30
	filled := int(frac * barWidth)
	bar := strings.Repeat("=", filled)
	if filled < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-filled-1)
	}
	line := fmt.Sprintf("[%s] %s", bar, stats)
	pad := ""
	if n := p.width - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	p.width = len(line)
	fmt.Fprintf(p.out, "\r%s%s", line, pad)
}

// count formats n with thousands separators: 1,234,567.
func count(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtDuration rounds d for a person: 2m05s, 4.2s, 350ms.
func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}
