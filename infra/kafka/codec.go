package kafka

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/ticketd/ticketing/commands"
	"github.com/ticketd/ticketing/domain/es"
)

// Headers of the CloudEvents Kafka protocol binding, binary content mode:
// the value is the event's data and every attribute is a "ce_" header.
// The extension attributes carry what an es.Record has beyond the core
// attributes, so that a consumer rebuilds the record exactly.
const (
	HeaderSpecVersion   = "ce_specversion"
	HeaderID            = "ce_id"
	HeaderType          = "ce_type"
	HeaderSource        = "ce_source"
	HeaderTime          = "ce_time"
	HeaderSubject       = "ce_subject"
	HeaderContentType   = "content-type"
	HeaderStream        = "ce_stream"
	HeaderRevision      = "ce_revision"
	HeaderPosition      = "ce_position"
	HeaderAggregateID   = "ce_aggregateid"
	HeaderCorrelationID = "ce_correlationid"
	HeaderCausationID   = "ce_causationid"
	HeaderSchemaVersion = "ce_schemaversion"

	specVersion = "1.0"
	contentJSON = "application/json"
)

// Headers a dead-lettered message carries besides its original ones.
const (
	HeaderDLQError      = "dlq_error"
	HeaderDLQAttempts   = "dlq_attempts"
	HeaderDLQSubscriber = "dlq_subscriber"
	HeaderDLQTopic      = "dlq_topic"
	HeaderDLQPartition  = "dlq_partition"
	HeaderDLQOffset     = "dlq_offset"
)

// ErrMalformed is matched by the error of decoding a message that does not
// follow the format: a bug on the producing side or a foreign message, not
// bad luck, so a consumer dead-letters it at once instead of retrying.
var ErrMalformed = errors.New("kafka: malformed message")

// reserved reports whether a header name belongs to the format itself, so
// that it is neither taken from nor given to es.Record.Meta.
func reserved(name string) bool {
	return strings.HasPrefix(name, "ce_") || strings.HasPrefix(name, "dlq_") || name == HeaderContentType
}

// EncodeRecord returns rec as a message for topic, published by service
// (ce_source "/ticketd/<service>"). The key is the aggregate id, so that
// all records of one aggregate land in one partition, in order. Every
// entry of rec.Meta becomes a plain header, as the W3C trace context
// convention for Kafka wants for "traceparent" and "tracestate"; entries
// whose names the format reserves ("ce_*", "dlq_*", "content-type") are
// not carried.
func EncodeRecord(rec *es.Record, service, topic string) *ck.Message {
	h := make([]ck.Header, 0, 14+len(rec.Meta))
	add := func(k, v string) { h = append(h, ck.Header{Key: k, Value: []byte(v)}) }
	add(HeaderSpecVersion, specVersion)
	add(HeaderID, rec.ID.String())
	add(HeaderType, rec.Type)
	add(HeaderSource, "/ticketd/"+service)
	add(HeaderTime, rec.Time.UTC().Format(time.RFC3339Nano))
	add(HeaderSubject, rec.Stream)
	add(HeaderContentType, contentJSON)
	add(HeaderStream, rec.Stream)
	add(HeaderRevision, strconv.FormatUint(rec.Revision, 10))
	add(HeaderPosition, strconv.FormatUint(rec.Position, 10))
	add(HeaderAggregateID, rec.AggregateID.String())
	add(HeaderCorrelationID, rec.CorrelationID.String())
	add(HeaderCausationID, rec.CausationID.String())
	add(HeaderSchemaVersion, strconv.Itoa(rec.SchemaVersion))
	h = appendMeta(h, rec.Meta)
	return &ck.Message{
		TopicPartition: ck.TopicPartition{Topic: &topic, Partition: ck.PartitionAny},
		Key:            []byte(rec.AggregateID.String()),
		Value:          rec.Data,
		Headers:        h,
		Timestamp:      rec.Time,
	}
}

// DecodeRecord rebuilds the record EncodeRecord encoded. Its Position is
// the one the record has in its origin store (ce_position); a reader that
// gives records another order (LogReader) rewrites it. A message that does
// not carry a valid record is an error matching ErrMalformed.
func DecodeRecord(m *ck.Message) (es.Record, error) {
	var (
		rec es.Record
		d   = headerDecoder{m: m}
	)
	for _, h := range m.Headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderID:
			rec.ID = d.uuid(h.Key, v)
		case HeaderType:
			rec.Type = v
		case HeaderTime:
			rec.Time = d.time(h.Key, v)
		case HeaderSubject:
			if rec.Stream == "" {
				rec.Stream = v
			}
		case HeaderStream:
			rec.Stream = v
		case HeaderRevision:
			rec.Revision = d.uint(h.Key, v)
		case HeaderPosition:
			rec.Position = d.uint(h.Key, v)
		case HeaderAggregateID:
			rec.AggregateID = d.uuid(h.Key, v)
		case HeaderCorrelationID:
			rec.CorrelationID = d.uuid(h.Key, v)
		case HeaderCausationID:
			rec.CausationID = d.uuid(h.Key, v)
		case HeaderSchemaVersion:
			rec.SchemaVersion = int(d.uint(h.Key, v))
		case HeaderSpecVersion:
			d.spec(v)
		default:
			if !reserved(h.Key) {
				if rec.Meta == nil {
					rec.Meta = map[string]string{}
				}
				rec.Meta[h.Key] = v
			}
		}
	}
	d.require(HeaderID, rec.ID != uuid.Nil)
	d.require(HeaderType, rec.Type != "")
	d.require(HeaderStream, rec.Stream != "")
	if d.err != nil {
		return es.Record{}, d.err
	}
	rec.Data = m.Value
	return rec, nil
}

