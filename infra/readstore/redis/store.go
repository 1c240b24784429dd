// Package redis is the read model store of distributed mode: several
// service processes read the same read models from Redis, and one
// projector process (or two, for availability) writes them. It implements
// the same ports as the embedded store (package embedded), with the same
// guarantees, and publishes payment status changes over Redis pub/sub.
//
// # Layout
//
// Each projection's keys share the hash tag {<prefix>:<projection>} (so
// that a Redis Cluster keeps them in one slot) and the format version of
// this layout, f1, here written <base>:
//
//	<base>:active          the active generation's number
//	<base>:seq             the last generation number handed out
//	<base>:g<n>:cp         generation n's checkpoint (decimal)
//	<base>:g<n>:v          hash: view id -> view (JSON, see codec.go)
//	<base>:g<n>:k          hash: view id -> its members in the indexes
//	<base>:g<n>:l          events: sorted set, the scheduled events in listing order
//	<base>:g<n>:h          events: hash: booking id -> seat hold (JSON)
//	<base>:g<n>:u          bookings: sorted set, every booking by user, then created_at
//	<base>:g<n>:d          bookings: sorted set, bookings awaiting payment by expires_at
//
// The sorted sets have score 0 and order their members by bytes: a time
// to the nanosecond, then an id (see keys.go). A listing member carries
// the lower-cased name and venue too, so a search scans only the index.
// Payment states are published on <prefix>:feed:payment:<id>.
//
// # Atomicity
//
// Every read and every commit is one Lua script (see scripts.go): one
// round trip, and atomic. A commit compares the stored checkpoint with the
// one it expects and, only if they are equal, writes its views, their
// index entries and the new checkpoint. So two projector instances of one
// projection never both apply a batch: the second finds the checkpoint
// moved and gets projections.ErrCheckpointConflict, having written
// nothing. How durable an acknowledged commit is depends on the server's
// persistence (appendonly, appendfsync); Redis logs a script's writes as
// one transaction, so a restarted server has all of a commit or none.
// Redis must not evict these keys (maxmemory-policy noeviction); Open
// warns otherwise; an active generation found without its checkpoint is
// replaced by an empty one, which the projector rebuilds from the log.
//
// # Versions
//
// Each projection's data lives under a generation number, and <base>:active
// names the one readers use. Every read script resolves it and reads that
// generation in the same atomic step, so a request is served from one
// version. A rebuild stages a fresh generation (Stage), runs a projector
// against it, and Promote switches the pointer in one atomic script that
// also deletes the generation it replaces: readers never see a half-built
// model. A staged generation has a time to live that each commit renews,
// so that a rebuild abandoned by a dead process cleans itself up; a new
// format lives under new keys, which the projectors fill from the log.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ticketd/ticketing/projections"
)

// format is the version of the key layout and view encoding, part of
// every key: a store written in another format is simply not seen, and
// the projectors rebuild this one from the log.
const format = "f1"

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("redis: read store closed")

// Options tunes a Store. The zero value is a good default.
type Options struct {
	// Prefix namespaces every key and channel, so that several
	// deployments (or tests) can share a server. Default "ticketd"; it
	// may not contain '{' or '}', which Redis Cluster reads as a hash tag.
	Prefix string

	// Logger receives the store's messages. Nil discards them.
	Logger *slog.Logger

	// StageTTL is how long a staged version lives after its last commit
	// unless it is promoted. Default one hour.
	StageTTL time.Duration

	// FeedHealthInterval is how often the payment feed checks that its
	// subscription connection is alive when nothing arrives on it; a dead
	// one is replaced. Default five seconds.
	FeedHealthInterval time.Duration

	// SubscribeTimeout bounds how long Subscribe waits for Redis to
	// confirm a subscription. Default five seconds.
	SubscribeTimeout time.Duration
}

// Store holds every read model in Redis. Its views are reached through
// Events, Bookings, Payments and Profiles, each of which is both the
// reader port the queries use and the store port its projector commits
// to; Feed is the payment feed.
type Store struct {
	client goredis.UniversalClient
	prefix string
	opts   Options
	logger *slog.Logger
	closed atomic.Bool

	events   *EventViews
	bookings *BookingViews
	payments *PaymentViews
	profiles *ProfileViews
	feed     *PaymentFeed
}

