package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/fault"
	"github.com/ticketd/ticketing/domain/user"
	"github.com/ticketd/ticketing/infra/auth"
)

var createAdminCommand = command{
	name:    "users create-admin",
	args:    "--email E --password P [--name N]",
	summary: "register an administrator, or make an existing user one",
	help: `Makes sure an administrator with this email exists in ticketd's event
store: registers one with the password given, or grants the admin role to
the user who already has the email (their password is left as it is).
Running it again changes nothing.

With the embedded event store (the default), it writes to the store of the
data directory, which a running ticketd holds: stop ticketd first, or
instead restart ticketd with TICKETD_ADMIN_EMAIL and TICKETD_ADMIN_PASSWORD
set, which creates the admin at start-up. In the distributed mode, point
--data-dir at the users service's data directory; its relay publishes the
new records when it starts.

With KurrentDB (TICKETD_EVENTSTORE_URL or --eventstore-url, as ticketd is
configured), it writes there while ticketd runs, and the administrator can
log in at once.

The email and password default to TICKETD_ADMIN_EMAIL and
TICKETD_ADMIN_PASSWORD, which keeps the password out of the process list.`,
	use: useDataDir,
	setup: func(fs *flag.FlagSet) func(context.Context, *cli, *Config, []string) error {
		var email, password, name string
		fs.StringVar(&email, "email", "", "the administrator's email (TICKETD_ADMIN_EMAIL)")
		fs.StringVar(&password, "password", "", "the password of a new administrator, at least 8 characters (TICKETD_ADMIN_PASSWORD)")
		fs.StringVar(&name, "name", "Administrator", "the name of a new administrator")
		return func(ctx context.Context, c *cli, cfg *Config, args []string) error {
			const cmd = "users create-admin"
			if err := noArgs(cmd, args); err != nil {
				return err
			}
			if email == "" {
				email = strings.TrimSpace(c.getenv("TICKETD_ADMIN_EMAIL"))
			}
			if password == "" {
				password = c.getenv("TICKETD_ADMIN_PASSWORD")
			}
			switch {
			case email == "" && password == "":
				return usagef(cmd, "--email and --password are required")
			case email == "":
				return usagef(cmd, "--email is required")
			case password == "":
				return usagef(cmd, "--password is required")
			}
			// Refuse what the users service would refuse before touching
			// the store (which a running ticketd may hold).
			if err := user.CheckCredentials(email, password, name); err != nil {
				return usagef(cmd, "%v", err)
			}
			return c.createAdmin(ctx, cfg, email, password, name)
		}
	},
}

// createAdmin runs commands.Users.EnsureAdmin on the event store.
func (c *cli) createAdmin(ctx context.Context, cfg *Config, email, password, name string) error {
	const cmd = "users create-admin"
	logger := newLogger(cfg, c.stderr)
	store, err := openEventStore(ctx, cfg, logger, false,
		"stop it, or restart it with TICKETD_ADMIN_EMAIL and TICKETD_ADMIN_PASSWORD set (it creates the admin at start-up)")
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	defer store.Close()
	reg := commands.NewRegistry()
	before, err := userRevision(ctx, store, reg, email)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	users := commands.NewUsers(commands.NewRepository(store, reg, time.Now), auth.NewArgon2id())
	admin, err := users.EnsureAdmin(ctx, email, password, name)
	var invalid *fault.Input
	if errors.As(err, &invalid) {
		return usagef(cmd, "%v", err)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", cmd, email, err)
	}
	after, err := userRevision(ctx, store, reg, email)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	where := "in " + absDir(cfg.DataDir)
	if cfg.KurrentDB() {
		where = "in KurrentDB at " + redactURL(cfg.EventStoreURL)
	}
	switch {
	case after == before:
		fmt.Fprintf(c.stdout, "%s is already an administrator (user %s); nothing changed.\n", admin.Email, admin.ID)
		return nil
	case before < 0:
		fmt.Fprintf(c.stdout, "Registered administrator %s (user %s) %s.\n", admin.Email, admin.ID, where)
	default:
		fmt.Fprintf(c.stdout, "Promoted %s (user %s) to administrator %s; their password is unchanged.\n", admin.Email, admin.ID, where)
	}
	if cfg.KurrentDB() {
		fmt.Fprintln(c.stdout, "ticketd reads users from the event store: the administrator can log in now.")
	} else {
		fmt.Fprintln(c.stdout, "ticketd serves the change when it next runs on this data directory.")
	}
	return nil
}

// userRevision is the revision of the stream of the user who owns email,
// or -1 when no user does. Comparing it before and after tells whether
// create-admin wrote anything; the head of the whole log would not, as
// other writers may share a KurrentDB.
func userRevision(ctx context.Context, store commands.EventStore, reg *es.Registry, email string) (int64, error) {
	recs, err := store.ReadStream(ctx, user.EmailStream(email), es.ReadOptions{Limit: 1})
	if errors.Is(err, es.ErrStreamNotFound) || (err == nil && len(recs) == 0) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the reservation of %s: %w", email, err)
	}
	p, err := reg.Decode(&recs[0])
	if err != nil {
		return 0, err
	}
	reserved, ok := p.(user.EmailReserved)
	if !ok {
		return 0, fmt.Errorf("the reservation stream of %s starts with %s, want %s", email, recs[0].Type, user.TypeEmailReserved)
	}
	recs, err = store.ReadStream(ctx, user.Stream(reserved.UserID), es.ReadOptions{Direction: es.Backward, FromEnd: true, Limit: 1})
	if errors.Is(err, es.ErrStreamNotFound) || (err == nil && len(recs) == 0) {
		// Reserved, but the registration is not stored (yet): EnsureAdmin
		// completes it.
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read user %s: %w", reserved.UserID, err)
	}
	return int64(recs[0].Revision), nil
}
