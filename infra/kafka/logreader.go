package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	ck "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/ticketd/ticketing/domain/es"
	"github.com/ticketd/ticketing/projections"
)

var _ projections.EventLog = (*LogReader)(nil)

// LogReader serves the firehose topic as a projections.EventLog, so that
// the projectors of a distributed deployment build their read models from
// Kafka exactly as they do from the embedded store.
//
// A record's Position is its offset in the firehose plus one: strictly
// increasing in the firehose's one partition, and not contiguous, since
// the transaction markers the relays write take offsets too. (The position
// the record has in its origin store is in no way comparable across
// services, so it is dropped.)
//
// Reading is read-committed, which is what makes the relays' transactions
// visible atomically: records of an aborted or still open transaction are
// never delivered, and a record is delivered only once everything before
// it in the partition is decided, so a subscriber never sees a gap it could
// later be missing.
type LogReader struct {
	cfg    Config
	logger *slog.Logger

	// BatchSize caps the records of one batch that SubscribeAll delivers.
	BatchSize int
	// Timeout bounds ReadAll and HeadPosition when their context has no
	// deadline.
	Timeout time.Duration
	// StallTimeout is how long a subscription may receive nothing while
	// committed records wait after its position before it gives up with
	// ErrStalled (0: never), so that the projector is run again on a new
	// consumer (see Runner.StallTimeout for why a consumer may wedge).
	StallTimeout time.Duration

	// pauseOnAssign, set by tests, makes the next subscription pause its
	// partition: a consumer that receives nothing.
	pauseOnAssign atomic.Bool

	mu     sync.Mutex // serialises ReadAll and HeadPosition over reader
	reader *ck.Consumer
	closed bool
}

// NewLogReader returns a reader of cfg's firehose. Close it when done.
func NewLogReader(cfg Config, logger *slog.Logger) *LogReader {
	return &LogReader{cfg: cfg, logger: orDiscard(logger).With("log", cfg.LogTopic()), BatchSize: 512, Timeout: 30 * time.Second, StallTimeout: 15 * time.Second}
}

// Close releases the reader's connection. Subscriptions end with their
// contexts, independently.
func (l *LogReader) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.reader != nil {
		err := l.reader.Close()
		l.reader = nil
		if err != nil {
			return fmt.Errorf("kafka: close log reader: %w", err)
		}
	}
	return nil
}

func (l *LogReader) consumer() (*ck.Consumer, error) {
	return newConsumer(l.cfg, ck.ConfigMap{
		// The Go client insists on a group id even for a consumer that
		// only ever has partitions assigned and never commits.
		"group.id":             l.cfg.scoped("log-reader"),
		"enable.auto.commit":   false,
		"isolation.level":      "read_committed",
		"enable.partition.eof": true,
		// The firehose is never truncated; an offset that is gone means
		// the topic was recreated or its retention changed, and a
		// projector must stop rather than silently skip history.
		"auto.offset.reset": "error",
		// A live subscriber wants each record as soon as it is committed.
		"fetch.wait.max.ms": 100,
	}, l.logger)
}

