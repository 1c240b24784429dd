package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/infra/eventstore/memory"
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

// KurrentDB's positions are offsets in its log: the rebuild's progress
// shows the events it counted, not positions dressed up as events.
func TestProgressWithOffsetPositions(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out, 1_000_000, 2)
	for _, applied := range []uint64{400_000, 600_000} {
		l := &replayLog{}
		l.applied.Store(applied)
		p.track(l)
	}
	p.counted = func() uint64 { return 1234 }
	p.draw()
	if got, want := out.String(), "rebuild:  50%  1,234 events  "; !strings.HasPrefix(got, want) {
		t.Errorf("progress line %q, want it to start %q", got, want)
	}
	if strings.Contains(out.String(), "1,000,000") {
		t.Errorf("progress line shows the head position as a count of events: %q", out.String())
	}
}

// The replay counts the records it reads up to the head the rebuild
// started at, whatever the positions are, and not those after it.
func TestReplayCountsEventsUpToTheHead(t *testing.T) {
	ctx := t.Context()
	log := memory.New()
	for i := range 10 {
		rec := es.Record{ID: uuid.New(), Type: "t", Time: time.Now(), Data: []byte("{}")}
		if _, err := log.Append(ctx, fmt.Sprintf("s-%d", i), es.NoStream, []es.Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := log.ReadAll(ctx, 0, 0)
	if err != nil || len(all) != 10 {
		t.Fatalf("ReadAll = %d, %v", len(all), err)
	}
	head := all[5].Position // six records up to it
	rp := newReplay(log, head)
	l := rp.add(100)
	rp.Start(ctx)
	defer rp.Stop()
	seen := 0
	for seen < 10 {
		select {
		case b := <-l.feed:
			seen += len(b)
		case <-time.After(5 * time.Second):
			t.Fatalf("the replay handed over %d of 10 records", seen)
		}
	}
	if got := rp.Read(); got != 6 {
		t.Errorf("Read = %d, want the 6 records up to the head", got)
	}
}
