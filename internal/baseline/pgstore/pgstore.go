// Package pgstore is a plain PostgreSQL event table: the baseline that the
// embedded event store's benchmarks are measured against, in the same run.
//
// It is what a team would write first on PostgreSQL: one table, one row per
// event, UNIQUE (stream_id, version) as the optimistic-concurrency guard,
// one statement per append, and a commit that is durable before it returns
// (synchronous_commit = on, which scripts/benchenv.sh sets). It implements
// the part of the store port that the append benchmarks exercise (appending
// with an expected revision, reading a stream back) and no more: no
// idempotent re-append by event id, no subscriptions, and positions from an
// identity column, which are unique but not in commit order. Each of those
// would cost the baseline more work, so the comparison favours it.
//
// It is for benchmarks only: nothing the server or the CLI builds may
// import it (a test in this package checks that).
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketd/ticketing/domain/es"
)

// Schema creates the event table. Payloads are bytea, opaque as the
// embedded store keeps them, so PostgreSQL does not parse JSON the other
// store never parses.
const Schema = `
CREATE TABLE IF NOT EXISTS events (
	position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	stream_id      text        NOT NULL,
	version        bigint      NOT NULL,
	id             uuid        NOT NULL,
	type           text        NOT NULL,
	schema_version int         NOT NULL,
	aggregate_id   uuid        NOT NULL,
	recorded_at    timestamptz NOT NULL,
	correlation_id uuid        NOT NULL,
	causation_id   uuid        NOT NULL,
	data           bytea       NOT NULL,
	UNIQUE (stream_id, version)
)`

// appendSQL inserts a batch at versions $2, $2+1, ... only if the stream's
// head is still $3 (-1: no stream). Two appends that both saw the same head
// both pass the check under READ COMMITTED; the unique constraint then
// refuses the second. Either way the loser inserts nothing.
const appendSQL = `
INSERT INTO events (stream_id, version, id, type, schema_version, aggregate_id, recorded_at, correlation_id, causation_id, data)
SELECT $1, $2 + r.ord - 1, r.id, r.type, r.schema_version, r.aggregate_id, r.recorded_at, r.correlation_id, r.causation_id, r.data
FROM unnest($4::uuid[], $5::text[], $6::int[], $7::uuid[], $8::timestamptz[], $9::uuid[], $10::uuid[], $11::bytea[])
	WITH ORDINALITY AS r(id, type, schema_version, aggregate_id, recorded_at, correlation_id, causation_id, data, ord)
WHERE (SELECT coalesce(max(version), -1) FROM events WHERE stream_id = $1) = $3
RETURNING position`

const headSQL = `SELECT coalesce(max(version), -1) FROM events WHERE stream_id = $1`

// uniqueViolation is PostgreSQL's SQLSTATE for a unique constraint.
const uniqueViolation = "23505"

// Store appends to and reads from the events table.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to url (a postgres:// URL) with a pool of at most maxConns
// connections and creates the table if it is missing.
func Open(ctx context.Context, url string, maxConns int) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = int32(maxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: connect: %w", err)
	}
	if _, err := pool.Exec(ctx, Schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: create table: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Warm opens n connections and prepares the append on each, so that a
// benchmark does not time connection set-up.
func (s *Store) Warm(ctx context.Context, n int) error {
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := s.pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("pgstore: warm: %w", err)
		}
		conns = append(conns, c)
		// Named by their text, the statements are used by Query.
		for _, sql := range []string{appendSQL, headSQL} {
			if _, err := c.Conn().Prepare(ctx, sql, sql); err != nil {
				return fmt.Errorf("pgstore: warm: %w", err)
			}
		}
	}
	return nil
}

// Reset empties the table, so that every benchmark run starts from the
// same state as a fresh embedded store.
func (s *Store) Reset(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `TRUNCATE events RESTART IDENTITY`); err != nil {
		return fmt.Errorf("pgstore: reset: %w", err)
	}
	return nil
}

// Count returns the number of stored events.
func (s *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("pgstore: count: %w", err)
	}
	return n, nil
}

