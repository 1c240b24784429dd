package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/user"
	"github.com/ticketd/ticketing/infra/auth"
	readembedded "github.com/ticketd/ticketing/infra/readstore/embedded"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

func openTestReadStore(t testing.TB, dataDir string) *readembedded.Store {
	t.Helper()
	reads, err := readembedded.Open(filepath.Join(dataDir, "readmodels"), readembedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return reads
}

func embeddedReaders(r *readembedded.Store) readers {
	return readers{events: r.Events(), bookings: r.Bookings(), payments: r.Payments(), profiles: r.Profiles()}
}

// ticketdDataDir is a data directory as ticketd leaves it: a history in
// the event store, and read models its projectors built from all of it.
// It returns the world and the projections' checkpoints.
func ticketdDataDir(t testing.TB, size worldSize) (dir string, w *world, checkpoints map[string]uint64) {
	t.Helper()
	dir = t.TempDir()
	store := openTestEventStore(t, dir)
	defer store.Close()
	w = writeHistory(t, store, size)
	reads := openTestReadStore(t, dir)
	defer reads.Close()
	ps := liveProjectors(store, reads.Events(), reads.Bookings(), reads.Payments(), reads.Profiles())
	catchUp(t, store, ps)
	checkpoints = map[string]uint64{}
	for _, p := range ps {
		checkpoints[p.Name()] = p.Checkpoint()
	}
	return dir, w, checkpoints
}

func TestEmbeddedStatusThenRebuild(t *testing.T) {
	ctx := context.Background()
	dir, w, cps := ticketdDataDir(t, smallWorld)
	env := map[string]string{"TICKETD_DATA_DIR": dir}

	// What ticketd's projectors built, read back from disk.
	reads := openTestReadStore(t, dir)
	before := takeSnapshot(t, embeddedReaders(reads), w)
	if len(before.Bookings) != len(w.bookings) || len(before.Payments) == 0 || len(before.Listing) == 0 {
		t.Fatalf("the history is too thin to test with: %d bookings, %d payments, %d listed events", len(before.Bookings), len(before.Payments), len(before.Listing))
	}
	// A bug damaged two views (the reason one rebuilds), without moving
	// the checkpoints.
	damageProfile(t, reads.Profiles(), w.users[0])
	damageEvent(t, reads.Events(), w.events[0])
	if before.diff(takeSnapshot(t, embeddedReaders(reads), w)) == "" {
		t.Fatal("the damage does not show")
	}
	reads.Close()

	// One more user registers while the projectors are stopped: the
	// profiles projection is one record behind, the others read nothing
	// new.
	store := openTestEventStore(t, dir)
	late, err := commands.NewUsers(commands.NewRepository(store, commands.NewRegistry(), time.Now), plainHasher{}).
		Register(ctx, commands.NewMsg(), commands.RegisterUser{UserID: uuid.New(), Email: "late@example.com", Password: "correct horse", Name: "Late", Role: user.Customer})
	if err != nil {
		t.Fatal(err)
	}
	head, _ := store.HeadPosition(ctx)
	store.Close()

	t.Run("status", func(t *testing.T) {
		r := ctl(t, env, "projections", "status")
		if r.code != 0 {
			t.Fatalf("status: %s", r)
		}
		gotHead, rows := parseStatus(t, r.stdout)
		if gotHead != head {
			t.Errorf("status says log head %d, want %d\n%s", gotHead, head, r.stdout)
		}
		for _, name := range projectionNames() {
			row, ok := rows[name]
			if !ok {
				t.Fatalf("status has no row for %s:\n%s", name, r.stdout)
			}
			wantPending, wantState := "0", "up to date"
			if name == projections.NameProfiles {
				wantPending, wantState = "1", "behind"
			}
			want := statusRow{checkpoint: cps[name], lag: head - cps[name], pending: wantPending, state: wantState}
			if row != want {
				t.Errorf("status of %s = %+v, want %+v", name, row, want)
			}
		}
		if !strings.Contains(r.stdout, "embedded") || !strings.Contains(r.stdout, dir) {
			t.Errorf("status does not say it read the embedded stores of %s:\n%s", dir, r.stdout)
		}
	})

	t.Run("rebuild", func(t *testing.T) {
		r := ctl(t, env, "projections", "rebuild")
		if r.code != 0 {
			t.Fatalf("rebuild: %s", r)
		}
		for _, name := range projectionNames() {
			if !strings.Contains(r.stdout, name+"  ") || !strings.Contains(r.stdout, "switched to the new version") {
				t.Errorf("rebuild output does not report %s switched:\n%s", name, r.stdout)
			}
		}
		if !strings.Contains(r.stdout, fmt.Sprintf("Rebuilt 4 read model(s) from %s events", count(head))) || !strings.Contains(r.stdout, "events/s") {
			t.Errorf("rebuild output lacks the summary with the rate:\n%s", r.stdout)
		}
		if !strings.Contains(r.stdout, "rebuild: 100%") {
			t.Errorf("rebuild printed no final progress line (stdout is not a terminal):\n%s", r.stdout)
		}
		t.Log("\n" + r.stdout)

		reads := openTestReadStore(t, dir)
		defer reads.Close()
		after := takeSnapshot(t, embeddedReaders(reads), w)
		if d := before.diff(after); d != "" {
			t.Errorf("the rebuilt read models differ from what ticketd's projectors built:\n%s", d)
		}
		p, ok, _ := reads.Profiles().Profile(ctx, late.ID)
		if !ok || p.Email != "late@example.com" {
			t.Errorf("the profile registered after the projectors stopped is %+v (found %v)", p, ok)
		}
	})

	t.Run("status after", func(t *testing.T) {
		r := ctl(t, env, "projections", "status")
		_, rows := parseStatus(t, r.stdout)
		for _, name := range projectionNames() {
			want := cps[name]
			if name == projections.NameProfiles {
				want = head // the late registration is the last record
			}
			if row := rows[name]; row.checkpoint != want || row.pending != "0" || row.state != "up to date" {
				t.Errorf("after the rebuild, %s = %+v, want checkpoint %d, up to date\n%s", name, row, want, r.stdout)
			}
		}
	})
}

// damageProfile overwrites a profile with a wrong name, in a commit that
// leaves the checkpoint where it is.
func damageProfile(t testing.TB, views *readembedded.ProfileViews, id uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	v, ok, err := views.Profile(ctx, id)
	if err != nil || !ok {
		t.Fatalf("profile %s: %v %v", id, ok, err)
	}
	v.Name = "Damaged"
	cp, _ := views.Checkpoint(ctx)
	if err := views.Commit(ctx, projections.ProfilesCommit{From: cp, To: cp, Profiles: []readmodels.ProfileView{v}}); err != nil {
		t.Fatal(err)
	}
}

func damageEvent(t testing.TB, views *readembedded.EventViews, id uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	v, ok, err := views.Event(ctx, id)
	if err != nil || !ok {
		t.Fatalf("event %s: %v %v", id, ok, err)
	}
	v.TicketTypes = append(v.TicketTypes[:0:0], v.TicketTypes...)
	v.TicketTypes[0].Available += 7
	cp, _ := views.Checkpoint(ctx)
	if err := views.Commit(ctx, projections.EventsCommit{From: cp, To: cp, Events: []readmodels.EventView{v}}); err != nil {
		t.Fatal(err)
	}
}

func TestEmbeddedRebuildOfSomeProjections(t *testing.T) {
	dir, w, _ := ticketdDataDir(t, smallWorld)
	reads := openTestReadStore(t, dir)
	before := takeSnapshot(t, embeddedReaders(reads), w)
	damageProfile(t, reads.Profiles(), w.users[1])
	if before.diff(takeSnapshot(t, embeddedReaders(reads), w)) == "" {
		t.Fatal("the damage does not show")
	}
	reads.Close()

	r := ctl(t, map[string]string{"TICKETD_DATA_DIR": dir}, "projections", "rebuild", "profiles", "--batch", "3", "events", "profiles")
	if r.code != 0 {
		t.Fatalf("rebuild profiles events: %s", r)
	}
	for _, name := range []string{"bookings", "payments"} {
		if strings.Contains(r.stdout, name+"  ") {
			t.Errorf("rebuild of profiles and events also reports %s:\n%s", name, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "Rebuilt 2 read model(s)") {
		t.Errorf("rebuild output: %s", r)
	}
	reads = openTestReadStore(t, dir)
	defer reads.Close()
	if d := before.diff(takeSnapshot(t, embeddedReaders(reads), w)); d != "" {
		t.Errorf("after rebuilding profiles and events (in commits of 3 records):\n%s", d)
	}
}

// gatedLog delivers half of the first batch of a subscription, then
// nothing until the subscription ends: a rebuild caught mid-way.
type gatedLog struct {
	projections.EventLog
	started chan struct{}
}

func (g *gatedLog) SubscribeAll(ctx context.Context, from uint64, filter es.Filter, handle func([]es.Record) error) error {
	return g.EventLog.SubscribeAll(ctx, from, filter, func(b []es.Record) error {
		if err := handle(b[:len(b)/2]); err != nil {
			return err
		}
		select {
		case g.started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	})
}

func TestEmbeddedRebuildInterruptedKeepsTheCurrentVersion(t *testing.T) {
	dir, w, cps := ticketdDataDir(t, smallWorld)
	reads := openTestReadStore(t, dir)
	before := takeSnapshot(t, embeddedReaders(reads), w)
	reads.Close()

	cfg := &Config{DataDir: dir, LogLevel: "error"}
	logger := slog.New(slog.DiscardHandler)
	b, err := openEmbedded(context.Background(), cfg, logger, "stop it")
	if err != nil {
		t.Fatal(err)
	}
	gate := &gatedLog{EventLog: b.log, started: make(chan struct{}, 1)}
	b.log = gate
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-gate.started
		cancel() // Ctrl-C
	}()
	var out strings.Builder
	c := &cli{getenv: func(string) string { return "" }, stdout: &out, stderr: &out}
	err = c.rebuildOn(ctx, b, projectionNames(), rebuildOptions{batch: 2}, logger)
	b.close()
	if err == nil || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "Run it again") {
		t.Fatalf("an interrupted rebuild returned %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "interrupted: new version discarded") {
		t.Errorf("output does not say the new versions were discarded:\n%s", out.String())
	}

	reads = openTestReadStore(t, dir)
	if d := before.diff(takeSnapshot(t, embeddedReaders(reads), w)); d != "" {
		t.Errorf("after an interrupted rebuild the read models changed:\n%s", d)
	}
	for _, m := range []interface {
		Checkpoint(context.Context) (uint64, error)
	}{reads.Events(), reads.Bookings(), reads.Payments(), reads.Profiles()} {
		cp, _ := m.Checkpoint(context.Background())
		found := false
		for _, want := range cps {
			found = found || cp == want
		}
		if !found {
			t.Errorf("a checkpoint moved to %d after an interrupted rebuild (were %v)", cp, cps)
		}
	}
	reads.Close()
	// And running it again rebuilds from scratch.
	if r := ctl(t, map[string]string{"TICKETD_DATA_DIR": dir}, "projections", "rebuild"); r.code != 0 {
		t.Fatalf("rebuild after the interrupted one: %s", r)
	}
}

func TestEmbeddedCommandsSayTicketdIsRunning(t *testing.T) {
	dir := t.TempDir()
	held := openTestEventStore(t, dir) // ticketd, running
	defer held.Close()
	abs, _ := filepath.Abs(dir)
	env := map[string]string{"TICKETD_DATA_DIR": dir}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"create-admin", []string{"users", "create-admin", "--email", "root@example.com", "--password", "change-me-please"},
			"ticketd is running on " + abs + "; stop it, or restart it with TICKETD_ADMIN_EMAIL and TICKETD_ADMIN_PASSWORD set (it creates the admin at start-up)"},
		{"rebuild", []string{"projections", "rebuild"},
			"ticketd is running on " + abs + "; an embedded rebuild is offline: stop ticketd first, then run this again"},
		{"status", []string{"projections", "status"},
			"ticketd is running on " + abs + "; its stores are locked while it runs: read the lag from its GET /metrics"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ctl(t, env, tc.args...)
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("want exit 1 and %q; got %s", tc.want, r)
			}
		})
	}
}

