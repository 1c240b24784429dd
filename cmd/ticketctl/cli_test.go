package main

import (
	"strings"
	"testing"
)

func TestUsageErrorsExit2AndSayWhatIsWrong(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string // on stderr, before the hint to -h
		hint string // the help it points to
	}{
		{"no command", nil, nil, "ticketctl: no command given", "ticketctl -h"},
		{"unknown command", nil, []string{"bogus"}, `ticketctl: unknown command "bogus" (want users or projections)`, "ticketctl -h"},
		{"flag before the command", nil, []string{"--data-dir", dir, "projections", "status"}, "ticketctl: flags go after the command (for example: ticketctl projections status --data-dir)", "ticketctl -h"},
		{"missing subcommand", nil, []string{"projections"}, "ticketctl projections: missing subcommand (want list, status, rebuild)", "ticketctl projections -h"},
		{"unknown subcommand", nil, []string{"users", "delete"}, `ticketctl users: unknown subcommand "delete" (want create-admin)`, "ticketctl users -h"},
		{"unknown projection", nil, []string{"projections", "rebuild", "events", "nope"}, `ticketctl projections rebuild: unknown projection "nope" (want events, bookings, payments or profiles)`, "ticketctl projections rebuild -h"},
		{"bad batch", nil, []string{"projections", "rebuild", "--batch", "0"}, "ticketctl projections rebuild: --batch must be at least 1, got 0", "ticketctl projections rebuild -h"},
		{"batch not a number", nil, []string{"projections", "rebuild", "--batch", "many"}, `ticketctl projections rebuild: invalid value "many" for flag -batch: parse error`, "ticketctl projections rebuild -h"},
		{"unknown flag", nil, []string{"projections", "status", "--verbose"}, "ticketctl projections status: flag provided but not defined: -verbose", "ticketctl projections status -h"},
		{"argument to list", nil, []string{"projections", "list", "events"}, `ticketctl projections list: unexpected argument "events" (this command takes flags only)`, "ticketctl projections list -h"},
		{"half distributed", map[string]string{"TICKETD_REDIS_URL": "redis://127.0.0.1:6379"}, []string{"projections", "status"},
			"ticketctl projections status: distributed mode needs both TICKETD_KAFKA_BROKERS and TICKETD_REDIS_URL (or neither, for the embedded mode on TICKETD_DATA_DIR)", "ticketctl projections status -h"},
		{"not a KurrentDB connection string", map[string]string{"TICKETD_EVENTSTORE_URL": "https://localhost:2113"}, []string{"users", "create-admin", "--email", "root@example.com", "--password", "change-me-please"},
			"ticketctl users create-admin: eventstore-url: want a kurrentdb:// or esdb:// connection string (for example kurrentdb://localhost:2113?tls=false), or nothing for the embedded event store of the data directory", "ticketctl users create-admin -h"},
		{"no KurrentDB timeout", nil, []string{"projections", "status", "--eventstore-url", "kurrentdb://localhost:2113", "--eventstore-timeout", "0s"},
			"ticketctl projections status: eventstore-timeout: want a positive duration such as 10s, got 0s", "ticketctl projections status -h"},
		{"bad log level", map[string]string{"TICKETD_LOG_LEVEL": "loud"}, []string{"projections", "status"}, `ticketctl projections status: log-level: "loud" is not one of debug, info, warn, error`, "ticketctl projections status -h"},
		{"create-admin without credentials", nil, []string{"users", "create-admin", "--data-dir", dir}, "ticketctl users create-admin: --email and --password are required", "ticketctl users create-admin -h"},
		{"create-admin without password", nil, []string{"users", "create-admin", "--email", "root@example.com"}, "ticketctl users create-admin: --password is required", "ticketctl users create-admin -h"},
		{"create-admin with a short password", nil, []string{"users", "create-admin", "--email", "root@example.com", "--password", "short"},
			"ticketctl users create-admin: invalid input: password must be at least 8 characters", "ticketctl users create-admin -h"},
		{"create-admin with a bad email", nil, []string{"users", "create-admin", "--email", "root", "--password", "change-me-please"},
			"ticketctl users create-admin: invalid input: email must be a valid email address", "ticketctl users create-admin -h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ctl(t, tc.env, tc.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2: %s", r.code, r)
			}
			want := tc.want + "\nRun '" + tc.hint + "' for usage.\n"
			if !strings.HasSuffix(r.stderr, want) {
				t.Errorf("stderr ends\n%q\nwant it to end\n%q", r.stderr, want)
			}
			if r.stdout != "" {
				t.Errorf("a usage error wrote to stdout: %q", r.stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-h"}, []string{"Usage:\n  ticketctl <command> <subcommand> [flags] [arguments]", "users create-admin", "projections list", "projections status", "projections rebuild", "TICKETD_DATA_DIR", "TICKETD_EVENTSTORE_URL", "TICKETD_REDIS_URL", "TICKETD_KAFKA_BROKERS", "Exit status: 0 on success, 1 when the command failed, 2 when the command\nline is wrong."}},
		{[]string{"help"}, []string{"Commands:"}},
		{[]string{"projections", "-h"}, []string{"Usage:\n  ticketctl projections <subcommand>", "list ", "status ", "rebuild "}},
		{[]string{"help", "projections", "rebuild"}, []string{"Usage:\n  ticketctl projections rebuild [flags] [NAME...]"}},
		{[]string{"projections", "rebuild", "-h"}, []string{
			"Usage:\n  ticketctl projections rebuild [flags] [NAME...]",
			"into a fresh, invisible version while the current version\nkeeps serving",
			"stop ticketd first", "Running the command again starts a fresh rebuild",
			"-batch int", "-data-dir string", "(TICKETD_DATA_DIR)", "(TICKETD_REDIS_URL)", "(TICKETD_KAFKA_BROKERS)", "(TICKETD_REDIS_PREFIX)", "(TICKETD_KAFKA_TOPIC_PREFIX)"}},
		{[]string{"projections", "status", "--help"}, []string{"Usage:\n  ticketctl projections status [flags]\n", "PENDING", "GET /metrics", "KurrentDB when\nTICKETD_EVENTSTORE_URL is set", "(TICKETD_EVENTSTORE_URL)"}},
		{[]string{"projections", "list", "-h"}, []string{"Usage:\n  ticketctl projections list [flags]\n", "-log-level"}},
		{[]string{"users", "create-admin", "-h"}, []string{
			"Usage:\n  ticketctl users create-admin [flags] --email E --password P [--name N]",
			"restart ticketd with TICKETD_ADMIN_EMAIL and TICKETD_ADMIN_PASSWORD\nset", "With KurrentDB (TICKETD_EVENTSTORE_URL or --eventstore-url",
			"-email string", "-password string", "-name string", "(TICKETD_DATA_DIR)", "(TICKETD_EVENTSTORE_URL)", "-eventstore-timeout duration"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := ctl(t, nil, tc.args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("want exit 0 and nothing on stderr: %s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("help lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
	// Only the flags a command uses are listed.
	if r := ctl(t, nil, "users", "create-admin", "-h"); strings.Contains(r.stdout, "redis") {
		t.Errorf("create-admin's help lists Redis flags:\n%s", r.stdout)
	}
}

func TestProjectionsList(t *testing.T) {
	r := ctl(t, nil, "projections", "list")
	if r.code != 0 {
		t.Fatal(r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "SERVES") {
		t.Fatalf("list:\n%s", r.stdout)
	}
	for i, name := range []string{"events", "bookings", "payments", "profiles"} {
		if f := strings.Fields(lines[i+1]); f[0] != name || len(f) < 3 {
			t.Errorf("line %d = %q, want %s and what it serves", i+1, lines[i+1], name)
		}
	}
	if !strings.Contains(r.stdout, "GET /events") || !strings.Contains(r.stdout, "GET /payment/status/{id}") {
		t.Errorf("list does not say what each serves:\n%s", r.stdout)
	}
}
