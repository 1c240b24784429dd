package kafka_test

import (
	"testing"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/ticketd/ticketing/infra/kafka"
)

// The sign of librdkafka issue 5430 is recognised from librdkafka's own
// words (the first line is verbatim from a CI run), and nothing else is
// taken for it.
func TestDroppedLeaderIsRecognisedInTheLogs(t *testing.T) {
	for _, c := range []struct {
		ev   ck.LogEvent
		want bool
	}{
		{ck.LogEvent{Tag: "METADATAUPDATE", Message: "[thrd:main]: Partition t0fd4856d.events.commands(zOvfG37AQneQ31FqC1hLYQ)[0]: new leader-1 not found in cache"}, true},
		{ck.LogEvent{Tag: "METADATAUPDATE", Message: "[thrd:main]: Partition x.bookings(AAAAAAAAAAAAAAAAAAAAAA)[2]: new leader3 not found in cache"}, true},
		{ck.LogEvent{Tag: "METADATAUPDATE", Message: "[thrd:main]: Metadata update: Topic x.bookings partition 7 not found in cache"}, false},
		{ck.LogEvent{Tag: "METADATA", Message: "[thrd:main]: Partition x.bookings[0]: new leader-1 not found in cache"}, false},
		{ck.LogEvent{Tag: "FAIL", Message: "[thrd:127.0.0.1:19092/1]: 127.0.0.1:19092/1: Connect to ipv4#127.0.0.1:19092 failed: Connection refused"}, false},
	} {
		if got := kafka.DroppedLeader(c.ev); got != c.want {
			t.Errorf("%s %q: %v, want %v", c.ev.Tag, c.ev.Message, got, c.want)
		}
	}
}