// Append stores records as the next events of stream if the stream is
// where expected says, in one statement committed durably. A mismatch, or
// a race lost to another append, is an *es.ConflictError (matching
// es.ErrConflict) that says where the stream is now.
func (s *Store) Append(ctx context.Context, stream string, expected es.ExpectedRevision, records []es.Record) (es.AppendResult, error) {
	if len(records) == 0 {
		return es.AppendResult{}, errors.New("pgstore: append of no records")
	}
	head, err := s.expectedHead(ctx, stream, expected)
	if err != nil {
		return es.AppendResult{}, err
	}
	n := len(records)
	// [16]byte is pgx's native uuid; uuid.UUID would go through its
	// string form.
	ids, aggs, corrs, causes := make([][16]byte, n), make([][16]byte, n), make([][16]byte, n), make([][16]byte, n)
	types, versions := make([]string, n), make([]int32, n)
	times, data := make([]time.Time, n), make([][]byte, n)
	for i := range records {
		r := &records[i]
		ids[i], aggs[i], corrs[i], causes[i] = r.ID, r.AggregateID, r.CorrelationID, r.CausationID
		types[i], versions[i], times[i], data[i] = r.Type, int32(r.SchemaVersion), r.Time, r.Data
	}
	rows, err := s.pool.Query(ctx, appendSQL, stream, head+1, head, ids, types, versions, aggs, times, corrs, causes, data)
	if err != nil {
		return es.AppendResult{}, fmt.Errorf("pgstore: append %s: %w", stream, err)
	}
	positions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == uniqueViolation:
		return es.AppendResult{}, s.conflict(ctx, stream, expected)
	case err != nil:
		return es.AppendResult{}, fmt.Errorf("pgstore: append %s: %w", stream, err)
	case len(positions) == 0:
		return es.AppendResult{}, s.conflict(ctx, stream, expected)
	}
	return es.AppendResult{NextRevision: uint64(head + int64(n)), Position: uint64(positions[len(positions)-1])}, nil
}

// expectedHead is the stream head (-1: no stream) the append must find.
// Exact and NoStream name it; Any and StreamExists read it first, and the
// insert still checks it did not move.
func (s *Store) expectedHead(ctx context.Context, stream string, expected es.ExpectedRevision) (int64, error) {
	if rev, ok := expected.Revision(); ok {
		return int64(rev), nil
	}
	if expected.IsNoStream() {
		return -1, nil
	}
	head, err := s.head(ctx, stream)
	if err != nil {
		return 0, err
	}
	if expected.IsStreamExists() && head < 0 {
		return 0, &es.ConflictError{Stream: stream, Expected: expected}
	}
	return head, nil
}

func (s *Store) head(ctx context.Context, stream string) (int64, error) {
	var head int64
	if err := s.pool.QueryRow(ctx, headSQL, stream).Scan(&head); err != nil {
		return 0, fmt.Errorf("pgstore: head of %s: %w", stream, err)
	}
	return head, nil
}

func (s *Store) conflict(ctx context.Context, stream string, expected es.ExpectedRevision) error {
	head, err := s.head(ctx, stream)
	if err != nil {
		return err
	}
	return &es.ConflictError{Stream: stream, Expected: expected, Actual: uint64(max(head, 0)), Exists: head >= 0}
}

// ReadStream returns the events of stream from opts.From, forward or
// backward, at most opts.Limit of them (0: all). A stream with no events
// is es.ErrStreamNotFound.
func (s *Store) ReadStream(ctx context.Context, stream string, opts es.ReadOptions) ([]es.Record, error) {
	const cols = `SELECT position, version, id, type, schema_version, aggregate_id, recorded_at, correlation_id, causation_id, data FROM events `
	q, args := cols+`WHERE stream_id = $1 AND version >= $2 ORDER BY version`, []any{stream, int64(opts.From)}
	switch {
	case opts.Direction == es.Backward && opts.FromEnd:
		q, args = cols+`WHERE stream_id = $1 ORDER BY version DESC`, []any{stream}
	case opts.Direction == es.Backward:
		q = cols + `WHERE stream_id = $1 AND version <= $2 ORDER BY version DESC`
	}
	if opts.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", opts.Limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: read %s: %w", stream, err)
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (es.Record, error) {
		r := es.Record{Stream: stream}
		var pos, version int64
		var schema int32
		var id, agg, corr, cause [16]byte
		err := row.Scan(&pos, &version, &id, &r.Type, &schema, &agg, &r.Time, &corr, &cause, &r.Data)
		r.Position, r.Revision, r.SchemaVersion = uint64(pos), uint64(version), int(schema)
		r.ID, r.AggregateID, r.CorrelationID, r.CausationID = id, agg, corr, cause
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: read %s: %w", stream, err)
	}
	if len(recs) == 0 {
		head, err := s.head(ctx, stream)
		if err != nil {
			return nil, err
		}
		if head < 0 {
			return nil, es.ErrStreamNotFound
		}
	}
	return recs, nil
}
