// Command ticketbench puts a running ticketd under load over HTTP and
// reports what it sustained.
//
// The flash scenario is a flash sale on one hot event: it registers and
// logs in customers (untimed), fires concurrent booking requests, waits
// until every booking is decided (held or rejected), optionally pays every
// hold and waits for the confirmations, then checks that nothing was
// oversold. The listing scenario hammers GET /events for a while.
//
//	ticketbench -scenario flash -requests 20000 -capacity 5000 -clients 128
//	ticketbench -scenario flash -pay
//	ticketbench -scenario listing -clients 128 -duration 10s
//
// It prints a human summary, and with -json a machine report. It exits 1
// when an invariant fails and 2 when the run could not be carried out.
// See BENCHMARKS.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"time"
)

// config is everything the command line says.
type config struct {
	URL            string
	AdminEmail     string
	AdminPassword  string
	Scenario       string
	Requests       int
	Capacity       int
	Clients        int
	Customers      int
	Quantity       int
	Pay            bool
	Token          string
	Timeout        time.Duration
	RequestTimeout time.Duration
	JSON           string
	Transport      string
	Duration       time.Duration
	Warmup         time.Duration
	ListingEvents  int
	ListingPath    string
	ServerPID      int
	Idempotency    bool
	PprofURL       string
	ProfileOut     string
	ProfileLength  time.Duration
	TraceLength    time.Duration
	CPUProfile     string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "ticketbench:", err)
		return 2
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			fmt.Fprintln(stderr, "ticketbench:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "ticketbench:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	// The human summary goes to stdout unless the JSON report does.
	human := stdout
	if cfg.JSON == "-" {
		human = stderr
	}
	var rep *Report
	switch cfg.Scenario {
	case "flash":
		rep, err = runFlash(ctx, cfg, human)
	case "listing":
		rep, err = runListing(ctx, cfg, human)
	}
	if rep != nil {
		rep.print(human)
		if werr := writeJSON(cfg.JSON, stdout, rep); werr != nil {
			fmt.Fprintln(stderr, "ticketbench:", werr)
			return 2
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "ticketbench:", err)
		return 2
	}
	if !rep.OK {
		fmt.Fprintln(stderr, "ticketbench: an invariant failed")
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("ticketbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envOr := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	var c config
	fs.StringVar(&c.URL, "url", "http://localhost:8080", "base URL of the running ticketd")
	fs.StringVar(&c.AdminEmail, "admin-email", envOr("TICKETD_ADMIN_EMAIL", "bench@example.com"), "admin who creates the events (default from TICKETD_ADMIN_EMAIL)")
	fs.StringVar(&c.AdminPassword, "admin-password", envOr("TICKETD_ADMIN_PASSWORD", "bench-password"), "that admin's password (default from TICKETD_ADMIN_PASSWORD)")
	fs.StringVar(&c.Scenario, "scenario", "flash", "flash (a flash sale on one event) or listing (GET /events)")
	fs.IntVar(&c.Requests, "requests", 20000, "flash: booking requests to fire")
	fs.IntVar(&c.Capacity, "capacity", 5000, "flash: seats of the hot event")
	fs.IntVar(&c.Clients, "clients", 128, "concurrent clients (one connection each)")
	fs.IntVar(&c.Customers, "customers", 0, "flash: distinct customers, registered and logged in up front (0 = -clients)")
	fs.IntVar(&c.Quantity, "quantity", 1, "flash: seats per booking")
	fs.BoolVar(&c.Pay, "pay", false, "flash: pay every hold with tok_success and wait for the confirmations")
	fs.StringVar(&c.Token, "payment-token", "tok_success", "flash -pay: sandbox payment token")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Minute, "bound on the whole run")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", 30*time.Second, "bound on one request")
	fs.StringVar(&c.JSON, "json", "", "write the report as JSON to this file, or - for stdout (the summary then goes to stderr)")
	fs.StringVar(&c.Transport, "transport", "raw", "raw (minimal HTTP/1.1 keep-alive client) or std (net/http)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "listing: how long to measure")
	fs.DurationVar(&c.Warmup, "warmup", 1*time.Second, "listing: unmeasured load before measuring")
	fs.IntVar(&c.ListingEvents, "listing-events", 20, "listing: events to create first (0 = none; 20 fills the default page)")
	fs.StringVar(&c.ListingPath, "listing-path", "/events", "listing: path and query to GET")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "pid of ticketd on this machine, to report its CPU time per phase (Linux /proc)")
	fs.BoolVar(&c.Idempotency, "idempotency", true, "flash: send an Idempotency-Key with every booking and payment")
	fs.StringVar(&c.PprofURL, "pprof-url", "", "the server's pprof listener (ticketd -pprof-addr), e.g. http://127.0.0.1:6060: profile it while the load runs")
	fs.StringVar(&c.ProfileOut, "profile-out", "ticketd", "with -pprof-url: write <this>-<phase>.cpu.pprof and .trace")
	fs.DurationVar(&c.ProfileLength, "profile-seconds", 3*time.Second, "with -pprof-url: CPU profile length from the start of the create, pay and listing phases (0 = none)")
	fs.DurationVar(&c.TraceLength, "trace-seconds", 0, "with -pprof-url: execution trace length from the start of those phases (0 = none)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of ticketbench itself to this file (is the client the bottleneck?)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.Customers == 0 {
		c.Customers = c.Clients
	}
	var errs []error
	check := func(ok bool, msg string) {
		if !ok {
			errs = append(errs, errors.New(msg))
		}
	}
	check(c.Scenario == "flash" || c.Scenario == "listing", "-scenario: want flash or listing")
	check(c.Clients >= 1 && c.Clients <= 10000, "-clients: want 1..10000")
	check(c.Requests >= 1 && c.Requests <= 10_000_000, "-requests: want 1..10000000")
	check(c.Capacity >= 1 && c.Capacity <= 10_000_000, "-capacity: want 1..10000000")
	check(c.Customers >= 1 && c.Customers <= 100_000, "-customers: want 1..100000")
	check(c.Quantity >= 1 && c.Quantity <= 100, "-quantity: want 1..100")
	check(c.Timeout > 0 && c.RequestTimeout > 0, "-timeout and -request-timeout must be positive")
	check(c.Duration > 0 && c.Warmup >= 0, "-duration must be positive and -warmup not negative")
	check(c.ListingEvents >= 0 && c.ListingEvents <= 1000, "-listing-events: want 0..1000")
	check(c.ProfileLength >= 0 && c.TraceLength >= 0, "-profile-seconds and -trace-seconds must not be negative")
	check(len(c.ListingPath) > 0 && c.ListingPath[0] == '/', "-listing-path must start with /")
	return &c, errors.Join(errs...)
}

func writeJSON(dest string, stdout io.Writer, rep *Report) error {
	if dest == "" {
		return nil
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if dest == "-" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(dest, b, 0o644)
}
