package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/ticketd/ticketing/domain/es"
)

var listCommand = command{
	name:    "projections list",
	summary: "list the read model projections and what each serves",
	help: `Lists the projections, the read models that serve ticketd's queries, with
what each one serves. Their names are the arguments of
'ticketctl projections rebuild'. It needs no configuration.`,
	setup: func(*flag.FlagSet) func(context.Context, *cli, *Config, []string) error {
		return func(_ context.Context, c *cli, _ *Config, args []string) error {
			if err := noArgs("projections list", args); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSERVES")
			for _, p := range projectionList {
				fmt.Fprintf(tw, "%s\t%s\n", p.name, p.serves)
			}
			return tw.Flush()
		}
	},
}

var statusCommand = command{
	name:    "projections status",
	summary: "show each projection's checkpoint, the log head and the lag",
	help: `Shows, for each projection, the log position its read model has applied
up to (its checkpoint), and how far that is behind the head of the log:

  LAG      head minus checkpoint, as ticketd's ticketd_projection_lag
           metric: an upper bound, since records the projection does not
           read count too;
  PENDING  the records for this projection after its checkpoint, which
           it has yet to apply: 0 means up to date.

Embedded mode reads the read models of the data directory, which a
running ticketd holds (stop it first, or read the lag from its
GET /metrics), and its event store: the embedded one, or KurrentDB when
TICKETD_EVENTSTORE_URL is set. Distributed mode (TICKETD_REDIS_URL and
TICKETD_KAFKA_BROKERS) reads the Redis read models and the head of the
Kafka log while everything runs. Neither changes a read model.`,
	use: useDataDir | useDistributed,
	setup: func(*flag.FlagSet) func(context.Context, *cli, *Config, []string) error {
		return func(ctx context.Context, c *cli, cfg *Config, args []string) error {
			if err := noArgs("projections status", args); err != nil {
				return err
			}
			return c.status(ctx, cfg)
		}
	},
}

// projectionStatus is where one projection stands.
type projectionStatus struct {
	name       string
	checkpoint uint64
	// pending counts the records for the projection after its checkpoint,
	// up to the head; exact is false when the count stopped at the scan
	// limit and is only a lower bound.
	pending uint64
	exact   bool
}

// pendingScanLimit bounds how many log records status reads to count what
// is pending: enough for any projection that keeps up, without reading a
// whole log behind one that has stopped.
const pendingScanLimit = 200_000

func (c *cli) status(ctx context.Context, cfg *Config) error {
	logger := newLogger(cfg, c.stderr)
	b, err := openBackend(ctx, cfg, logger,
		"its stores are locked while it runs: read the lag from its GET /metrics (ticketd_projection_lag), or stop it to see the status here")
	if err != nil {
		return fmt.Errorf("projections status: %w", err)
	}
	defer b.close()
	head, err := b.log.HeadPosition(ctx)
	if err != nil {
		return fmt.Errorf("projections status: log head: %w", err)
	}
	var sts []projectionStatus
	for _, m := range b.models {
		cp, err := m.checkpoint(ctx)
		if err != nil {
			return fmt.Errorf("projections status: %s checkpoint: %w", m.name, err)
		}
		sts = append(sts, projectionStatus{name: m.name, checkpoint: cp})
	}
	if err := countPending(ctx, b, head, sts); err != nil {
		return fmt.Errorf("projections status: %w", err)
	}
	writeStatus(c.stdout, cfg, b, head, sts)
	return nil
}

// countPending reads the log after the lowest checkpoint, up to head (or
// pendingScanLimit records), and counts each projection's pending records.
func countPending(ctx context.Context, b *backend, head uint64, sts []projectionStatus) error {
	from := head
	for _, s := range sts {
		from = min(from, s.checkpoint)
	}
	filters := make([]es.Filter, len(sts))
	for i, s := range sts {
		m, _ := b.model(s.name)
		filters[i] = m.filter
	}
	scanned := 0
	for from < head && scanned < pendingScanLimit {
		recs, err := b.log.ReadAll(ctx, from, 4096)
		if err != nil {
			return fmt.Errorf("read the log after %d: %w", from, err)
		}
		if len(recs) == 0 {
			break
		}
		for i := range recs {
			r := &recs[i]
			if r.Position > head {
				from = head
				break
			}
			for j := range sts {
				if r.Position > sts[j].checkpoint && filters[j].Match(r) {
					sts[j].pending++
				}
			}
			from = r.Position
		}
		scanned += len(recs)
	}
	for i := range sts {
		sts[i].exact = from >= head || sts[i].checkpoint >= head
	}
	return nil
}

func writeStatus(w io.Writer, cfg *Config, b *backend, head uint64, sts []projectionStatus) {
	fmt.Fprintf(w, "Mode:     %s (%s)\n", cfg.Mode(), b.where)
	fmt.Fprintf(w, "Log head: %d\n", head)
	if b.byteOffsets {
		fmt.Fprintln(w, "          (positions in KurrentDB's $all are offsets in its log: LAG is in bytes, PENDING in events)")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECTION\tCHECKPOINT\tLAG\tPENDING\tSTATE")
	for _, s := range sts {
		var lag uint64
		if head > s.checkpoint {
			lag = head - s.checkpoint
		}
		pending := fmt.Sprint(s.pending)
		state := "up to date"
		switch {
		case s.checkpoint > head:
			state = "ahead of the log: rebuild it"
		case !s.exact:
			pending = fmt.Sprintf("≥%d", s.pending)
			state = "behind"
		case s.pending > 0:
			state = "behind"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", s.name, s.checkpoint, lag, pending, state)
	}
	tw.Flush()
}

// checkNames returns the projections named, without repeats, or all of
// them when none is; an unknown name is a usage error.
func checkNames(cmd string, names []string) ([]string, error) {
	if len(names) == 0 {
		return projectionNames(), nil
	}
	var out []string
	for _, n := range names {
		if !slices.Contains(projectionNames(), n) {
			return nil, usagef(cmd, "unknown projection %q (want %s)", n, joinNames())
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func joinNames() string {
	names := projectionNames()
	s := ""
	for i, n := range names {
		switch {
		case i == 0:
		case i == len(names)-1:
			s += " or "
		default:
			s += ", "
		}
		s += n
	}
	return s
}
