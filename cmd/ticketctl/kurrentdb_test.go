package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// No KurrentDB server can run where these tests run: they check what can
// be checked without one. That ticketctl picks KurrentDB when ticketd
// would, never falls back to the embedded store, and says clearly and
// quickly when the server is not there.

// deadAddress returns a local address where nothing listens.
func deadAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestKurrentDBUnreachable(t *testing.T) {
	addr := deadAddress(t)
	url := "kurrentdb://admin:s3cret@" + addr + "?tls=false"
	shown := "kurrentdb://admin:xxxxx@" + addr + "?tls=false"
	for _, tc := range []struct {
		name string
		args []string
		// readModels: the data directory holds read models, as ticketd
		// on KurrentDB leaves it.
		readModels bool
	}{
		{"create-admin", []string{"users", "create-admin", "--email", "root@example.com", "--password", "change-me-please"}, false},
		{"status", []string{"projections", "status"}, true},
		{"rebuild", []string{"projections", "rebuild"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.readModels {
				openTestReadStore(t, dir).Close()
			}
			env := map[string]string{"TICKETD_DATA_DIR": dir, "TICKETD_EVENTSTORE_URL": url}
			start := time.Now()
			r := ctl(t, env, append(tc.args, "--eventstore-timeout", "300ms")...)
			took := time.Since(start)
			// Within the timeout the client may still be trying, or may
			// have given up on the refused connection: either way the
			// message names the server and asks whether it runs.
			wantTimeout := "KurrentDB at " + shown + " did not answer within 300ms: is it running and reachable from here?"
			wantRefused := "KurrentDB at " + shown + " is unavailable: is it running and reachable from here?"
			if r.code != 1 || !(strings.Contains(r.stderr, wantTimeout) || strings.Contains(r.stderr, wantRefused)) {
				t.Fatalf("want exit 1 saying the server did not answer; got %s", r)
			}
			if strings.Contains(r.stderr, "s3cret") {
				t.Errorf("the password is in the message: %s", r.stderr)
			}
			if took > 3*time.Second {
				t.Errorf("gave up after %v with a 300ms timeout", took)
			}
			// Nothing fell back to an embedded event store.
			if _, err := os.Stat(filepath.Join(dir, "eventstore")); !os.IsNotExist(err) {
				t.Errorf("an embedded event store was created in the data directory (%v)", err)
			}
		})
	}
}

// The client gives up on a refused connection after its discovery
// attempts, before a long timeout: the message is as clear as after a
// timeout.
func TestKurrentDBRefusedBeforeTheTimeout(t *testing.T) {
	addr := deadAddress(t)
	env := map[string]string{"TICKETD_DATA_DIR": t.TempDir(), "TICKETD_EVENTSTORE_URL": "esdb://" + addr + "?tls=false"}
	start := time.Now()
	r := ctl(t, env, "users", "create-admin", "--email", "root@example.com", "--password", "change-me-please", "--eventstore-timeout", "20s")
	want := "ticketctl: users create-admin: KurrentDB at esdb://" + addr + "?tls=false is unavailable: is it running and reachable from here? (TICKETD_EVENTSTORE_URL or --eventstore-url): "
	if r.code != 1 || !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, "connection refused") {
		t.Fatalf("want exit 1 and stderr starting %q, naming the refused connection; got %s", want, r)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("took %v to report a refused connection", took)
	}
}

// With KurrentDB, the data directory holds only the read models; a
// directory without them is refused before the network is tried, and
// nothing is created in it.
func TestKurrentDBProjectionsNeedTicketdsReadModels(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not-ticketd")
	env := map[string]string{"TICKETD_DATA_DIR": dir, "TICKETD_EVENTSTORE_URL": "kurrentdb://" + deadAddress(t) + "?tls=false"}
	abs, _ := filepath.Abs(dir)
	for _, cmd := range []string{"status", "rebuild"} {
		start := time.Now()
		r := ctl(t, env, "projections", cmd)
		want := "no read models in " + abs + " (TICKETD_DATA_DIR or --data-dir): is this the data directory of a ticketd that keeps its events in KurrentDB?"
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Fatalf("projections %s: want exit 1 and %q; got %s", cmd, want, r)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("projections %s took %v: it should not have waited for the server", cmd, took)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the data directory was created (%v)", err)
	}
}

// Without a connection string, the embedded event store is used, and a
// directory without one is refused with a pointer to the KurrentDB
// setting, in case that is what ticketd uses.
func TestEmbeddedProjectionsNeedAnEventStore(t *testing.T) {
	dir := t.TempDir()
	r := ctl(t, map[string]string{"TICKETD_DATA_DIR": dir}, "projections", "status")
	abs, _ := filepath.Abs(dir)
	want := "no event store in " + abs + " (TICKETD_DATA_DIR or --data-dir): is this ticketd's data directory? (If ticketd keeps its events in KurrentDB, set TICKETD_EVENTSTORE_URL as for ticketd.)"
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("want exit 1 and %q; got %s", want, r)
	}
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"kurrentdb://admin:changeit@localhost:2113?tls=false", "kurrentdb://admin:xxxxx@localhost:2113?tls=false"},
		{"esdb+discover://ops:p@ss:w0rd@cluster.example.com:2113", "esdb+discover://ops:xxxxx@cluster.example.com:2113"},
		{"kurrentdb://admin:secret@node1:2113,node2:2113,node3:2113?tls=true", "kurrentdb://admin:xxxxx@node1:2113,node2:2113,node3:2113?tls=true"},
		{"kurrentdb://admin@localhost:2113", "kurrentdb://admin@localhost:2113"},
		{"kurrentdb://localhost:2113?tls=false", "kurrentdb://localhost:2113?tls=false"},
		{"kurrentdb://localhost:2113?tlsCAFile=/etc/a@b/ca.crt", "kurrentdb://localhost:2113?tlsCAFile=/etc/a@b/ca.crt"},
		{"localhost:2113", "(a connection string without a scheme)"},
	} {
		if got := redactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
