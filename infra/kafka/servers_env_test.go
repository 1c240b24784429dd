package kafka_test

import (
	"os"

	"github.com/ticketd/ticketing/testenv"
)

// testServers are the real servers this package's integration tests use,
// read once from the environment that scripts/testenv.sh sets.
var testServers = testenv.Servers{
	RedisURL:     os.Getenv(testenv.RedisURLEnv),
	KafkaBrokers: os.Getenv(testenv.KafkaBrokersEnv),
	CI:           os.Getenv(testenv.CIEnv) != "",
}
