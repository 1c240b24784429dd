package embedded_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/infra/eventstore/embedded"
	"github.com/ticketd/ticketing/infra/eventstore/storetest"
)

// The test binary doubles as the child process of the crash and lock
// tests: re-executed with one of these flags, it plays that role instead
// of running tests.
var (
	crashWriterDir = flag.String("embedded.crash-writer", "", "child mode: append to the store in this directory until killed")
	holdDir        = flag.String("embedded.hold", "", "child mode: hold the store in this directory open until stdin closes")
)

func TestMain(m *testing.M) {
	flag.Parse()
	switch {
	case *crashWriterDir != "":
		runCrashWriter(*crashWriterDir)
	case *holdDir != "":
		runHolder(*holdDir)
	default:
		os.Exit(m.Run())
	}
}

// testOptions keeps the many stores the contract suite opens in parallel
// small.
var testOptions = embedded.Options{CacheSize: 8 << 20, MemTableSize: 4 << 20}

func openStore(t *testing.T, dir string, opts embedded.Options) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestContract(t *testing.T) {
	var mu sync.Mutex
	dirs := make(map[storetest.Store]string)
	storetest.Run(t,
		func(t *testing.T) storetest.Store {
			dir := t.TempDir()
			s := openStore(t, dir, testOptions)
			mu.Lock()
			dirs[s] = dir
			mu.Unlock()
			return s
		},
		storetest.WithReopen(func(t *testing.T, closed storetest.Store) storetest.Store {
			mu.Lock()
			dir := dirs[closed]
			mu.Unlock()
			return openStore(t, dir, testOptions)
		}),
	)
}

func newRecord(data string) es.Record {
	return es.Record{ID: uuid.New(), Type: "Tested", SchemaVersion: 1, Time: time.Unix(1700000000, 0), Data: []byte(data)}
}

// In this adapter positions are contiguous from 1, which the contract
// does not promise but the crash test and operators rely on.
func TestPositionsAreContiguousFromOne(t *testing.T) {
	s := openStore(t, t.TempDir(), testOptions)
	defer s.Close()
	ctx := t.Context()
	if h, err := s.HeadPosition(ctx); err != nil || h != 0 {
		t.Fatalf("HeadPosition of a new store = %d, %v; want 0", h, err)
	}
	var want uint64
	for i := range 20 {
		recs := []es.Record{newRecord("a"), newRecord("b")}[:i%2+1]
		res, err := s.Append(ctx, fmt.Sprintf("s-%d", i%3), es.Any, recs)
		if err != nil {
			t.Fatal(err)
		}
		want += uint64(len(recs))
		if res.Position != want {
			t.Fatalf("append %d ended at position %d, want %d", i, res.Position, want)
		}
	}
	all, err := s.ReadAll(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range all {
		if r.Position != uint64(i+1) {
			t.Fatalf("record %d has position %d", i, r.Position)
		}
	}
	if h, _ := s.HeadPosition(ctx); h != want || uint64(len(all)) != want {
		t.Fatalf("head %d with %d records, want %d", h, len(all), want)
	}
}

// TestHeadCacheEviction keeps only a few stream heads in memory: the
// others must be reloaded from Pebble, with the same answers.
func TestHeadCacheEviction(t *testing.T) {
	opts := testOptions
	opts.StreamCacheSize = 4
	s := openStore(t, t.TempDir(), opts)
	defer s.Close()
	ctx := t.Context()
	const streams = 40
	for round := range 3 {
		for i := range streams {
			stream := fmt.Sprintf("stream-%d", i)
			res, err := s.Append(ctx, stream, es.ExpectVersion(int64(round)-1), []es.Record{newRecord("x")})
			if err != nil || res.NextRevision != uint64(round) {
				t.Fatalf("round %d, %s: %+v, %v", round, stream, res, err)
			}
			if _, err := s.Append(ctx, stream, es.NoStream, []es.Record{newRecord("y")}); !errors.Is(err, es.ErrConflict) {
				t.Fatalf("round %d, %s: no stream on an existing stream = %v", round, stream, err)
			}
		}
	}
}

// TestCloseFailsQueuedAppends closes the store under a load of appends:
// each append either is acknowledged, and then survives, or fails with
// es.ErrClosed; nothing else.
func TestCloseFailsQueuedAppends(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, testOptions)
	const writers = 32
	var acked atomic.Int64
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	type ack struct {
		stream string
		id     uuid.UUID
		rev    uint64
	}
	acks := make([][]ack, writers)
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("w-%d", w)
			for i := 0; ; i++ {
				r := newRecord("x")
				res, err := s.Append(context.Background(), stream, es.ExpectVersion(int64(i)-1), []es.Record{r})
				if err != nil {
					errs[w] = err
					return
				}
				acks[w] = append(acks[w], ack{stream, r.ID, res.NextRevision})
				if acked.Add(1) == 300 {
					once.Do(func() { close(enough) })
				}
			}
		})
	}
	<-enough
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	for w, err := range errs {
		if !errors.Is(err, es.ErrClosed) {
			t.Errorf("writer %d ended with %v, want es.ErrClosed", w, err)
		}
	}

	s = openStore(t, dir, testOptions)
	defer s.Close()
	for _, l := range acks {
		for _, a := range l {
			got, err := s.ReadStream(t.Context(), a.stream, es.ReadOptions{From: a.rev, Limit: 1})
			if err != nil || len(got) != 1 || got[0].ID != a.id {
				t.Fatalf("acknowledged %s@%d is missing after Close: %v", a.stream, a.rev, err)
			}
		}
	}
}

func TestRefusesForeignPebbleData(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("some key"), []byte("some value"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := embedded.Open(dir, testOptions)
	if err == nil {
		s.Close()
		t.Fatal("Open of a foreign Pebble database succeeded")
	}
	if !strings.Contains(err.Error(), "not a ticketd event store") {
		t.Errorf("Open of a foreign Pebble database = %v", err)
	}
	// The failed open released the directory.
	db, err = pebble.Open(dir, &pebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatalf("directory still locked after a failed Open: %v", err)
	}
	db.Close()
}

func TestCloseIsIdempotent(t *testing.T) {
	s := openStore(t, t.TempDir(), testOptions)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// quiet drops the log of the Pebble databases the tests open directly.
type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
