package kurrentdb

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/ticketd/ticketing/domain/es"
)

func TestParseConnString(t *testing.T) {
	cases := []struct {
		conn  string
		check func(c *esdb.Configuration) bool
	}{
		{"kurrentdb://localhost:2113?tls=false", func(c *esdb.Configuration) bool {
			return c.Address == "localhost:2113" && c.DisableTLS && !c.DnsDiscover
		}},
		{"KurrentDB://admin:changeit@db.internal", func(c *esdb.Configuration) bool {
			return c.Address == "db.internal:2113" && c.Username == "admin" && c.Password == "changeit" && !c.DisableTLS
		}},
		{"kurrentdb+discover://cluster.internal:2113", func(c *esdb.Configuration) bool {
			return c.DnsDiscover && c.Address == "cluster.internal:2113"
		}},
		{"esdb://node1:2113,node2:2113,node3:2113?nodePreference=follower", func(c *esdb.Configuration) bool {
			return len(c.GossipSeeds) == 3 && c.NodePreference == esdb.NodePreferenceFollower
		}},
		{"esdb+discover://cluster.internal", func(c *esdb.Configuration) bool { return c.DnsDiscover }},
	}
	for _, tc := range cases {
		cfg, err := parseConnString(tc.conn)
		if err != nil {
			t.Errorf("parseConnString(%q): %v", tc.conn, err)
			continue
		}
		if !tc.check(cfg) {
			t.Errorf("parseConnString(%q) = %+v", tc.conn, *cfg)
		}
	}
}

func TestParseConnStringRefuses(t *testing.T) {
	cases := []struct {
		conn string
		want string // in the error
	}{
		{"http://localhost:2113", `scheme "http" is not supported; want kurrentdb://`},
		{"tcp://admin:changeit@localhost:1113", `scheme "tcp" is not supported`},
		{"localhost:2113", "not a URL"},
		{"", "not a URL"},
		{"kurrentdb://", "not a URL"},
		{"kurrentdb://localhost:21x3", "invalid connection string"},
		{"kurrentdb://localhost:2113/some/path", "invalid connection string"},
	}
	for _, tc := range cases {
		_, err := parseConnString(tc.conn)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseConnString(%q) = %v, want an error saying %q", tc.conn, err, tc.want)
		}
	}
}

// Connection strings carry passwords; errors must not.
func TestParseConnStringErrorsHideSecrets(t *testing.T) {
	for _, conn := range []string{
		"admin:s3cret@localhost://2113",
		"kurrentdb://admin:s3cret@local host:2113",
		"kurrentdb://admin:s3cret@localhost:bad",
		"postgres://admin:s3cret@localhost",
	} {
		_, err := parseConnString(conn)
		if err == nil {
			t.Errorf("parseConnString(%q) accepted", conn)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error for %q shows the password: %v", conn, err)
		}
	}
}

