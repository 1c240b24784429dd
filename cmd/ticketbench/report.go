package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Report is the machine-readable result of one run (-json).
type Report struct {
	Scenario   string         `json:"scenario"`
	URL        string         `json:"url"`
	StartedAt  time.Time      `json:"started_at"`
	Machine    Machine        `json:"machine"`
	Config     ReportConfig   `json:"config"`
	OK         bool           `json:"ok"`
	Invariants []Invariant    `json:"invariants,omitempty"`
	Phases     []Phase        `json:"phases"`
	Flash      *FlashReport   `json:"flash,omitempty"`
	Listing    *ListingReport `json:"listing,omitempty"`
}

// Machine is where the load tool ran.
type Machine struct {
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	GoVersion  string `json:"go_version"`
}

// ReportConfig echoes the flags that shape the load.
type ReportConfig struct {
	Requests      int     `json:"requests,omitempty"`
	Capacity      int     `json:"capacity,omitempty"`
	Clients       int     `json:"clients"`
	Customers     int     `json:"customers,omitempty"`
	Quantity      int     `json:"quantity,omitempty"`
	Pay           bool    `json:"pay,omitempty"`
	Transport     string  `json:"transport"`
	Idempotency   bool    `json:"idempotency,omitempty"`
	DurationS     float64 `json:"duration_s,omitempty"`
	WarmupS       float64 `json:"warmup_s,omitempty"`
	ListingPath   string  `json:"listing_path,omitempty"`
	ListingEvents int     `json:"listing_events,omitempty"`
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// Invariant is one correctness check of the run.
type Invariant struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Phase is a stretch of wall time with the CPU the tool and (with
// -server-pid) the server spent in it.
type Phase struct {
	Name        string  `json:"name"`
	Seconds     float64 `json:"seconds"`
	ClientCPUS  float64 `json:"client_cpu_s"`
	ServerCPUS  float64 `json:"server_cpu_s,omitempty"`
	ClientCores float64 `json:"client_cores"`
	ServerCores float64 `json:"server_cores,omitempty"`
	// MachineCores is how many cores the whole machine kept busy (Linux
	// /proc/stat); OtherCores is what neither this tool nor (with
	// -server-pid) the server used: other load that skews the figures.
	// IRQCores is interrupt time, mostly loopback networking that the
	// kernel charges to no process.
	MachineCores  float64 `json:"machine_cores"`
	IRQCores      float64 `json:"irq_cores"`
	OtherCores    float64 `json:"other_cores"`
	StealCores    float64 `json:"steal_cores"`
	serverMeasure bool
}

// Requests counts the answers of a batch of requests.
type Requests struct {
	Sent       int            `json:"sent"`
	Accepted   int            `json:"accepted"`
	Failed     map[string]int `json:"failed,omitempty"`
	FirstError string         `json:"first_error,omitempty"`
	Seconds    float64        `json:"seconds"`
	PerSecond  float64        `json:"per_second"`
	Latency    Latency        `json:"latency"`
}

// Settled is how fast bookings reached a state. Observed is when the
// poller saw the last one; stamped is the last one's updated_at (the time
// the aggregate decided, on this machine's clock), so it does not depend
// on how often the poller looks.
type Settled struct {
	Count             int            `json:"count"`
	Statuses          map[string]int `json:"statuses"`
	Reasons           map[string]int `json:"reasons,omitempty"`
	SecondsObserved   float64        `json:"seconds_observed"`
	SecondsStamped    float64        `json:"seconds_stamped"`
	PerSecondObserved float64        `json:"per_second_observed"`
	PerSecondStamped  float64        `json:"per_second_stamped"`
	// LastAfterRequestsMs is how long after the last request of the
	// phase was answered the last booking settled (stamped).
	LastAfterRequestsMs float64 `json:"last_after_requests_ms"`
	PollRequests        int     `json:"poll_requests"`
	PollRounds          int     `json:"poll_rounds"`
	PollBytes           int64   `json:"poll_bytes"`
}

// FlashReport is the flash scenario's result.
type FlashReport struct {
	EventID      string    `json:"event_id"`
	Create       Requests  `json:"create"`
	Decide       Settled   `json:"decide"`
	Pay          *Requests `json:"pay,omitempty"`
	Confirm      *Settled  `json:"confirm,omitempty"`
	Held         int       `json:"held"`
	ExpectedHeld int       `json:"expected_held"`
	Available    int       `json:"available"`
}

// ListingReport is the listing scenario's result.
type ListingReport struct {
	Path             string         `json:"path"`
	Requests         int            `json:"requests"`
	OKAnswers        int            `json:"ok"`
	Failed           map[string]int `json:"failed,omitempty"`
	Seconds          float64        `json:"seconds"`
	PerSecond        float64        `json:"per_second"`
	BytesPerResponse int            `json:"bytes_per_response"`
	ItemsPerPage     int            `json:"items_per_page"`
	Latency          Latency        `json:"latency"`
}

func newReport(cfg *config) *Report {
	r := &Report{
		Scenario:  cfg.Scenario,
		URL:       cfg.URL,
		StartedAt: time.Now().UTC(),
		Machine:   Machine{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), CPUModel: cpuModel(), GoVersion: runtime.Version()},
		Config:    ReportConfig{Clients: cfg.Clients, Transport: cfg.Transport},
		OK:        true,
	}
	switch cfg.Scenario {
	case "flash":
		r.Config.Requests, r.Config.Capacity, r.Config.Customers = cfg.Requests, cfg.Capacity, cfg.Customers
		r.Config.Quantity, r.Config.Pay, r.Config.Idempotency = cfg.Quantity, cfg.Pay, cfg.Idempotency
	case "listing":
		r.Config.DurationS, r.Config.WarmupS = cfg.Duration.Seconds(), cfg.Warmup.Seconds()
		r.Config.ListingPath, r.Config.ListingEvents = cfg.ListingPath, cfg.ListingEvents
	}
	return r
}

func (r *Report) check(name string, ok bool, format string, args ...any) {
	r.Invariants = append(r.Invariants, Invariant{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
	if !ok {
		r.OK = false
	}
}

func (r *Report) print(w io.Writer) {
	fmt.Fprintf(w, "\nticketbench %s against %s (%d clients, %s transport; %d CPUs, %s)\n", r.Scenario, r.URL, r.Config.Clients, r.Config.Transport, r.Machine.NumCPU, r.Machine.GoVersion)
	if f := r.Flash; f != nil {
		fmt.Fprintf(w, "  event %s: %d requests of %d seat(s) for %d seats, %d customers\n", f.EventID, r.Config.Requests, r.Config.Quantity, r.Config.Capacity, r.Config.Customers)
		printRequests(w, "create", &f.Create)
		printSettled(w, "decisions", &f.Decide)
		if f.Pay != nil {
			printRequests(w, "pay", f.Pay)
		}
		if f.Confirm != nil {
			printSettled(w, "confirmations", f.Confirm)
		}
		fmt.Fprintf(w, "  held %d (expected %d), available %d\n", f.Held, f.ExpectedHeld, f.Available)
	}
	if l := r.Listing; l != nil {
		fmt.Fprintf(w, "  GET %s (%d items, %d bytes): %d requests in %.2fs = %.0f req/s, %d failed\n", l.Path, l.ItemsPerPage, l.BytesPerResponse, l.Requests, l.Seconds, l.PerSecond, l.Requests-l.OKAnswers)
		printLatency(w, &l.Latency)
		if len(l.Failed) > 0 {
			fmt.Fprintf(w, "    failed: %v\n", l.Failed)
		}
	}
	fmt.Fprintln(w, "  phases:")
	for _, p := range r.Phases {
		fmt.Fprintf(w, "    %-8s %7.3fs  client %.2f cores", p.Name, p.Seconds, p.ClientCores)
		if p.serverMeasure {
			fmt.Fprintf(w, ", server %.2f cores", p.ServerCores)
		}
		fmt.Fprintf(w, ", machine %.2f busy (irq %.2f, other %.2f), steal %.2f\n", p.MachineCores, p.IRQCores, p.OtherCores, p.StealCores)
	}
	if len(r.Invariants) > 0 {
		fmt.Fprintln(w, "  invariants:")
		for _, inv := range r.Invariants {
			mark := "ok  "
			if !inv.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "    %s %s: %s\n", mark, inv.Name, inv.Detail)
		}
	}
}

func printRequests(w io.Writer, name string, r *Requests) {
	fmt.Fprintf(w, "  %-13s %d sent, %d accepted in %.3fs = %.0f/s\n", name, r.Sent, r.Accepted, r.Seconds, r.PerSecond)
	printLatency(w, &r.Latency)
	if len(r.Failed) > 0 {
		fmt.Fprintf(w, "    failed: %v (first: %s)\n", r.Failed, r.FirstError)
	}
}

func printLatency(w io.Writer, l *Latency) {
	fmt.Fprintf(w, "    latency ms: p50 %.2f  p95 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f\n", l.P50, l.P95, l.P99, l.P999, l.Max, l.Mean)
}

func printSettled(w io.Writer, name string, s *Settled) {
	fmt.Fprintf(w, "  %-13s %d in %.3fs = %.0f/s (stamped; observed %.3fs = %.0f/s), last %.0f ms after the last request\n",
		name, s.Count, s.SecondsStamped, s.PerSecondStamped, s.SecondsObserved, s.PerSecondObserved, s.LastAfterRequestsMs)
	fmt.Fprintf(w, "    statuses %v", sortedMap(s.Statuses))
	if len(s.Reasons) > 0 {
		fmt.Fprintf(w, " reasons %v", sortedMap(s.Reasons))
	}
	fmt.Fprintf(w, "; polling: %d rounds, %d requests, %.1f MB\n", s.PollRounds, s.PollRequests, float64(s.PollBytes)/1e6)
}

func sortedMap(m map[string]int) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// meter times phases and the CPU spent in them.
type meter struct {
	rep       *Report
	serverPID int
	name      string
	start     time.Time
	client    time.Duration
	server    time.Duration
	serverOK  bool
	machine   machineCPU
}

func (m *meter) begin(name string) {
	m.name, m.start = name, time.Now()
	m.client = selfCPU()
	m.server, m.serverOK = procCPU(m.serverPID)
	m.machine = readMachineCPU()
}

func (m *meter) end() time.Duration {
	wall := time.Since(m.start)
	p := Phase{Name: m.name, Seconds: wall.Seconds()}
	p.ClientCPUS = (selfCPU() - m.client).Seconds()
	p.ClientCores = round2(p.ClientCPUS / wall.Seconds())
	if s, ok := procCPU(m.serverPID); ok && m.serverOK {
		p.ServerCPUS = (s - m.server).Seconds()
		p.ServerCores = round2(p.ServerCPUS / wall.Seconds())
		p.serverMeasure = true
	}
	if mc := readMachineCPU(); mc.busy > 0 {
		busy, irq, steal := (mc.busy - m.machine.busy).Seconds(), (mc.irq - m.machine.irq).Seconds(), (mc.steal - m.machine.steal).Seconds()
		p.MachineCores = round2(busy / wall.Seconds())
		p.IRQCores = round2(irq / wall.Seconds())
		p.StealCores = round2(steal / wall.Seconds())
		p.OtherCores = round2(max(0, busy-irq-p.ClientCPUS-p.ServerCPUS) / wall.Seconds())
	}
	m.rep.Phases = append(m.rep.Phases, p)
	return wall
}

// machineCPU is the machine's CPU time since boot, from /proc/stat.
type machineCPU struct{ busy, irq, steal time.Duration }

func readMachineCPU() machineCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return machineCPU{}
	}
	// user nice system idle iowait irq softirq steal
	var v [8]int64
	for i := range v {
		v[i], _ = strconv.ParseInt(f[i+1], 10, 64)
	}
	const userHZ = 100
	tick := func(n int64) time.Duration { return time.Duration(n) * time.Second / userHZ }
	return machineCPU{busy: tick(v[0] + v[1] + v[2] + v[5] + v[6]), irq: tick(v[5] + v[6]), steal: tick(v[7])}
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU reads the user+system CPU time of pid from /proc (Linux).
func procCPU(pid int) (time.Duration, bool) {
	if pid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name may contain spaces; fields count from after ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	const userHZ = 100 // USER_HZ, 100 on every Linux this runs on
	return time.Duration(ut+st) * time.Second / userHZ, true
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
