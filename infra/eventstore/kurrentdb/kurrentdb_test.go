package kurrentdb

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ticketd/ticketing/infra/eventstore/storetest"
)

// TestContract runs the event store contract suite against the KurrentDB
// server named by KURRENTDB_URL. Every test of the suite works in streams
// of its own, so a shared server does.
//
// This is the one test allowed to skip in CI: no KurrentDB server can be
// installed on the CI machines (no Docker, no package), and a fake one
// would prove nothing about KurrentDB. Run it locally with, for example,
//
//	docker run -d -p 2113:2113 docker.kurrent.io/kurrent-latest/kurrentdb:latest --insecure
//	KURRENTDB_URL='kurrentdb://localhost:2113?tls=false' go test ./infra/eventstore/kurrentdb/
//
// Known difference: KurrentDB has no index of event ids across streams, so
// the suite runs WithoutIDIndex (see the package documentation).
func TestContract(t *testing.T) {
	url := os.Getenv("KURRENTDB_URL")
	if url == "" {
		t.Skip("KurrentDB contract suite skipped: set KURRENTDB_URL=kurrentdb://host:2113?tls=false to run it against a server")
	}
	open := func(t *testing.T) storetest.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := Open(ctx, url, Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	}
	storetest.Run(t, open, storetest.WithoutIDIndex(), storetest.WithoutWrittenFlag(), storetest.WithReopen(func(t *testing.T, _ storetest.Store) storetest.Store {
		// A new client over the same server.
		return open(t)
	}))
}
