// Package storetest is the contract every event store adapter meets: one
// suite, run by each adapter's tests against its own stores, so that the
// command handlers and projectors can rely on the same behaviour whichever
// adapter is wired in.
//
// The suite asserts only what the ports promise. It does not assume that
// positions are contiguous or start at 1 (KurrentDB's are log offsets), nor
// that a store is empty or private to one test: every test works in streams
// under a prefix of its own, filters subscriptions by that prefix, and
// ignores records of other streams it meets in the global order. An
// adapter over a shared server can therefore run it as is.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/projections"
)

// Store is an event store adapter as the suite sees it: the three ports it
// implements, and Close.
type Store interface {
	commands.EventStore
	commands.SnapshotStore
	projections.EventLog
	Close() error
}

// Option configures Run.
type Option func(*harness)

// WithReopen enables the persistence tests. reopen gets a store that the
// suite has closed and returns a new store over the same data (for the
// embedded adapter, the same directory; for a server, a new client).
func WithReopen(reopen func(t *testing.T, closed Store) Store) Option {
	return func(h *harness) { h.reopen = reopen }
}

// Run runs the contract suite. open returns a ready store for one test;
// the suite closes it when the test ends. The tests run in parallel, so
// open may be called concurrently. Without WithReopen, the tests that need
// a reopen are not run.
func Run(t *testing.T, open func(t *testing.T) Store, opts ...Option) {
	h := &harness{open: open}
	for _, o := range opts {
		o(h)
	}
	groups := []group{
		{"Append", h.appendTests()},
		{"Idempotency", h.idempotencyTests()},
		{"Concurrency", h.concurrencyTests()},
		{"Subscribe", h.subscribeTests()},
		{"Read", h.readTests()},
		{"Snapshot", h.snapshotTests()},
		{"Close", h.closeTests()},
	}
	if h.reopen != nil {
		groups = append(groups, group{"Reopen", h.reopenTests()})
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t)
				})
			}
		})
	}
}

type group struct {
	name  string
	tests []test
}

type test struct {
	name string
	run  func(t *testing.T)
}

type harness struct {
	open   func(t *testing.T) Store
	reopen func(t *testing.T, closed Store) Store
	// noIDIndex relaxes the checks of ids reused elsewhere (WithoutIDIndex).
	noIDIndex bool
	// noWritten relaxes the check that a storing append says so
	// (WithoutWrittenFlag).
	noWritten bool
}

// WithoutIDIndex is for adapters over a server that keeps no index of
// event ids across streams (KurrentDB recognises a retried id only at the
// same expected revision of the same stream). Such a store must still
// refuse an id repeated within one append with es.ErrDuplicateEventID, and
// must refuse a reuse whose expectation cannot hold with a conflict or a
// duplicate-id error; a reuse under "any" in another stream, which it
// cannot recognise, is not checked.
func WithoutIDIndex() Option {
	return func(h *harness) { h.noIDIndex = true }
}

// WithoutWrittenFlag is for adapters over a server that answers an
// idempotent retry exactly as it answers a write (KurrentDB): they never
// set es.AppendResult.Written. A retry must still not claim it.
func WithoutWrittenFlag() Option {
	return func(h *harness) { h.noWritten = true }
}

