package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/fault"
	"github.com/ticketd/ticketing/domain/user"
	"github.com/ticketd/ticketing/infra/auth"
)

var createAdminCommand = command{
	name:    "users create-admin",
	args:    "--email E --password P [--name N]",
	summary: "register an administrator, or make an existing user one",
	help: `Makes sure an administrator with this email exists, in the embedded event
store of the data directory: registers one with the password given, or
grants the admin role to the user who already has the email (their
password is left as it is). Running it again changes nothing.

It writes to ticketd's event store, which a running ticketd holds: stop
ticketd first, or instead restart ticketd with TICKETD_ADMIN_EMAIL and
TICKETD_ADMIN_PASSWORD set, which creates the admin at start-up. In the
distributed mode, point --data-dir at the users service's data directory;
its relay publishes the new records when it starts.

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

// createAdmin runs commands.Users.EnsureAdmin on the embedded event store.
func (c *cli) createAdmin(ctx context.Context, cfg *Config, email, password, name string) error {
	const cmd = "users create-admin"
	logger := newLogger(cfg, c.stderr)
	store, err := openEventStore(cfg, logger, false,
		"stop it, or restart it with TICKETD_ADMIN_EMAIL and TICKETD_ADMIN_PASSWORD set (it creates the admin at start-up)")
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	defer store.Close()
	before, err := store.HeadPosition(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	users := commands.NewUsers(commands.NewRepository(store, commands.NewRegistry(), time.Now), auth.NewArgon2id())
	admin, err := users.EnsureAdmin(ctx, email, password, name)
	var invalid *fault.Input
	if errors.As(err, &invalid) {
		return usagef(cmd, "%v", err)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", cmd, email, err)
	}
	after, err := store.HeadPosition(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	dir := absDir(cfg.DataDir)
	switch {
	case after == before:
		fmt.Fprintf(c.stdout, "%s is already an administrator (user %s); nothing changed.\n", admin.Email, admin.ID)
	case admin.CreatedAt.Equal(admin.UpdatedAt):
		// Registration records the user with one time; a promotion
		// changes only UpdatedAt.
		fmt.Fprintf(c.stdout, "Registered administrator %s (user %s) in %s.\n", admin.Email, admin.ID, dir)
	default:
		fmt.Fprintf(c.stdout, "Promoted %s (user %s) to administrator in %s; their password is unchanged.\n", admin.Email, admin.ID, dir)
	}
	fmt.Fprintln(c.stdout, "ticketd serves the change when it next runs on this data directory.")
	return nil
}
