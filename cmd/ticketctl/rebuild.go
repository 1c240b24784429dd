package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ticketd/ticketing/projections"
)

var rebuildCommand = command{
	name:    "projections rebuild",
	args:    "[NAME...]",
	summary: "rebuild read models from the log, then switch readers over",
	help: `Rebuilds the read models named (all of them when none is; see
'ticketctl projections list') from the event log: each is replayed from
the first record into a fresh, invisible version while the current version
keeps serving, catches up to the head of the log, and then readers switch
to it in one atomic step. Nobody ever sees a half-built model. The
projections are rebuilt side by side; the progress bar shows how far
through the log they are, with the rate and the time left.

Distributed mode (TICKETD_REDIS_URL and TICKETD_KAFKA_BROKERS) rebuilds the
Redis read models from the Kafka log while every service keeps serving: the
new version follows the log until it has reached the live one, then takes
over, and the live projector carries on from it.

Embedded mode rebuilds the read models of the data directory from its
event store, or from KurrentDB when TICKETD_EVENTSTORE_URL is set (as for
ticketd). ticketd holds the read models while it runs, so this rebuild is
offline: stop ticketd first, run it, start ticketd again. The distributed
mode rebuilds from the Kafka log whichever event store the services use,
since its read models count their progress in that log.

If the rebuild fails or is interrupted (Ctrl-C), the new versions that
were not switched to yet are discarded and the current ones keep serving.
Running the command again starts a fresh rebuild from the first record:
simple, and always correct. (A version left behind by a killed ticketctl is
deleted when ticketd next opens the embedded store, or by Redis when its
time to live runs out.)`,
	use: useDataDir | useDistributed,
	setup: func(fs *flag.FlagSet) func(context.Context, *cli, *Config, []string) error {
		opts := rebuildOptions{switchTimeout: 30 * time.Second}
		fs.IntVar(&opts.batch, "batch", 4096, "records applied per commit to the new version")
		return func(ctx context.Context, c *cli, cfg *Config, args []string) error {
			names, err := checkNames("projections rebuild", args)
			if err != nil {
				return err
			}
			if opts.batch < 1 {
				return usagef("projections rebuild", "--batch must be at least 1, got %d", opts.batch)
			}
			return c.rebuild(ctx, cfg, names, opts)
		}
	},
}

type rebuildOptions struct {
	// batch caps the records of one commit to the new version.
	batch int
	// switchTimeout bounds how long, online, the new version may take to
	// reach the live one's checkpoint after reaching the head it started
	// for; past it the new version is switched to anyway.
	switchTimeout time.Duration
}

// rebuildResult is how the rebuild of one read model ended.
type rebuildResult struct {
	name          string
	oldCheckpoint uint64
	newCheckpoint uint64
	records       uint64 // records the new version applied
	err           error
}

func (c *cli) rebuild(ctx context.Context, cfg *Config, names []string, opts rebuildOptions) error {
	logger := newLogger(cfg, c.stderr)
	b, err := openBackend(ctx, cfg, logger,
		"an embedded rebuild is offline: stop ticketd first, then run this again (there is no online rebuild of the embedded stores; the distributed mode, on Redis and Kafka, rebuilds online)")
	if err != nil {
		return fmt.Errorf("projections rebuild: %w", err)
	}
	defer b.close()
	return c.rebuildOn(ctx, b, names, opts, logger)
}

// rebuildOn rebuilds the read models names of b.
func (c *cli) rebuildOn(ctx context.Context, b *backend, names []string, opts rebuildOptions, logger *slog.Logger) error {
	models := make([]readModel, len(names))
	for i, n := range names {
		models[i], _ = b.model(n)
	}
	head, err := b.log.HeadPosition(ctx)
	if err != nil {
		return fmt.Errorf("projections rebuild: log head: %w", err)
	}
	fmt.Fprintf(c.stdout, "Rebuilding %s from the log (head %s) in the %s.\n", strings.Join(names, ", "), count(head), b.where)
	if b.online {
		fmt.Fprintln(c.stdout, "The current versions keep serving until each new one has caught up; the services may keep running.")
	} else {
		fmt.Fprintln(c.stdout, "The current versions stay in place until each new one is complete.")
	}

	start := time.Now()
	// Stage every new version first, so that the one reading of the log
	// starts with every projection on board.
	rp := newReplay(b.log, head)
	prog := newProgress(c.stdout, head, len(models))
	if b.byteOffsets {
		prog.counted = rp.Read
	}
	jobs := make([]*rebuildJob, len(models))
	for i, m := range models {
		j := &rebuildJob{m: m, res: rebuildResult{name: m.name}}
		jobs[i] = j
		if j.res.oldCheckpoint, err = m.checkpoint(ctx); err != nil {
			j.res.err = fmt.Errorf("read the current checkpoint: %w", err)
			continue
		}
		if j.st, err = m.stage(); err != nil {
			j.res.err = fmt.Errorf("stage a new version: %w", err)
			continue
		}
		j.log = rp.add(opts.batch)
		prog.track(j.log)
	}
	rp.Start(ctx)
	prog.Start()
	var wg sync.WaitGroup
	for _, j := range jobs {
		if j.st == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			j.run(ctx, b.online, head, opts, logger)
		}()
	}
	wg.Wait()
	rp.Stop()
	prog.Stop()
	took := time.Since(start)
	results := make([]rebuildResult, len(jobs))
	for i, j := range jobs {
		results[i] = j.res
	}
	return c.report(ctx, results, rp.Read(), took)
}

