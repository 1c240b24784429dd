package pgstore_test

import (
	"os"

	"github.com/ticketd/ticketing/testenv"
)

// testServers is the PostgreSQL scripts/benchenv.sh started, read once
// from the environment its env subcommand sets.
var testServers = testenv.Servers{
	PostgresURL: os.Getenv(testenv.PostgresURLEnv),
	CI:          os.Getenv(testenv.CIEnv) != "",
}
