package kafka_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/infra/kafka"
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func header(m *ck.Message, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func TestRecordRoundTrip(t *testing.T) {
	at := time.Date(2030, 3, 4, 5, 6, 7, 891234567, time.FixedZone("CET", 3600))
	full := es.Record{
		ID: uuid.New(), Stream: "booking-" + uuid.NewString(), Type: "booking.placed", SchemaVersion: 2,
		AggregateID: uuid.New(), Revision: 41, Position: 1234567, Time: at,
		CorrelationID: uuid.New(), CausationID: uuid.New(),
		Meta: map[string]string{"traceparent": traceparent, "tracestate": "congo=t61rcWkgMzE"},
		Data: []byte(`{"booking_id":"b","quantity":2}`),
	}
	bare := es.Record{ID: uuid.New(), Stream: "user-1", Type: "user.registered", Data: []byte(`{}`)}
	tests := []struct {
		name string
		rec  es.Record
	}{
		{"every field, trace context in meta", full},
		{"no meta, no correlation, zero time", bare},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := kafka.EncodeRecord(&tt.rec, "bookings", "ticketing.bookings")
			if *m.TopicPartition.Topic != "ticketing.bookings" || m.TopicPartition.Partition != ck.PartitionAny {
				t.Errorf("addressed to %v, want ticketing.bookings, any partition", m.TopicPartition)
			}
			if string(m.Key) != tt.rec.AggregateID.String() {
				t.Errorf("key %q, want the aggregate id %s: per-aggregate order depends on it", m.Key, tt.rec.AggregateID)
			}
			for k, want := range map[string]string{
				"ce_specversion": "1.0", "ce_id": tt.rec.ID.String(), "ce_type": tt.rec.Type,
				"ce_source": "/ticketd/bookings", "ce_subject": tt.rec.Stream, "content-type": "application/json",
			} {
				if got, _ := header(m, k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if got, ok := header(m, "traceparent"); len(tt.rec.Meta) > 0 && (!ok || got != traceparent) {
				t.Errorf("traceparent header = %q, want it carried as a plain header (W3C convention)", got)
			}
			got, err := kafka.DecodeRecord(m)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Time.Equal(tt.rec.Time) {
				t.Errorf("time %v, want %v", got.Time, tt.rec.Time)
			}
			got.Time, tt.rec.Time = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, tt.rec) {
				t.Errorf("round trip\n got %+v\nwant %+v", got, tt.rec)
			}
		})
	}
}

func TestDecodeRecordRefusesMalformed(t *testing.T) {
	rec := es.Record{ID: uuid.New(), Stream: "booking-1", Type: "booking.placed", Data: []byte(`{}`)}
	tests := []struct {
		name   string
		mutate func(m *ck.Message)
	}{
		{"no headers at all", func(m *ck.Message) { m.Headers = nil }},
		{"bad id", func(m *ck.Message) { set(m, "ce_id", "not-a-uuid") }},
		{"bad revision", func(m *ck.Message) { set(m, "ce_revision", "-1") }},
		{"bad time", func(m *ck.Message) { set(m, "ce_time", "yesterday") }},
		{"other spec version", func(m *ck.Message) { set(m, "ce_specversion", "0.3") }},
		{"no type", func(m *ck.Message) { set(m, "ce_type", "") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := kafka.EncodeRecord(&rec, "bookings", "x")
			tt.mutate(m)
			if _, err := kafka.DecodeRecord(m); !errors.Is(err, kafka.ErrMalformed) {
				t.Errorf("DecodeRecord = %v, want an error matching ErrMalformed (dead-lettered at once, not retried)", err)
			}
		})
	}
}

func set(m *ck.Message, key, value string) {
	for i := range m.Headers {
		if m.Headers[i].Key == key {
			m.Headers[i].Value = []byte(value)
		}
	}
}

func TestCommandRoundTrip(t *testing.T) {
	booking := uuid.New()
	msg := commands.Msg{ID: uuid.New(), CorrelationID: booking, Meta: map[string]string{"traceparent": traceparent}}
	tests := []struct {
		name string
		cmd  commands.Command
	}{
		{"hold seats", commands.HoldSeats{EventID: uuid.New(), BookingID: booking, TicketType: "vip", Quantity: 3}},
		{"refund payment", commands.RefundPayment{PaymentID: uuid.New(), BookingID: booking, Reason: "booking cancelled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := kafka.EncodeCommand(msg, tt.cmd, "bookings", "ticketing.events.commands", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if string(m.Key) != booking.String() {
				t.Errorf("key %q, want the correlation id: one booking's commands stay in order", m.Key)
			}
			if got, _ := header(m, "ce_type"); got != tt.cmd.CommandType() {
				t.Errorf("ce_type %q, want %q", got, tt.cmd.CommandType())
			}
			gotMsg, gotCmd, err := kafka.DecodeCommand(m)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotMsg, msg) {
				t.Errorf("message %+v, want %+v", gotMsg, msg)
			}
			if !reflect.DeepEqual(gotCmd, tt.cmd) {
				t.Errorf("command %+v, want %+v", gotCmd, tt.cmd)
			}
		})
	}
	t.Run("unknown command type", func(t *testing.T) {
		m, _ := kafka.EncodeCommand(msg, commands.HoldSeats{}, "bookings", "x", time.Now())
		set(m, "ce_type", "events.teleport")
		if _, _, err := kafka.DecodeCommand(m); !errors.Is(err, kafka.ErrMalformed) {
			t.Errorf("DecodeCommand = %v, want ErrMalformed", err)
		}
	})
}
