package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/domain/event"
	"github.com/ticketd/ticketing/domain/user"
	"github.com/ticketd/ticketing/infra/eventstore/embedded"
	"github.com/ticketd/ticketing/infra/kafka"
	readembedded "github.com/ticketd/ticketing/infra/readstore/embedded"
	readredis "github.com/ticketd/ticketing/infra/readstore/redis"
	"github.com/ticketd/ticketing/projections"
	"github.com/ticketd/ticketing/readmodels"
)

// cluster is the distributed mode's shared infrastructure for one test:
// a Kafka log and Redis keys under a prefix of the test's own, removed
// when it ends.
type cluster struct {
	t        testing.TB
	redisURL string
	prefix   string
	kcfg     kafka.Config
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	brokers := testServers.Kafka(t)
	redisURL := testServers.Redis(t)
	var b [5]byte
	_, _ = rand.Read(b[:])
	prefix := "ticketctl-test-" + hex.EncodeToString(b[:])
	c := &cluster{t: t, redisURL: redisURL, prefix: prefix, kcfg: kafka.Config{Brokers: brokers, TopicPrefix: prefix, ClientID: "ticketctl-test"}}
	admin, err := ck.NewAdminClient(&ck.ConfigMap{"bootstrap.servers": brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The firehose as kafka.EnsureTopics makes it: one partition, kept
	// for ever.
	res, err := admin.CreateTopics(ctx, []ck.TopicSpecification{{
		Topic: c.kcfg.LogTopic(), NumPartitions: 1, ReplicationFactor: 1,
		Config: map[string]string{"retention.ms": "-1", "retention.bytes": "-1"},
	}})
	if err != nil || res[0].Error.Code() != ck.ErrNoError {
		t.Fatalf("create %s: %v %v", c.kcfg.LogTopic(), err, res)
	}
	t.Cleanup(c.cleanup)
	return c
}

func (c *cluster) env() map[string]string {
	return map[string]string{
		"TICKETD_REDIS_URL": c.redisURL, "TICKETD_REDIS_PREFIX": c.prefix,
		"TICKETD_KAFKA_BROKERS": c.kcfg.Brokers, "TICKETD_KAFKA_TOPIC_PREFIX": c.prefix,
	}
}

func (c *cluster) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if admin, err := ck.NewAdminClient(&ck.ConfigMap{"bootstrap.servers": c.kcfg.Brokers}); err == nil {
		_, _ = admin.DeleteTopics(ctx, []string{c.kcfg.LogTopic()})
		admin.Close()
	}
	rc := c.redis()
	defer rc.Close()
	keys := c.keys()
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := rc.Unlink(ctx, keys[:n]...).Err(); err != nil {
			c.t.Errorf("delete test keys: %v", err)
			return
		}
		keys = keys[n:]
	}
}

func (c *cluster) redis() *goredis.Client {
	o, err := goredis.ParseURL(c.redisURL)
	if err != nil {
		c.t.Fatal(err)
	}
	return goredis.NewClient(o)
}

// keys lists the test's Redis keys, sorted.
func (c *cluster) keys() []string {
	rc := c.redis()
	defer rc.Close()
	ctx := context.Background()
	var keys []string
	iter := rc.Scan(ctx, 0, "{"+c.prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		c.t.Fatalf("scan test keys: %v", err)
	}
	slices.Sort(keys)
	return keys
}

// openReads opens the Redis read models, as one more process would.
func (c *cluster) openReads() *readredis.Store {
	c.t.Helper()
	s, err := readredis.Open(context.Background(), c.redisURL, readredis.Options{Prefix: c.prefix})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { s.Close() })
	return s
}

func (c *cluster) logReader() *kafka.LogReader {
	lr := kafka.NewLogReader(c.kcfg, nil)
	c.t.Cleanup(func() { lr.Close() })
	return lr
}