// store opens a store that is closed when t ends.
func (h *harness) store(t *testing.T) Store {
	t.Helper()
	s := h.open(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// unmanaged opens a store for a test that closes it itself; if the test
// fails before it does, the store is closed when t ends.
func (h *harness) unmanaged(t *testing.T) (s Store, closeIt func() error) {
	t.Helper()
	s = h.open(t)
	var once sync.Once
	var err error
	closeIt = func() error {
		once.Do(func() { err = s.Close() })
		return err
	}
	t.Cleanup(func() { _ = closeIt() })
	return s, closeIt
}

// timeout bounds every test, so that a store that loses a wake-up fails
// the test instead of hanging the run.
const timeout = 30 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// namespace gives a test stream and type names no other test uses.
type namespace string

func newNamespace() namespace { return namespace("st" + uuid.NewString()[:8] + "-") }

func (n namespace) stream(name string) string { return string(n) + name }
func (n namespace) typ(name string) string    { return string(n) + name }
func (n namespace) filter() es.Filter         { return es.Filter{StreamPrefixes: []string{string(n)}} }

var baseTime = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

// newRecord returns a record with fresh ids and every field set.
func newRecord(typ, data string) es.Record {
	return es.Record{
		ID:            uuid.New(),
		Type:          typ,
		SchemaVersion: 1,
		AggregateID:   uuid.New(),
		Time:          baseTime,
		CorrelationID: uuid.New(),
		CausationID:   uuid.New(),
		Data:          []byte(data),
	}
}

func newRecords(typ string, n int) []es.Record {
	recs := make([]es.Record, n)
	for i := range recs {
		recs[i] = newRecord(typ, fmt.Sprintf(`{"n":%d}`, i))
	}
	return recs
}

func mustAppend(t *testing.T, s Store, stream string, expected es.ExpectedRevision, recs ...es.Record) es.AppendResult {
	t.Helper()
	res, err := s.Append(testContext(t), stream, expected, recs)
	if err != nil {
		t.Fatalf("Append(%s, %s, %d records): %v", stream, expected, len(recs), err)
	}
	return res
}

// readStream returns the whole stream, nil if it does not exist.
func readStream(t *testing.T, s Store, stream string) []es.Record {
	t.Helper()
	recs, err := s.ReadStream(testContext(t), stream, es.ReadOptions{})
	if errors.Is(err, es.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("ReadStream(%s): %v", stream, err)
	}
	return recs
}

func head(t *testing.T, s Store) uint64 {
	t.Helper()
	h, err := s.HeadPosition(testContext(t))
	if err != nil {
		t.Fatalf("HeadPosition: %v", err)
	}
	return h
}

var errStop = errors.New("storetest: enough")

// subscribeN subscribes from from with filter and returns the first n
// records delivered.
func subscribeN(ctx context.Context, s Store, from uint64, filter es.Filter, n int) ([]es.Record, error) {
	var got []es.Record
	if n == 0 {
		return nil, nil
	}
	err := s.SubscribeAll(ctx, from, filter, func(batch []es.Record) error {
		got = append(got, batch...)
		if len(got) >= n {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		return got, fmt.Errorf("SubscribeAll returned %v after %d of %d records", err, len(got), n)
	}
	return got, nil
}

// recordDiff describes how got differs from want in the fields the caller
// supplies, "" if it does not. Times compare as instants (an adapter may
// return another location); nil and empty Meta and Data are equal.
func recordDiff(want, got es.Record) string {
	var d []string
	check := func(field string, ok bool, w, g any) {
		if !ok {
			d = append(d, fmt.Sprintf("%s: got %v, want %v", field, g, w))
		}
	}
	check("ID", got.ID == want.ID, want.ID, got.ID)
	check("Stream", got.Stream == want.Stream, want.Stream, got.Stream)
	check("Type", got.Type == want.Type, want.Type, got.Type)
	check("SchemaVersion", got.SchemaVersion == want.SchemaVersion, want.SchemaVersion, got.SchemaVersion)
	check("AggregateID", got.AggregateID == want.AggregateID, want.AggregateID, got.AggregateID)
	check("Time", got.Time.Equal(want.Time), want.Time, got.Time)
	check("CorrelationID", got.CorrelationID == want.CorrelationID, want.CorrelationID, got.CorrelationID)
	check("CausationID", got.CausationID == want.CausationID, want.CausationID, got.CausationID)
	check("Meta", maps.Equal(got.Meta, want.Meta), want.Meta, got.Meta)
	check("Data", bytes.Equal(got.Data, want.Data), string(want.Data), string(got.Data))
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

// storedAs returns want as the store should hand it back: in stream, at
// rev and pos.
func storedAs(want es.Record, stream string, rev, pos uint64) es.Record {
	want.Stream, want.Revision, want.Position = stream, rev, pos
	return want
}

func ids(recs []es.Record) []uuid.UUID {
	out := make([]uuid.UUID, len(recs))
	for i := range recs {
		out[i] = recs[i].ID
	}
	return out
}

func own(recs []es.Record, ns namespace) []es.Record {
	var out []es.Record
	for _, r := range recs {
		if ns.filter().Match(&r) {
			out = append(out, r)
		}
	}
	return out
}