// Open connects to the Redis server at url (redis://[user:password@]host:port/db,
// or rediss:// for TLS), makes sure every projection has an active
// generation, and returns the store.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.Prefix == "" {
		opts.Prefix = "ticketd"
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("redis: open read store: prefix %q may not contain '{' or '}'", opts.Prefix)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StageTTL <= 0 {
		opts.StageTTL = time.Hour
	}
	opts.StageTTL = max(opts.StageTTL, time.Millisecond)
	if opts.FeedHealthInterval <= 0 {
		opts.FeedHealthInterval = 5 * time.Second
	}
	if opts.SubscribeTimeout <= 0 {
		opts.SubscribeTimeout = 5 * time.Second
	}
	ro, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis: open read store: %w", err)
	}
	if ro.ClientName == "" {
		ro.ClientName = opts.Prefix + "-readstore"
	}
	s := &Store{client: goredis.NewClient(ro), prefix: opts.Prefix, opts: opts, logger: opts.Logger}
	if err := s.init(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("redis: open read store at %s: %w", ro.Addr, err), s.client.Close())
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return err
	}
	s.warnIfEvicting(ctx)
	s.events = &EventViews{sp: s.space(projections.NameEvents, eventsLifecycle)}
	s.bookings = &BookingViews{sp: s.space(projections.NameBookings, bookingsLifecycle)}
	s.payments = &PaymentViews{sp: s.space(projections.NamePayments, byIDLifecycle)}
	s.profiles = &ProfileViews{sp: s.space(projections.NameProfiles, byIDLifecycle)}
	for _, sp := range []*space{s.events.sp, s.bookings.sp, s.payments.sp, s.profiles.sp} {
		if err := sp.init(ctx); err != nil {
			return fmt.Errorf("%s: %w", sp.name, err)
		}
	}
	s.feed = newPaymentFeed(s)
	return nil
}

// warnIfEvicting warns when the server may evict keys: a read model with
// some keys evicted is silently wrong.
func (s *Store) warnIfEvicting(ctx context.Context) {
	cfg, err := s.client.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		// Managed servers often refuse CONFIG; nothing to check then.
		s.logger.Debug("cannot read the Redis eviction policy", "err", err)
		return
	}
	if p := cfg["maxmemory-policy"]; p != "" && p != "noeviction" {
		s.logger.Warn("Redis may evict read model keys: set maxmemory-policy to noeviction", "maxmemory-policy", p)
	}
}

// Close closes the store's connections and ends every feed
// subscription. Views read before stay valid.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.feed.close()
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("redis: close read store: %w", err)
	}
	return nil
}

// Ping checks that the server answers, for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping read store: %w", err)
	}
	return nil
}

// Events is the event read model.
func (s *Store) Events() *EventViews { return s.events }

// Bookings is the booking read model.
func (s *Store) Bookings() *BookingViews { return s.bookings }

// Payments is the payment read model.
func (s *Store) Payments() *PaymentViews { return s.payments }

// Profiles is the profile read model.
func (s *Store) Profiles() *ProfileViews { return s.profiles }

// Feed is the payment feed over Redis pub/sub: the payments projector
// publishes to it, and every process's status streams subscribe.
func (s *Store) Feed() *PaymentFeed { return s.feed }

func (s *Store) space(name string, life lifecycle) *space {
	base := "{" + s.prefix + ":" + name + "}:" + format
	return &space{store: s, name: name, base: base, active: base + ":active", life: life}
}

// space is a handle on one projection's data: bound to whichever
// generation is active (gen 0), or to one staged generation.
type space struct {
	store  *Store
	name   string
	base   string
	active string
	life   lifecycle
	gen    uint64
	// staged is true for a handle from stage until it is promoted or
	// discarded.
	staged atomic.Bool
}

// run runs script against generation gen (0 for the active one) with the
// calling convention of scripts.go.
func (sp *space) run(ctx context.Context, gen uint64, script *goredis.Script, args ...any) *goredis.Cmd {
	full := make([]any, 0, 2+len(args))
	full = append(full, sp.base, gen)
	full = append(full, args...)
	if sp.store.closed.Load() {
		cmd := goredis.NewCmd(ctx)
		cmd.SetErr(ErrClosed)
		return cmd
	}
	return script.Run(ctx, sp.store.client, []string{sp.active}, full...)
}