// relay copies every record of store to the firehose in the store's order,
// until ctx is done. The services' relays (kafka.Relay) publish each
// service's records on their own, so a history written all at once, with
// payments made in the test without waiting for the read models as the
// payments service does, could reach the firehose out of causal order.
// One relay over the store keeps the store's order.
func (c *cluster) relay(ctx context.Context, store *embedded.Store) <-chan error {
	done := make(chan error, 1)
	p, err := ck.NewProducer(&ck.ConfigMap{"bootstrap.servers": c.kcfg.Brokers, "enable.idempotence": true, "acks": "all", "linger.ms": 5})
	if err != nil {
		done <- err
		return done
	}
	topic := c.kcfg.LogTopic()
	go func() {
		defer p.Close()
		done <- store.SubscribeAll(ctx, 0, es.Filter{}, func(batch []es.Record) error {
			delivered := make(chan ck.Event, len(batch))
			for i := range batch {
				m := kafka.EncodeRecord(&batch[i], serviceOf(batch[i].Stream), topic)
				m.TopicPartition.Partition = 0
				if err := p.Produce(m, delivered); err != nil {
					return err
				}
			}
			for range batch {
				if m := (<-delivered).(*ck.Message); m.TopicPartition.Error != nil {
					return m.TopicPartition.Error
				}
			}
			return nil
		})
	}()
	return done
}

func serviceOf(stream string) string {
	for _, svc := range []string{"user", "event", "booking", "payment"} {
		if strings.HasPrefix(stream, svc+"-") {
			return svc + "s"
		}
	}
	return "unknown"
}

// waitRelayed waits until the firehose holds every record of store.
func (c *cluster) waitRelayed(store *embedded.Store, lr *kafka.LogReader) {
	c.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for {
		want, _ := store.HeadPosition(ctx)
		recs, err := lr.ReadAll(ctx, 0, 0)
		if err != nil {
			c.t.Fatal(err)
		}
		if uint64(len(recs)) == want {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the firehose has %d records, the store %d", len(recs), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// projectorProcess runs projectors as ticketd's projector process does,
// restarting each after a failure (as after a promotion under it) until
// ctx is done.
func projectorProcess(ctx context.Context, ps []*projections.Projector) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_ = p.Run(ctx)
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
	}
	return &wg
}

func waitProjected(t testing.TB, lr *kafka.LogReader, ps []*projections.Projector) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	head, err := lr.HeadPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := p.WaitFor(ctx, head); err != nil {
			t.Fatalf("%s did not reach %d: %v", p.Name(), head, err)
		}
	}
}

func redisReaders(s *readredis.Store) readers {
	return readers{events: s.Events(), bookings: s.Bookings(), payments: s.Payments(), profiles: s.Profiles()}
}