// EncodeCommand returns cmd, sent as msg, as a message for topic. The key
// is the correlation id (for the saga's commands, the booking): one
// booking's commands stay in order, while the holds of many bookings on
// one hot event spread over the partitions.
func EncodeCommand(msg commands.Msg, cmd commands.Command, source, topic string, now time.Time) (*ck.Message, error) {
	data, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("kafka: encode command %s: %w", cmd.CommandType(), err)
	}
	h := make([]ck.Header, 0, 7+len(msg.Meta))
	add := func(k, v string) { h = append(h, ck.Header{Key: k, Value: []byte(v)}) }
	add(HeaderSpecVersion, specVersion)
	add(HeaderID, msg.ID.String())
	add(HeaderType, cmd.CommandType())
	add(HeaderSource, "/ticketd/"+source)
	add(HeaderTime, now.UTC().Format(time.RFC3339Nano))
	add(HeaderContentType, contentJSON)
	add(HeaderCorrelationID, msg.CorrelationID.String())
	h = appendMeta(h, msg.Meta)
	return &ck.Message{
		TopicPartition: ck.TopicPartition{Topic: &topic, Partition: ck.PartitionAny},
		Key:            []byte(msg.CorrelationID.String()),
		Value:          data,
		Headers:        h,
		Timestamp:      now,
	}, nil
}

// DecodeCommand rebuilds the message and command EncodeCommand encoded.
// A message that does not carry a known, valid command is an error
// matching ErrMalformed.
func DecodeCommand(m *ck.Message) (commands.Msg, commands.Command, error) {
	var (
		msg commands.Msg
		typ string
		d   = headerDecoder{m: m}
	)
	for _, h := range m.Headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderID:
			msg.ID = d.uuid(h.Key, v)
		case HeaderType:
			typ = v
		case HeaderCorrelationID:
			msg.CorrelationID = d.uuid(h.Key, v)
		case HeaderSpecVersion:
			d.spec(v)
		default:
			if !reserved(h.Key) {
				if msg.Meta == nil {
					msg.Meta = map[string]string{}
				}
				msg.Meta[h.Key] = v
			}
		}
	}
	d.require(HeaderID, msg.ID != uuid.Nil)
	d.require(HeaderType, typ != "")
	if d.err != nil {
		return commands.Msg{}, nil, d.err
	}
	cmd, err := commands.DecodeCommand(typ, m.Value)
	if err != nil {
		return commands.Msg{}, nil, fmt.Errorf("%w: %s: %w", ErrMalformed, d.where(), err)
	}
	return msg, cmd, nil
}

func appendMeta(h []ck.Header, meta map[string]string) []ck.Header {
	for k, v := range meta {
		if !reserved(k) {
			h = append(h, ck.Header{Key: k, Value: []byte(v)})
		}
	}
	return h
}

// headerDecoder parses header values and keeps the first error, so that a
// decoder reads as a plain switch.
type headerDecoder struct {
	m   *ck.Message
	err error
}

func (d *headerDecoder) where() string {
	tp := d.m.TopicPartition
	if tp.Topic == nil {
		return "message"
	}
	return fmt.Sprintf("%s[%d]@%d", *tp.Topic, tp.Partition, tp.Offset)
}

func (d *headerDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: %s", ErrMalformed, d.where(), fmt.Sprintf(format, args...))
	}
}

func (d *headerDecoder) uuid(key, v string) uuid.UUID {
	id, err := uuid.Parse(v)
	if err != nil {
		d.fail("header %s=%q: %v", key, v, err)
	}
	return id
}

func (d *headerDecoder) uint(key, v string) uint64 {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		d.fail("header %s=%q: %v", key, v, err)
	}
	return n
}

func (d *headerDecoder) time(key, v string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		d.fail("header %s=%q: %v", key, v, err)
	}
	return t
}

func (d *headerDecoder) spec(v string) {
	if v != specVersion {
		d.fail("CloudEvents spec version %q, want %s", v, specVersion)
	}
}

func (d *headerDecoder) require(key string, ok bool) {
	if !ok {
		d.fail("header %s missing", key)
	}
}
