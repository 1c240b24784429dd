// Package logtest is an in-memory event log for tests of projectors and
// other subscribers: records are appended by encoding payloads with a
// registry, and SubscribeAll delivers them in batches, catch-up then live,
// the way projections.EventLog promises.
package logtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/es"
)

// Log is an in-memory projections.EventLog. Positions start at 1 and are
// contiguous; stream revisions start at 0.
type Log struct {
	t   testing.TB
	reg *es.Registry

	// BatchSize caps the records of one delivered batch; 0 means 512.
	BatchSize int
	// Redeliver makes every batch after the first start with the last
	// record of the batch before, as an at-least-once subscription may.
	Redeliver bool

	mu    sync.Mutex
	recs  []es.Record
	revs  map[string]uint64
	wake  chan struct{}
	reads int
}

// New returns an empty log whose Append encodes payloads with reg.
func New(t testing.TB, reg *es.Registry) *Log {
	return &Log{t: t, reg: reg, revs: map[string]uint64{}, wake: make(chan struct{})}
}

// Epoch is the time of the first record; each next one is a millisecond
// later.
var Epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// Append encodes payloads as the next records of stream, which belongs to
// aggregate id, and returns the position of the last one.
func (l *Log) Append(stream string, id uuid.UUID, payloads ...es.Payload) uint64 {
	l.t.Helper()
	recs := make([]es.Record, len(payloads))
	for i, p := range payloads {
		name, version, data, err := l.reg.Encode(p)
		if err != nil {
			l.t.Fatalf("logtest: encode %T: %v", p, err)
		}
		recs[i] = es.Record{
			ID: uuid.New(), Stream: stream, Type: name, SchemaVersion: version,
			AggregateID: id, Data: data, CorrelationID: id,
		}
	}
	return l.AppendRecords(recs...)
}

// AppendRecords appends records as they are, but for their revision,
// position and time, which the log assigns, and returns the position of
// the last one. It lets a test store what Append cannot encode.
func (l *Log) AppendRecords(recs ...es.Record) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		r.Position = uint64(len(l.recs)) + 1
		rev, ok := l.revs[r.Stream]
		if ok {
			rev++
		}
		l.revs[r.Stream] = rev
		r.Revision = rev
		r.Time = Epoch.Add(time.Duration(r.Position) * time.Millisecond)
		l.recs = append(l.recs, r)
	}
	close(l.wake)
	l.wake = make(chan struct{})
	return uint64(len(l.recs))
}

// Records returns a copy of every record.
func (l *Log) Records() []es.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]es.Record(nil), l.recs...)
}

// ReadAllCalls is how many times ReadAll was called.
func (l *Log) ReadAllCalls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reads
}

// HeadPosition is the position of the last record, 0 if none.
func (l *Log) HeadPosition(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.recs)), nil
}

// ReadAll returns up to limit records after position from.
func (l *Log) ReadAll(ctx context.Context, from uint64, limit int) ([]es.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads++
	if from >= uint64(len(l.recs)) {
		return nil, nil
	}
	end := min(uint64(len(l.recs)), from+uint64(limit))
	return append([]es.Record(nil), l.recs[from:end]...), nil
}

// SubscribeAll delivers the records after from that pass filter, in
// batches, until ctx is done or handle fails.
func (l *Log) SubscribeAll(ctx context.Context, from uint64, filter es.Filter, handle func([]es.Record) error) error {
	size := l.BatchSize
	if size <= 0 {
		size = 512
	}
	pos := from
	var prev *es.Record
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		l.mu.Lock()
		var batch []es.Record
		for pos < uint64(len(l.recs)) && len(batch) < size {
			r := l.recs[pos]
			pos++
			if filter.Match(&r) {
				batch = append(batch, r)
			}
		}
		wake := l.wake
		l.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-wake:
			}
			continue
		}
		if l.Redeliver && prev != nil {
			batch = append([]es.Record{*prev}, batch...)
		}
		if err := handle(batch); err != nil {
			return err
		}
		last := batch[len(batch)-1]
		prev = &last
	}
}