// SubscribeAll implements projections.EventLog: it delivers every
// committed record after position from that passes filter, first those in
// the topic, then new ones as they are committed, until ctx is done or
// handle fails.
func (l *LogReader) SubscribeAll(ctx context.Context, from uint64, filter es.Filter, handle func(batch []es.Record) error) error {
	c, err := l.consumer()
	if err != nil {
		return fmt.Errorf("kafka: subscribe to %s: %w", l.cfg.LogTopic(), err)
	}
	defer c.Close()
	topic := l.cfg.LogTopic()
	// Position p is offset p-1, so the first record after from is at
	// offset from.
	tp := []ck.TopicPartition{{Topic: &topic, Partition: 0, Offset: ck.Offset(from)}}
	if err := c.Assign(tp); err != nil {
		return fmt.Errorf("kafka: subscribe to %s: assign: %w", topic, err)
	}
	if l.pauseOnAssign.CompareAndSwap(true, false) {
		_ = c.Pause(tp)
	}
	var watch <-chan time.Time
	if l.StallTimeout > 0 {
		w := time.NewTicker(l.StallTimeout / 3)
		defer w.Stop()
		watch = w.C
	}
	lastEvent := time.Now()
	batch := make([]es.Record, 0, l.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := handle(batch)
		batch = make([]es.Record, 0, l.BatchSize) // handle may keep the slice
		lastEvent = time.Now()                    // the time handle took is not a stall
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case <-watch:
			if time.Since(lastEvent) >= l.StallTimeout {
				if err := l.stalled(c, from); err != nil {
					return err
				}
			}
		default:
		}
		wait := 100
		if len(batch) > 0 {
			wait = 0 // take what is already fetched, then deliver
		}
		ev := c.Poll(wait)
		switch ev.(type) {
		case *ck.Message, ck.PartitionEOF:
			lastEvent = time.Now()
		}
		switch e := ev.(type) {
		case *ck.Message:
			rec, err := logRecord(e)
			if err != nil {
				return err
			}
			if rec.Position <= from {
				continue
			}
			from = rec.Position
			if filter.Match(&rec) {
				batch = append(batch, rec)
			}
			if len(batch) >= l.BatchSize {
				if err := flush(); err != nil {
					return err
				}
			}
		case ck.PartitionEOF:
			if err := flush(); err != nil {
				return err
			}
		case ck.Error:
			if e.IsFatal() {
				return fmt.Errorf("kafka: subscription to %s: %w", topic, e)
			}
			logClientError(l.logger, "log subscription", e)
		case nil:
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// stalled returns ErrStalled if the subscription's position is behind the
// log's last stable offset: records are committed that it does not get.
// Reaching the end moves the position past the transaction markers, so an
// idle subscriber at the end is not behind; before it has received
// anything, the position is next, the offset it was assigned at.
func (l *LogReader) stalled(c *ck.Consumer, next uint64) error {
	topic := l.cfg.LogTopic()
	at := int64(next)
	if pos, err := c.Position([]ck.TopicPartition{{Topic: &topic, Partition: 0}}); err == nil && len(pos) == 1 && pos[0].Offset >= 0 {
		at = int64(pos[0].Offset)
	}
	_, end, err := c.QueryWatermarkOffsets(topic, 0, 5000)
	if err != nil || at >= end {
		return nil
	}
	return fmt.Errorf("kafka: subscription to %s: nothing received for %v at offset %d with the log at %d: %w",
		topic, l.StallTimeout, at, end, ErrStalled)
}

// logRecord decodes a firehose message into a record positioned in the
// firehose.
func logRecord(m *ck.Message) (es.Record, error) {
	if err := m.TopicPartition.Error; err != nil {
		return es.Record{}, fmt.Errorf("kafka: read %s at offset %d: %w", topicOf(m), m.TopicPartition.Offset, err)
	}
	rec, err := DecodeRecord(m)
	if err != nil {
		return es.Record{}, err
	}
	rec.Position = uint64(m.TopicPartition.Offset) + 1
	return rec, nil
}

// ReadAll implements projections.EventLog: up to limit committed records
// after position from (every one up to the end of the log when limit is 0
// or less).
func (l *LogReader) ReadAll(ctx context.Context, from uint64, limit int) ([]es.Record, error) {
	var out []es.Record
	err := l.withReader(ctx, func(c *ck.Consumer, deadline time.Time) error {
		var err error
		out, err = l.read(c, deadline, from, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("kafka: read %s after %d: %w", l.cfg.LogTopic(), from, err)
	}
	return out, nil
}

// HeadPosition implements projections.EventLog: the position of the last
// committed record, 0 if there is none.
//
// The last stable offset is not it: the log ends with the marker of the
// last transaction (and maybe with aborted records), so HeadPosition looks
// for the last record in a window before that offset, widening the window
// until it finds one. A reader that waits for a position must be given one
// that a record has, or it would wait for ever.
func (l *LogReader) HeadPosition(ctx context.Context) (uint64, error) {
	var head uint64
	err := l.withReader(ctx, func(c *ck.Consumer, deadline time.Time) error {
		low, end, err := l.bounds(c, deadline)
		if err != nil || end <= low {
			return err
		}
		for window := int64(16); ; window *= 8 {
			start := max(low, end-window)
			recs, err := l.readRange(c, deadline, start, end)
			if err != nil {
				return err
			}
			if len(recs) > 0 {
				head = recs[len(recs)-1].Position
				return nil
			}
			if start == low {
				return nil
			}
			end = start
		}
	})
	if err != nil {
		return 0, fmt.Errorf("kafka: head of %s: %w", l.cfg.LogTopic(), err)
	}
	return head, nil
}

// withReader runs fn with the shared reader consumer, created on first use.
func (l *LogReader) withReader(ctx context.Context, fn func(c *ck.Consumer, deadline time.Time) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return es.ErrClosed
	}
	if l.reader == nil {
		c, err := l.consumer()
		if err != nil {
			return err
		}
		l.reader = c
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(l.Timeout)
	}
	err := fn(l.reader, deadline)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// bounds returns the low watermark and the last stable offset of the log:
// the offsets within which committed records may be.
func (l *LogReader) bounds(c *ck.Consumer, deadline time.Time) (low, end int64, err error) {
	// Under read_committed, QueryWatermarkOffsets answers the last stable
	// offset (unlike GetWatermarkOffsets, whose cached value is the high
	// watermark).
	err = retry(context.Background(), deadline, func(ms int) (err error) {
		low, end, err = c.QueryWatermarkOffsets(l.cfg.LogTopic(), 0, ms)
		return err
	})
	return low, end, err
}

// read returns up to limit records after position from.
func (l *LogReader) read(c *ck.Consumer, deadline time.Time, from uint64, limit int) ([]es.Record, error) {
	low, end, err := l.bounds(c, deadline)
	if err != nil {
		return nil, err
	}
	start := int64(from)
	if start < low {
		return nil, fmt.Errorf("records after %d are gone: the log starts at offset %d", from, low)
	}
	if start >= end {
		return nil, nil
	}
	return l.readRangeLimit(c, deadline, start, end, limit)
}

func (l *LogReader) readRange(c *ck.Consumer, deadline time.Time, start, end int64) ([]es.Record, error) {
	return l.readRangeLimit(c, deadline, start, end, 0)
}

// readRangeLimit reads the committed records at offsets start..end-1 (up
// to limit of them when limit > 0). It stops at end, or at the end of the
// partition as the broker sees it, whichever comes first.
func (l *LogReader) readRangeLimit(c *ck.Consumer, deadline time.Time, start, end int64, limit int) ([]es.Record, error) {
	topic := l.cfg.LogTopic()
	// Assign replaces the previous assignment and discards what was
	// fetched for it, so every read starts clean at start.
	if err := c.Assign([]ck.TopicPartition{{Topic: &topic, Partition: 0, Offset: ck.Offset(start)}}); err != nil {
		return nil, fmt.Errorf("assign at %d: %w", start, err)
	}
	defer func() { _ = c.Unassign() }()
	var out []es.Record
	for {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("reading offsets %d to %d: %w", start, end, context.DeadlineExceeded)
		}
		switch e := c.Poll(100).(type) {
		case *ck.Message:
			off := int64(e.TopicPartition.Offset)
			if off < start {
				continue // fetched for an earlier assignment
			}
			if off >= end {
				return out, nil
			}
			rec, err := logRecord(e)
			if err != nil {
				return nil, err
			}
			out = append(out, rec)
			if off == end-1 || (limit > 0 && len(out) >= limit) {
				return out, nil
			}
		case ck.PartitionEOF:
			if int64(e.Offset) >= start {
				return out, nil
			}
		case ck.Error:
			if e.IsFatal() {
				return nil, e
			}
			logClientError(l.logger, "log read", e)
		}
	}
}