func TestCreateAdminRegistersThenPromotes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := map[string]string{"TICKETD_DATA_DIR": dir}

	r := ctl(t, env, "users", "create-admin", "--email", "root@example.com", "--password", "change-me-please", "--name", "Root")
	if r.code != 0 || !strings.Contains(r.stdout, "Registered administrator root@example.com") {
		t.Fatalf("create-admin on a new data dir: %s", r)
	}

	// A customer registers through ticketd.
	store := openTestEventStore(t, dir)
	customers := commands.NewUsers(commands.NewRepository(store, commands.NewRegistry(), time.Now), plainHasher{})
	ana, err := customers.Register(ctx, commands.NewMsg(), commands.RegisterUser{UserID: uuid.New(), Email: "ana@example.com", Password: "correct horse", Name: "Ana", Role: user.Customer})
	if err != nil {
		t.Fatal(err)
	}
	store.Close()

	// The email and password may come from ticketd's variables.
	promoteEnv := map[string]string{"TICKETD_DATA_DIR": dir, "TICKETD_ADMIN_EMAIL": "ana@example.com", "TICKETD_ADMIN_PASSWORD": "another password"}
	r = ctl(t, promoteEnv, "users", "create-admin")
	if r.code != 0 || !strings.Contains(r.stdout, "Promoted ana@example.com (user "+ana.ID.String()+") to administrator") ||
		!strings.Contains(r.stdout, "password is unchanged") {
		t.Fatalf("create-admin of an existing customer: %s", r)
	}
	r = ctl(t, promoteEnv, "users", "create-admin")
	if r.code != 0 || !strings.Contains(r.stdout, "ana@example.com is already an administrator") {
		t.Fatalf("create-admin again: %s", r)
	}

	store = openTestEventStore(t, dir)
	defer store.Close()
	repo := commands.NewRepository(store, commands.NewRegistry(), time.Now)
	got, err := commands.NewUsers(repo, plainHasher{}).Authenticate(ctx, "ana@example.com", "correct horse")
	if err != nil || got.Role != user.Admin {
		t.Errorf("Ana logs in with her own password as %v (%v), want an admin", got.Role, err)
	}
	root, err := commands.NewUsers(repo, auth.NewArgon2id()).Authenticate(ctx, "root@example.com", "change-me-please")
	if err != nil || root.Role != user.Admin || root.Name != "Root" {
		t.Errorf("root logs in as %+v (%v), want the admin Root", root, err)
	}
}