// TestDistributedRebuildWhileServing rebuilds the Redis read models from
// the Kafka log while the projector process keeps them up to date, the
// services keep writing, and a reader keeps reading every view.
func TestDistributedRebuildWhileServing(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	store := openTestEventStore(t, t.TempDir())
	defer store.Close()
	w := writeHistory(t, store, worldSize{users: 20, events: 6, bookings: 240, workers: 16})
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayed := c.relay(relayCtx, store)
	defer func() {
		stopRelay()
		if err := <-relayed; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("relay: %v", err)
		}
	}()
	lr := c.logReader()
	c.waitRelayed(store, lr)

	// The projector process builds the read models in Redis.
	live := c.openReads()
	ps := liveProjectors(lr, live.Events(), live.Bookings(), live.Payments(), live.Profiles())
	procCtx, stopProc := context.WithCancel(ctx)
	proc := projectorProcess(procCtx, ps)
	defer func() { stopProc(); proc.Wait() }()
	waitProjected(t, lr, ps)

	reader := c.openReads() // a service process
	before := takeSnapshot(t, redisReaders(reader), w)
	// A bug damaged a profile; the projector will not touch it again
	// (nobody changes that user), so only a rebuild repairs it.
	damaged := w.users[0]
	good := before.Profiles[damaged]
	bad := good
	bad.Name = "Damaged"
	cp, _ := live.Profiles().Checkpoint(ctx)
	if err := live.Profiles().Commit(ctx, projections.ProfilesCommit{From: cp, To: cp, Profiles: []readmodels.ProfileView{bad}}); err != nil {
		t.Fatal(err)
	}

	// The services keep writing: users register, events are created.
	writeCtx, stopWriting := context.WithCancel(ctx)
	var (
		writerWG            sync.WaitGroup
		newUsers, newEvents []uuid.UUID
		writeErr            error
	)
	writerWG.Add(1)
	go func() {
		defer writerWG.Done()
		repo := commands.NewRepository(store, commands.NewRegistry(), time.Now)
		users := commands.NewUsers(repo, plainHasher{})
		desk := commands.NewEventDesk(repo, store, nil)
		for i := 0; writeCtx.Err() == nil; i++ {
			u, err := users.Register(ctx, commands.NewMsg(), commands.RegisterUser{UserID: uuid.New(), Email: fmt.Sprintf("new%d@example.com", i), Password: "correct horse", Name: "New", Role: user.Customer})
			if err != nil {
				writeErr = err
				return
			}
			newUsers = append(newUsers, u.ID)
			id := uuid.New()
			if _, err := desk.CreateEvent(ctx, commands.NewMsg(), commands.CreateEvent{
				EventID: id, Currency: "IDR",
				Details:     event.Details{Name: fmt.Sprintf("Late show %d", i), Venue: "Istora", StartsAt: time.Now().Add(90 * 24 * time.Hour).Truncate(time.Second), MaxPerBooking: 4},
				TicketTypes: []event.TicketType{{Name: "general", Price: 100_000, Capacity: 50}},
			}); err != nil {
				writeErr = err
				return
			}
			newEvents = append(newEvents, id)
			time.Sleep(3 * time.Millisecond)
		}
	}()

	// Services keep reading: no view may ever be missing or differ from
	// what it was (but the damaged profile, which the switch repairs),
	// whichever version answers. Three readers read every event, the
	// listing and the due holds, and a part of the profiles, users'
	// bookings, bookings and payments that moves on at each read (all of
	// them would take a few hundred reads, too slow to straddle the
	// switches); one more reads the listing and the damaged profile as
	// fast as it can.
	readCtx, stopReading := context.WithCancel(ctx)
	var (
		readerWG                        sync.WaitGroup
		reads, fastReads, sawBad, sawOK atomic.Int64
		overlapping                     atomic.Int64 // full reads during the rebuild
		rebuildStart, rebuildEnd        atomic.Int64 // UnixNano
		readerMu                        sync.Mutex
		readerErr                       error
	)
	readFailed := func(err error) {
		readerMu.Lock()
		defer readerMu.Unlock()
		if readerErr == nil {
			readerErr = err
		}
	}
	profileState := func(p readmodels.ProfileView) error {
		switch {
		case reflect.DeepEqual(p, bad):
			sawBad.Add(1)
		case reflect.DeepEqual(p, good):
			sawOK.Add(1)
		default:
			return fmt.Errorf("the damaged profile read as %+v", p)
		}
		return nil
	}
	for n := range 3 {
		readerWG.Add(1)
		go func() {
			defer readerWG.Done()
			for i := n; readCtx.Err() == nil; i += 3 {
				began := time.Now().UnixNano()
				part := w.part(i)
				want := before.only(part)
				s, err := trySnapshot(readCtx, redisReaders(reader), part)
				if readCtx.Err() != nil {
					return
				}
				if err != nil {
					readFailed(err)
					return
				}
				reads.Add(1)
				if end := rebuildEnd.Load(); rebuildStart.Load() != 0 && (end == 0 || began < end) {
					overlapping.Add(1)
				}
				if p, ok := s.Profiles[damaged]; ok {
					if err := profileState(p); err != nil {
						readFailed(err)
						return
					}
					s.Profiles[damaged] = good
				}
				// New events may join the listing; what was listed stays.
				if len(s.Listing) < len(before.Listing) {
					readFailed(fmt.Errorf("the listing had %d events, %d before the rebuild", len(s.Listing), len(before.Listing)))
					return
				}
				s.Listing = before.Listing
				if d := want.diff(s); d != "" {
					readFailed(fmt.Errorf("a reader saw a view change during the rebuild:\n%s", d))
					return
				}
			}
		}()
	}
	readerWG.Add(1)
	go func() {
		defer readerWG.Done()
		for readCtx.Err() == nil {
			listing, err := reader.Events().ScheduledEvents(readCtx, readmodels.EventListing{Limit: 10_000})
			if err == nil && len(listing) < len(before.Listing) {
				err = fmt.Errorf("the listing had %d events, %d before the rebuild", len(listing), len(before.Listing))
			}
			var p readmodels.ProfileView
			var ok bool
			if err == nil {
				p, ok, err = reader.Profiles().Profile(readCtx, damaged)
				if err == nil && !ok {
					err = errors.New("the damaged profile was missing")
				}
			}
			if readCtx.Err() != nil {
				return
			}
			if err == nil {
				err = profileState(p)
			}
			if err != nil {
				readFailed(err)
				return
			}
			fastReads.Add(1)
		}
	}()

	// The reader must see both sides of the switch: the damaged profile
	// before the rebuild starts, the repaired one after it ends. Waiting
	// for each (instead of sleeping) keeps a slow reader from missing one.
	waitFor := func(what string, n *atomic.Int64) {
		deadline := time.Now().Add(60 * time.Second)
		for n.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the reader never saw %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("the damaged profile", &sawBad)
	// Small commits make the rebuild long enough for the full readers to
	// read everything a few times while it runs.
	start := time.Now()
	rebuildStart.Store(start.UnixNano())
	r := ctl(t, c.env(), "projections", "rebuild", "--batch", "4")
	rebuildEnd.Store(time.Now().UnixNano())
	took := time.Since(start)
	if r.code == 0 {
		waitFor("the repaired profile", &sawOK)
	}
	stopWriting()
	writerWG.Wait()
	stopReading()
	readerWG.Wait()
	if r.code != 0 {
		t.Fatalf("rebuild: %s", r)
	}
	t.Logf("rebuild took %v; the full readers read %d times (%d of them during the rebuild), the listing reader %d times:\n%s",
		took, reads.Load(), overlapping.Load(), fastReads.Load(), r.stdout)
	if writeErr != nil {
		t.Fatalf("writer: %v", writeErr)
	}
	if readerErr != nil {
		t.Fatal(readerErr)
	}
	if overlapping.Load() < 3 {
		t.Errorf("the full readers read only %d times during the rebuild", overlapping.Load())
	}
	if sawBad.Load() == 0 || sawOK.Load() == 0 {
		t.Errorf("the reader saw the damaged profile %d times and the repaired one %d times: it did not see the switch", sawBad.Load(), sawOK.Load())
	}
	for _, name := range projectionNames() {
		if !strings.Contains(r.stdout, name) {
			t.Errorf("rebuild output does not report %s:\n%s", name, r.stdout)
		}
	}
	if n := strings.Count(r.stdout, "switched to the new version"); n != 4 {
		t.Errorf("%d read models switched, want 4:\n%s", n, r.stdout)
	}
	if len(newUsers) == 0 {
		t.Error("nothing was written during the rebuild")
	}

	// Once everything written is relayed and projected, the live read
	// models (the rebuilt versions, carried on by the projector process)
	// are what projecting the whole log from scratch gives.
	c.waitRelayed(store, lr)
	waitProjected(t, lr, ps)
	all := &world{
		users: append(slices.Clone(w.users), newUsers...), events: append(slices.Clone(w.events), newEvents...),
		bookings: w.bookings, payments: w.payments,
	}
	ref, err := readembedded.Open(t.TempDir(), readembedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	catchUp(t, lr, liveProjectors(lr, ref.Events(), ref.Bookings(), ref.Payments(), ref.Profiles()))
	want := takeSnapshot(t, embeddedReaders(ref), all)
	got := takeSnapshot(t, redisReaders(c.openReads()), all)
	if d := want.diff(got); d != "" {
		t.Errorf("after the rebuild, the live read models differ from the log projected afresh:\n%s", d)
	}
	if got.Profiles[damaged] != good {
		t.Errorf("the damaged profile is %+v after the rebuild", got.Profiles[damaged])
	}

	// And status agrees that everything is up to date.
	st := ctl(t, c.env(), "projections", "status")
	head, rows := parseStatus(t, st.stdout)
	lrHead, _ := lr.HeadPosition(ctx)
	if st.code != 0 || head != lrHead || len(rows) != 4 {
		t.Fatalf("status: head %d (log %d): %s", head, lrHead, st)
	}
	for name, row := range rows {
		if row.pending != "0" || row.state != "up to date" {
			t.Errorf("status of %s after the rebuild: %+v\n%s", name, row, st.stdout)
		}
	}
	if !strings.Contains(st.stdout, "distributed") {
		t.Errorf("status does not say it read the distributed mode's stores:\n%s", st.stdout)
	}
}

// TestDistributedRebuildInterruptedLeavesNothing interrupts a rebuild into
// Redis: the live versions are untouched and the staged ones deleted.
func TestDistributedRebuildInterruptedLeavesNothing(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	store := openTestEventStore(t, t.TempDir())
	defer store.Close()
	w := writeHistory(t, store, smallWorld)
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayed := c.relay(relayCtx, store)
	defer func() { stopRelay(); <-relayed }()
	lr := c.logReader()
	c.waitRelayed(store, lr)
	live := c.openReads()
	catchUp(t, lr, liveProjectors(lr, live.Events(), live.Bookings(), live.Payments(), live.Profiles()))
	before := takeSnapshot(t, redisReaders(live), w)
	keys := withoutSeq(c.keys())

	cfg := &Config{RedisURL: c.redisURL, RedisPrefix: c.prefix, KafkaBrokers: c.kcfg.Brokers, KafkaTopicPrefix: c.prefix, LogLevel: "error"}
	logger := slog.New(slog.DiscardHandler)
	b, err := openDistributed(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	gate := &gatedLog{EventLog: b.log, started: make(chan struct{}, 1)}
	b.log = gate
	runCtx, cancel := context.WithCancel(ctx)
	go func() {
		<-gate.started
		time.Sleep(20 * time.Millisecond) // let a few commits land in the new versions
		cancel()
	}()
	var out strings.Builder
	cl := &cli{getenv: func(string) string { return "" }, stdout: &out, stderr: &out}
	err = cl.rebuildOn(runCtx, b, projectionNames(), rebuildOptions{batch: 4, switchTimeout: time.Second}, logger)
	b.close()
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("an interrupted rebuild returned %v\n%s", err, out.String())
	}
	if d := before.diff(takeSnapshot(t, redisReaders(live), w)); d != "" {
		t.Errorf("an interrupted rebuild changed the read models:\n%s", d)
	}
	if after := withoutSeq(c.keys()); !reflect.DeepEqual(after, keys) {
		t.Errorf("an interrupted rebuild left keys behind:\nbefore %v\nafter  %v", keys, after)
	}
}

// withoutSeq drops the counters of generation numbers, which a Stage
// moves on for good.
func withoutSeq(keys []string) []string {
	return slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return strings.HasSuffix(k, ":seq") })
}