// rebuildJob is the rebuild of one read model.
type rebuildJob struct {
	m   readModel
	st  *stagedModel // the new version
	log *replayLog   // its share of the log
	res rebuildResult
}

// run builds the staged version: it runs its projector until it has
// applied the log up to head (and, online, until it has reached the live
// version), stops it, and promotes the version; or discards it if
// anything fails or ctx ends first.
func (j *rebuildJob) run(ctx context.Context, online bool, head uint64, opts rebuildOptions, logger *slog.Logger) {
	defer j.log.leave()
	p := j.st.projector(j.log)
	run := startProjector(ctx, p)
	fail := func(err error) {
		run.halt()
		j.res.records, j.res.newCheckpoint = j.log.Records(), p.Checkpoint()
		if derr := j.st.discard(); derr != nil {
			err = errors.Join(err, fmt.Errorf("discard the new version: %w", derr))
		}
		j.res.err = err
	}

	if err := run.until(ctx, func() (bool, error) { return j.log.Applied() >= head, nil }); err != nil {
		fail(err)
		return
	}
	if online {
		// The services kept writing while this version was built, and the
		// live projector kept up with them: follow the log until this
		// version has what the live one has, so that switching does not
		// take readers back in time.
		deadline := time.Now().Add(opts.switchTimeout)
		err := run.until(ctx, func() (bool, error) {
			live, err := j.m.checkpoint(ctx)
			if err != nil {
				return false, fmt.Errorf("read the live checkpoint: %w", err)
			}
			if p.Checkpoint() >= live {
				return true, nil
			}
			if time.Now().After(deadline) {
				logger.Warn("switching to the new version before it reached the live one; the live projector resumes from it",
					"projection", j.m.name, "new", p.Checkpoint(), "live", live)
				return true, nil
			}
			return false, nil
		})
		if err != nil {
			fail(err)
			return
		}
	}
	if err := run.halt(); err != nil {
		fail(err)
		return
	}
	if err := ctx.Err(); err != nil {
		fail(err)
		return
	}
	j.res.records, j.res.newCheckpoint = j.log.Records(), p.Checkpoint()
	if err := j.st.promote(); err != nil {
		fail(fmt.Errorf("switch readers to the new version: %w", err))
	}
}

// runningProjector is a projector running on its own goroutine.
type runningProjector struct {
	stop context.CancelFunc
	done chan struct{}
	err  error
}

func startProjector(ctx context.Context, p *projections.Projector) *runningProjector {
	runCtx, stop := context.WithCancel(ctx)
	r := &runningProjector{stop: stop, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = p.Run(runCtx)
	}()
	return r
}

// until waits, checking every few milliseconds, for cond to hold. It
// fails when ctx ends, cond fails, or the projector stops.
func (r *runningProjector) until(ctx context.Context, cond func() (bool, error)) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.done:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if r.err == nil {
				return errors.New("the projector stopped")
			}
			return r.err
		case <-t.C:
		}
	}
}

// halt stops the projector and waits for it: nil if it stopped because it
// was told to, its error if it had failed.
func (r *runningProjector) halt() error {
	r.stop()
	<-r.done
	if errors.Is(r.err, context.Canceled) {
		return nil
	}
	return r.err
}

// report prints how each rebuild ended and the overall rate; it fails when
// any rebuild did.
// report says how each rebuild ended; events is how many records of the
// log, up to the head the rebuild started at, were replayed.
func (c *cli) report(ctx context.Context, results []rebuildResult, events uint64, took time.Duration) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	var failed []string
	for _, r := range results {
		switch {
		case r.err == nil:
			fmt.Fprintf(tw, "%s\tswitched to the new version\tcheckpoint %s (was %s)\t%s records applied\n",
				r.name, count(r.newCheckpoint), count(r.oldCheckpoint), count(r.records))
		case errors.Is(r.err, context.Canceled) && ctx.Err() != nil:
			failed = append(failed, r.name)
			fmt.Fprintf(tw, "%s\tinterrupted: new version discarded\tthe current version keeps serving\t\n", r.name)
		default:
			failed = append(failed, r.name)
			fmt.Fprintf(tw, "%s\tFAILED: new version discarded\tthe current version keeps serving\t\n", r.name)
		}
	}
	tw.Flush()
	if len(failed) == 0 {
		rate := 0.0
		if took > 0 {
			rate = float64(events) / took.Seconds()
		}
		fmt.Fprintf(c.stdout, "Rebuilt %d read model(s) from %s events in %s: %s events/s.\n", len(results), count(events), fmtDuration(took), count(uint64(rate)))
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("projections rebuild: interrupted; %s not rebuilt (the current versions keep serving). Run it again to start a fresh rebuild", strings.Join(failed, ", "))
	}
	var errs []error
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.name, r.err))
		}
	}
	return fmt.Errorf("projections rebuild: %w", errors.Join(errs...))
}
