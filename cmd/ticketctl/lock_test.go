package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketd/ticketing/infra/eventstore/embedded"
	readembedded "github.com/ticketd/ticketing/infra/readstore/embedded"
)

// holdEnv, set in the environment of the test binary, makes it play a
// running ticketd instead of running tests: it opens the stores ticketd
// opens in the data directory named, says "ready" and holds them until
// its stdin closes. The value is "embedded:<dir>" (event store and read
// models, as ticketd on the embedded store) or "kurrentdb:<dir>" (read
// models only: ticketd keeps its events in KurrentDB).
const holdEnv = "TICKETCTL_TEST_HOLD"

func TestMain(m *testing.M) {
	if v := os.Getenv(holdEnv); v != "" {
		os.Exit(hold(v))
	}
	os.Exit(m.Run())
}

func hold(v string) int {
	mode, dir, _ := strings.Cut(v, ":")
	var closers []io.Closer
	if mode == "embedded" {
		s, err := embedded.Open(filepath.Join(dir, "eventstore"), embedded.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		closers = append(closers, s)
	}
	r, err := readembedded.Open(filepath.Join(dir, "readmodels"), readembedded.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	closers = append(closers, r)
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, c := range closers {
		c.Close()
	}
	return 0
}

// runningTicketd starts another process that holds the stores of dir as
// ticketd does (mode "embedded" or "kurrentdb"), until the test ends.
func runningTicketd(t *testing.T, mode, dir string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+mode+":"+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("the stand-in ticketd did not start: %q, %v", line, err)
	}
}

// A ticketd running in another process, as in production, holds the data
// directory: every command that needs it says so, and what works instead.
func TestCommandsSayAnotherProcessHoldsTheDataDir(t *testing.T) {
	dead := "kurrentdb://" + deadAddress(t) + "?tls=false"
	const (
		createAdmin = "stop it, or restart it with TICKETD_ADMIN_EMAIL and TICKETD_ADMIN_PASSWORD set (it creates the admin at start-up)"
		rebuild     = "an embedded rebuild is offline: stop ticketd first, then run this again (there is no online rebuild of the embedded stores; the distributed mode, on Redis and Kafka, rebuilds online)"
		status      = "its stores are locked while it runs: read the lag from its GET /metrics (ticketd_projection_lag), or stop it to see the status here"
	)
	for _, mode := range []string{"embedded", "kurrentdb"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			// ticketd has run here before, then starts again.
			if mode == "embedded" {
				openTestEventStore(t, dir).Close()
			}
			openTestReadStore(t, dir).Close()
			runningTicketd(t, mode, dir)
			abs, _ := filepath.Abs(dir)
			env := map[string]string{"TICKETD_DATA_DIR": dir}
			if mode == "kurrentdb" {
				// The read models are found held before KurrentDB is
				// asked anything: this one is not there, and waiting
				// for it would be the wrong answer.
				env["TICKETD_EVENTSTORE_URL"] = dead
			}
			cases := []struct {
				name string
				args []string
				want string
			}{
				{"rebuild", []string{"projections", "rebuild"}, rebuild},
				{"status", []string{"projections", "status"}, status},
			}
			if mode == "embedded" {
				// With KurrentDB, create-admin needs no data directory.
				cases = append(cases, struct {
					name string
					args []string
					want string
				}{"create-admin", []string{"users", "create-admin", "--email", "root@example.com", "--password", "change-me-please"}, createAdmin})
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					r := ctl(t, env, tc.args...)
					want := "ticketd is running on " + abs + "; " + tc.want + "\n"
					if r.code != 1 || !strings.HasSuffix(r.stderr, want) {
						t.Fatalf("want exit 1 and stderr ending %q; got %s", want, r)
					}
				})
			}
		})
	}
}