// get returns the values of fields of the generation's hash suffix, nil
// for each one missing.
func (sp *space) get(ctx context.Context, suffix string, fields ...string) ([]any, error) {
	args := make([]any, 0, 1+len(fields))
	args = append(args, suffix)
	for _, f := range fields {
		args = append(args, f)
	}
	res, err := sp.run(ctx, sp.gen, getScript, args...).Slice()
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		// No generation: a staged one that expired or was discarded.
		return make([]any, len(fields)), nil
	}
	return res, nil
}

// viewByID reads the view id from the generation's "v" hash.
func viewByID[V any](ctx context.Context, sp *space, what string, id uuid.UUID, decode func([]byte) (V, error)) (V, bool, error) {
	var zero V
	data, ok, err := sp.getOne(ctx, "v", id.String())
	if err != nil {
		return zero, false, fmt.Errorf("redis: %s %s: %w", what, id, err)
	}
	if !ok {
		return zero, false, nil
	}
	v, err := decode(data)
	if err != nil {
		return zero, false, fmt.Errorf("redis: %s %s: %w", what, id, err)
	}
	return v, true, nil
}

// commitByID commits a batch of a projection whose views are kept by id
// alone (byIDCommitScript): the last state of each view, with the move of
// the checkpoint from from to to.
func commitByID[V any](ctx context.Context, sp *space, what string, from, to uint64, views []V, idOf func(*V) uuid.UUID, encode func(*V) ([]byte, error)) error {
	views = lastOfEach(views, idOf)
	args := make([]any, 0, 1+2*len(views))
	args = append(args, len(views))
	for i := range views {
		data, err := encode(&views[i])
		if err != nil {
			return fmt.Errorf("redis: commit %s: encode %s: %w", what, idOf(&views[i]), err)
		}
		args = append(args, idOf(&views[i]).String(), data)
	}
	return sp.commit(ctx, byIDCommitScript, from, to, args...)
}

// viewsByID reads the views of ids from the generation's "v" hash, a
// round trip per thousand ids, and decodes those that exist.
func viewsByID[V any](ctx context.Context, sp *space, what string, ids []uuid.UUID, decode func([]byte) (V, error)) (map[uuid.UUID]V, error) {
	out := make(map[uuid.UUID]V, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), 1000)
		chunk := ids[:n]
		ids = ids[n:]
		fields := make([]string, n)
		for i, id := range chunk {
			fields[i] = id.String()
		}
		res, err := sp.get(ctx, "v", fields...)
		if err != nil {
			return nil, fmt.Errorf("redis: %s: %w", what, err)
		}
		for i, r := range res {
			data, ok := r.(string)
			if !ok {
				continue
			}
			v, err := decode([]byte(data))
			if err != nil {
				return nil, fmt.Errorf("redis: %s %s: %w", what, chunk[i], err)
			}
			out[chunk[i]] = v
		}
	}
	return out, nil
}

// getOne returns the value of field of the generation's hash suffix.
func (sp *space) getOne(ctx context.Context, suffix, field string) ([]byte, bool, error) {
	res, err := sp.get(ctx, suffix, field)
	if err != nil {
		return nil, false, err
	}
	v, ok := res[0].(string)
	return []byte(v), ok, nil
}

func (sp *space) checkpoint(ctx context.Context) (uint64, error) {
	for healed := false; ; healed = true {
		v, err := sp.run(ctx, sp.gen, checkpointScript).Text()
		switch {
		case errors.Is(err, goredis.Nil) && sp.gen != 0:
			return 0, fmt.Errorf("redis: %s checkpoint: the staged version expired or was discarded", sp.name)
		case errors.Is(err, goredis.Nil) && !healed:
			// The active version lost its checkpoint (evicted, deleted):
			// replace it with an empty one, which the projector asking
			// rebuilds from the log.
			if err := sp.init(ctx); err != nil {
				return 0, fmt.Errorf("redis: %s checkpoint: %w", sp.name, err)
			}
			continue
		case err != nil:
			return 0, fmt.Errorf("redis: %s checkpoint: %w", sp.name, err)
		}
		cp, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("redis: %s checkpoint: corrupt value %q", sp.name, v)
		}
		return cp, nil
	}
}