// part is the world with every event, and the i-th part of its users,
// bookings and payments.
func (w *world) part(i int) *world {
	chunk := func(ids []uuid.UUID, size int) []uuid.UUID {
		if len(ids) == 0 {
			return nil
		}
		start := (i * size) % len(ids)
		return ids[start:min(start+size, len(ids))]
	}
	return &world{users: chunk(w.users, 3), events: w.events, bookings: chunk(w.bookings, 12), payments: chunk(w.payments, 5)}
}

// only is s restricted to the users, bookings and payments of part.
func (s snapshot) only(part *world) snapshot {
	out := s
	out.Profiles = map[uuid.UUID]readmodels.ProfileView{}
	out.UserBookings = map[uuid.UUID][]readmodels.BookingView{}
	for _, id := range part.users {
		if v, ok := s.Profiles[id]; ok {
			out.Profiles[id] = v
		}
		out.UserBookings[id] = s.UserBookings[id]
	}
	out.Bookings = map[uuid.UUID]readmodels.BookingView{}
	for _, id := range part.bookings {
		if v, ok := s.Bookings[id]; ok {
			out.Bookings[id] = v
		}
	}
	out.Payments = map[uuid.UUID]readmodels.PaymentView{}
	for _, id := range part.payments {
		if v, ok := s.Payments[id]; ok {
			out.Payments[id] = v
		}
	}
	return out
}
