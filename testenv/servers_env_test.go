package testenv

import "os"

// testServers are the servers scripts/testenv.sh started, read once from
// the environment it sets.
var testServers = Servers{
	RedisURL:     os.Getenv(RedisURLEnv),
	KafkaBrokers: os.Getenv(KafkaBrokersEnv),
	CI:           os.Getenv(CIEnv) != "",
}