func TestSupportedVersion(t *testing.T) {
	cases := []struct {
		v  esdb.ServerVersion
		ok bool
	}{
		{esdb.ServerVersion{Major: 25, Minor: 0, Patch: 1}, true},
		{esdb.ServerVersion{Major: 24, Minor: 10}, true},
		{esdb.ServerVersion{Major: 23, Minor: 10, Patch: 2}, true},
		{esdb.ServerVersion{Major: 22, Minor: 10}, true},
		{esdb.ServerVersion{Major: 22, Minor: 6}, false},
		{esdb.ServerVersion{Major: 21, Minor: 10, Patch: 9}, false},
		{esdb.ServerVersion{}, false}, // no version reported: before 21.10
	}
	for _, tc := range cases {
		err := supportedVersion(tc.v)
		if (err == nil) != tc.ok {
			t.Errorf("supportedVersion(%+v) = %v, want ok %v", tc.v, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "22.10 or later") {
			t.Errorf("error does not say what is needed: %v", err)
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.Logger == nil || o.BatchWindow != defaultBatchWindow || o.MaxBatch != defaultMaxBatch {
		t.Errorf("defaults = %+v", o)
	}
	custom := Options{BatchWindow: time.Second, MaxBatch: 7}.withDefaults()
	if custom.BatchWindow != time.Second || custom.MaxBatch != 7 {
		t.Errorf("custom options overridden: %+v", custom)
	}
}

// unconnected returns a store whose client has not connected: these
// tests never let a call reach the network.
func unconnected(t *testing.T) *Store {
	t.Helper()
	cfg, err := parseConnString("kurrentdb://127.0.0.1:1?tls=false")
	if err != nil {
		t.Fatal(err)
	}
	s, err := newStore(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func record() es.Record { return es.Record{ID: uuid.New(), Type: "t", Time: time.Now()} }

func TestClosedStoreRefusesEverything(t *testing.T) {
	s := unconnected(t)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ctx := t.Context()
	_, err := s.Append(ctx, "a-1", es.Any, []es.Record{record()})
	checkIs(t, "Append", err, es.ErrClosed)
	_, err = s.ReadStream(ctx, "a-1", es.ReadOptions{})
	checkIs(t, "ReadStream", err, es.ErrClosed)
	_, err = s.ReadAll(ctx, 0, 10)
	checkIs(t, "ReadAll", err, es.ErrClosed)
	_, err = s.HeadPosition(ctx)
	checkIs(t, "HeadPosition", err, es.ErrClosed)
	err = s.SubscribeAll(ctx, 0, es.Filter{}, func([]es.Record) error { return nil })
	checkIs(t, "SubscribeAll", err, es.ErrClosed)
	checkIs(t, "SaveSnapshot", s.SaveSnapshot(ctx, "a-1", 0, nil), es.ErrClosed)
	_, _, _, err = s.LoadSnapshot(ctx, "a-1")
	checkIs(t, "LoadSnapshot", err, es.ErrClosed)
}

func TestCancelledContextIsReportedFirst(t *testing.T) {
	s := unconnected(t)
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Append(ctx, "a-1", es.Any, []es.Record{record()})
	checkIs(t, "Append", err, context.Canceled)
	_, err = s.ReadStream(ctx, "a-1", es.ReadOptions{})
	checkIs(t, "ReadStream", err, context.Canceled)
	_, err = s.ReadAll(ctx, 0, 10)
	checkIs(t, "ReadAll", err, context.Canceled)
	_, err = s.HeadPosition(ctx)
	checkIs(t, "HeadPosition", err, context.Canceled)
	err = s.SubscribeAll(ctx, 0, es.Filter{}, func([]es.Record) error { return nil })
	checkIs(t, "SubscribeAll", err, context.Canceled)
	checkIs(t, "SaveSnapshot", s.SaveSnapshot(ctx, "a-1", 0, nil), context.Canceled)
	_, _, _, err = s.LoadSnapshot(ctx, "a-1")
	checkIs(t, "LoadSnapshot", err, context.Canceled)
}

// What the adapter refuses, it refuses before asking the server.
func TestRefusedBeforeTheServer(t *testing.T) {
	s := unconnected(t)
	defer s.Close()
	ctx := t.Context()
	r := record()
	_, err := s.Append(ctx, "a-1", es.NoStream, []es.Record{r, record(), r})
	checkIs(t, "Append of an id twice", err, es.ErrDuplicateEventID)
	if _, err := s.Append(ctx, "$all", es.Any, []es.Record{record()}); err == nil {
		t.Error("Append to a system stream accepted")
	}
	if _, err := s.ReadAll(ctx, 0, 0); err == nil {
		t.Error("ReadAll with limit 0 accepted")
	}
	if _, err := s.ReadStream(ctx, "a-1", es.ReadOptions{Limit: -1}); err == nil {
		t.Error("ReadStream with a negative limit accepted")
	}
}

func checkIs(t *testing.T, op string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s = %v, want an error matching %v", op, err, target)
	}
}

func TestOpenRefusesABadConnectionString(t *testing.T) {
	_, err := Open(t.Context(), "https://localhost:2113", Options{})
	if err == nil || !strings.Contains(err.Error(), "want kurrentdb://") {
		t.Errorf("Open = %v, want an error naming the schemes to use", err)
	}
}

// Open gives up when its context does, even while the client is still
// trying to reach a server that is not there.
func TestOpenWithoutAServer(t *testing.T) {
	addr := deadAddress(t)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Open(ctx, "kurrentdb://"+addr+"?tls=false", Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Open = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open took %v after its context ended", d)
	}
}

// deadAddress returns a local address where nothing listens.
func deadAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
