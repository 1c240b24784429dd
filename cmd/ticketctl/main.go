// Command ticketctl administers a ticketd deployment: it creates the first
// administrator, and shows and rebuilds the read models (projections).
//
// It reads the same TICKETD_* variables as ticketd, so the one environment
// points both at the same data directory, or at the same Redis and Kafka.
// Run `ticketctl -h` for the commands and `ticketctl <command> -h` for
// each one's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand, such as "projections rebuild".
type command struct {
	name string // group and subcommand, "projections rebuild"
	args string // synopsis of the arguments after the flags
	// summary is one line for the command list; help is the full text
	// shown by -h above the flags.
	summary, help string
	use           settings
	// setup defines the command's own flags on fs and returns what runs
	// it once they are parsed; args are the positional arguments.
	setup func(fs *flag.FlagSet) func(ctx context.Context, c *cli, cfg *Config, args []string) error
}

// commandList is every subcommand, in the order the help lists them.
var commandList = []command{
	createAdminCommand,
	listCommand,
	statusCommand,
	rebuildCommand,
}

// cli is one invocation's view of the world: where it writes and how it
// reads the environment.
type cli struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

// usageError is a command line that cannot be run: a missing or unknown
// command or flag, a bad value. It exits with status 2.
type usageError struct {
	cmd string // "" for the top level
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// run is ticketctl with its surroundings passed in, so tests run it in
// process: it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c := &cli{getenv: getenv, stdout: stdout, stderr: stderr}
	err := c.dispatch(ctx, args)
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		where := "ticketctl"
		help := "ticketctl -h"
		if ue.cmd != "" {
			where += " " + ue.cmd
			help = "ticketctl " + ue.cmd + " -h"
		}
		fmt.Fprintf(stderr, "%s: %s\nRun '%s' for usage.\n", where, ue.msg, help)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "ticketctl: %v\n", err)
		return exitFailure
	}
}

func (c *cli) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		c.topUsage(c.stderr)
		return usagef("", "no command given")
	}
	first := args[0]
	switch first {
	case "-h", "-help", "--help", "help":
		if first == "help" && len(args) > 1 {
			// "ticketctl help projections rebuild" is "... rebuild -h".
			return c.dispatch(ctx, append(slices.Clone(args[1:]), "-h"))
		}
		c.topUsage(c.stdout)
		return flag.ErrHelp
	}
	if strings.HasPrefix(first, "-") {
		return usagef("", "flags go after the command (for example: ticketctl projections status %s)", first)
	}
	var group []command
	for _, cmd := range commandList {
		if g, _, _ := strings.Cut(cmd.name, " "); g == first {
			group = append(group, cmd)
		}
	}
	if len(group) == 0 {
		return usagef("", "unknown command %q (want %s)", first, strings.Join(groups(), " or "))
	}
	if len(args) < 2 || isHelp(args[1]) {
		if len(args) >= 2 {
			c.groupUsage(c.stdout, first, group)
			return flag.ErrHelp
		}
		c.groupUsage(c.stderr, first, group)
		return usagef(first, "missing subcommand (want %s)", subNames(group))
	}
	for _, cmd := range group {
		if _, sub, _ := strings.Cut(cmd.name, " "); sub == args[1] {
			return c.runCommand(ctx, cmd, args[2:])
		}
	}
	return usagef(first, "unknown subcommand %q (want %s)", args[1], subNames(group))
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// runCommand parses cmd's flags (which may come before, between or after
// its positional arguments) and runs it.
func (c *cli) runCommand(ctx context.Context, cmd command, args []string) error {
	fs := flag.NewFlagSet("ticketctl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var cfg Config
	bindConfig(fs, c.getenv, &cfg, cmd.use)
	exec := cmd.setup(fs)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.commandUsage(c.stdout, cmd, fs)
				return err
			}
			return usagef(cmd.name, "%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			positional = append(positional, args[1:]...)
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	if _, err := cfg.logLevel(); err != nil {
		return usagef(cmd.name, "%v", err)
	}
	if cmd.use&useDistributed != 0 {
		if err := cfg.checkMode(); err != nil {
			return usagef(cmd.name, "%v", err)
		}
	}
	if cmd.use&useDataDir != 0 {
		if err := cfg.checkEventStore(); err != nil {
			return usagef(cmd.name, "%v", err)
		}
	}
	return exec(ctx, c, &cfg, positional)
}

func groups() []string {
	var out []string
	for _, cmd := range commandList {
		g, _, _ := strings.Cut(cmd.name, " ")
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

func subNames(group []command) string {
	names := make([]string, len(group))
	for i, cmd := range group {
		_, names[i], _ = strings.Cut(cmd.name, " ")
	}
	return strings.Join(names, ", ")
}

const configHelp = `Configuration: every setting is a flag or the TICKETD_* variable ticketd
reads (a flag wins over its variable), so ticketctl sees the deployment
ticketd sees:
  TICKETD_DATA_DIR            embedded event store and read models (./data)
  TICKETD_EVENTSTORE_URL      KurrentDB connection string; empty = the
                              embedded event store of the data directory
  TICKETD_REDIS_URL           Redis read models        } both set: distributed
  TICKETD_KAFKA_BROKERS       Kafka log of every record } mode
  TICKETD_REDIS_PREFIX        prefix of Redis keys (ticketd)
  TICKETD_KAFKA_TOPIC_PREFIX  prefix of Kafka topics (ticketing)
  TICKETD_LOG_LEVEL           debug, info, warn, error (warn)
`

func (c *cli) topUsage(w io.Writer) {
	fmt.Fprint(w, `ticketctl administers a ticketd deployment.

Usage:
  ticketctl <command> <subcommand> [flags] [arguments]

Commands:
`)
	for _, cmd := range commandList {
		fmt.Fprintf(w, "  %-22s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprint(w, "\n"+configHelp+`
Exit status: 0 on success, 1 when the command failed, 2 when the command
line is wrong.

Run 'ticketctl <command> <subcommand> -h' for a command's flags.
`)
}

func (c *cli) groupUsage(w io.Writer, group string, cmds []command) {
	fmt.Fprintf(w, "Usage:\n  ticketctl %s <subcommand> [flags] [arguments]\n\nSubcommands:\n", group)
	for _, cmd := range cmds {
		_, sub, _ := strings.Cut(cmd.name, " ")
		fmt.Fprintf(w, "  %-14s %s\n", sub, cmd.summary)
	}
	fmt.Fprintf(w, "\nRun 'ticketctl %s <subcommand> -h' for a subcommand's flags.\n", group)
}

func (c *cli) commandUsage(w io.Writer, cmd command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage:\n  ticketctl %s [flags]", cmd.name)
	if cmd.args != "" {
		fmt.Fprintf(w, " %s", cmd.args)
	}
	fmt.Fprintf(w, "\n\n%s\nFlags:\n", strings.TrimSpace(cmd.help)+"\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// noArgs refuses positional arguments to a command that takes none.
func noArgs(cmd string, args []string) error {
	if len(args) > 0 {
		return usagef(cmd, "unexpected argument %q (this command takes flags only)", args[0])
	}
	return nil
}
