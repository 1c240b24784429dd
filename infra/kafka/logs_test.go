package kafka_test

import (
	"context"
	"log/slog"
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

// levels is a slog handler that keeps the level of each record.
type levels struct{ got *[]slog.Level }

func (h levels) Enabled(context.Context, slog.Level) bool { return true }
func (h levels) Handle(_ context.Context, r slog.Record) error {
	*h.got = append(*h.got, r.Level)
	return nil
}
func (h levels) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h levels) WithGroup(string) slog.Handler      { return h }

// A refused broker connection, which librdkafka already logs at warn and
// every client repeats during an outage, is logged at debug; other client
// errors, such as every broker being down, at warn.
func TestClientErrorLevels(t *testing.T) {
	for _, c := range []struct {
		code ck.ErrorCode
		want slog.Level
	}{
		{ck.ErrTransport, slog.LevelDebug},
		{ck.ErrAllBrokersDown, slog.LevelWarn},
		{ck.ErrMsgTimedOut, slog.LevelWarn},
	} {
		var got []slog.Level
		kafka.LogClientError(slog.New(levels{&got}), "consumer", ck.NewError(c.code, "test", false))
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%v logged at %v, want once at %v", c.code, got, c.want)
		}
	}
}