// init makes sure the projection has an active generation with a
// checkpoint, replacing one that lost its checkpoint.
func (sp *space) init(ctx context.Context) error {
	res, err := sp.run(ctx, 0, sp.life.init).Int64Slice()
	if err != nil {
		return err
	}
	if len(res) == 2 && res[1] == 1 {
		sp.store.logger.Error("read model lost its checkpoint (evicted or deleted keys?): replaced by an empty version for the projector to rebuild",
			"projection", sp.name, "generation", res[0])
	}
	return nil
}

// commit runs a commit script moving the checkpoint from from to to.
func (sp *space) commit(ctx context.Context, script *goredis.Script, from, to uint64, args ...any) error {
	if to < from {
		return fmt.Errorf("redis: commit %s: checkpoint would move back from %d to %d", sp.name, from, to)
	}
	full := make([]any, 0, 3+len(args))
	full = append(full, from, to, sp.store.opts.StageTTL.Milliseconds())
	full = append(full, args...)
	res, err := sp.run(ctx, sp.gen, script, full...).Slice()
	if err != nil {
		return fmt.Errorf("redis: commit %s up to %d: %w", sp.name, to, err)
	}
	if len(res) == 2 {
		if ok, _ := res[0].(int64); ok == 1 {
			return nil
		}
		if stored, _ := res[1].(string); stored != "" {
			return fmt.Errorf("redis: commit %s: stored checkpoint is %s, the batch expects %d: %w", sp.name, stored, from, projections.ErrCheckpointConflict)
		}
		return fmt.Errorf("redis: commit %s: the version was replaced or discarded: %w", sp.name, projections.ErrCheckpointConflict)
	}
	return fmt.Errorf("redis: commit %s: unexpected reply %v", sp.name, res)
}

// adminTimeout bounds Stage, Promote and Discard, which take no context
// so that their signatures are the embedded store's: one rebuild
// procedure drives both adapters.
const adminTimeout = 30 * time.Second

// stage returns a handle on a fresh, empty generation of the projection,
// invisible to readers of sp until promoted.
func (sp *space) stage() (*space, error) {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	g, err := sp.run(ctx, 0, sp.life.stage, sp.store.opts.StageTTL.Milliseconds()).Uint64()
	if err != nil {
		return nil, fmt.Errorf("redis: stage %s: %w", sp.name, err)
	}
	st := &space{store: sp.store, name: sp.name, base: sp.base, active: sp.active, life: sp.life, gen: g}
	st.staged.Store(true)
	return st, nil
}

// promote makes staged's generation the active one, and deletes the one
// it replaces.
func (sp *space) promote(staged *space) error {
	if staged == nil || staged.store != sp.store || staged.name != sp.name || staged.gen == 0 {
		return fmt.Errorf("redis: promote %s: not a version staged from this store's %s", sp.name, sp.name)
	}
	if !staged.staged.Load() {
		return fmt.Errorf("redis: promote %s: the version was already promoted or discarded", sp.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	res, err := sp.run(ctx, staged.gen, sp.life.promote).Slice()
	if err != nil {
		return fmt.Errorf("redis: promote %s generation %d: %w", sp.name, staged.gen, err)
	}
	if len(res) != 2 {
		return fmt.Errorf("redis: promote %s generation %d: unexpected reply %v", sp.name, staged.gen, res)
	}
	if ok, _ := res[0].(int64); ok != 1 {
		why := "it expired (StageTTL) or was discarded"
		if res[1] == "active" {
			why = "it is already the active version"
		}
		return fmt.Errorf("redis: promote %s generation %d: %s", sp.name, staged.gen, why)
	}
	staged.staged.Store(false)
	sp.store.logger.Info("read model version promoted", "projection", sp.name, "generation", staged.gen, "replaced", res[1])
	return nil
}

// discard deletes a staged generation that will not be promoted.
func (sp *space) discard() error {
	if sp.gen == 0 || !sp.staged.Load() {
		return fmt.Errorf("redis: discard %s: not a staged version", sp.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	ok, err := sp.run(ctx, sp.gen, sp.life.discard).Int64()
	if err != nil {
		return fmt.Errorf("redis: discard %s generation %d: %w", sp.name, sp.gen, err)
	}
	if ok != 1 {
		return fmt.Errorf("redis: discard %s generation %d: it is the active version", sp.name, sp.gen)
	}
	sp.staged.Store(false)
	return nil
}
