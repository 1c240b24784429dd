package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ticketd/ticketing/domain/es"
)

// snapshotFormat is the first byte of a stored snapshot, followed by the
// big-endian version and the data.
const snapshotFormat byte = 1

// SaveSnapshot stores data as the snapshot of stream's aggregate at
// version, replacing any earlier one.
//
// The write is not synced: a snapshot is a cache of what the stream
// already holds durably, so losing the last one in a crash costs a longer
// load and nothing else, and skipping the fsync keeps snapshots off the
// appends' critical path. (The next group commit syncs it anyway.)
func (s *Store) SaveSnapshot(ctx context.Context, stream string, version int64, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: save snapshot of %s: %w", stream, err)
	}
	v := make([]byte, 9+len(data))
	v[0] = snapshotFormat
	binary.BigEndian.PutUint64(v[1:], uint64(version))
	copy(v[9:], data)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("embedded: save snapshot of %s: %w", stream, es.ErrClosed)
	}
	if err := s.db.Set(snapshotKey(stream), v, pebble.NoSync); err != nil {
		return fmt.Errorf("embedded: save snapshot of %s: %w", stream, err)
	}
	return nil
}

// LoadSnapshot returns the latest snapshot saved for stream, ok=false if
// there is none.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (version int64, data []byte, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, false, fmt.Errorf("embedded: load snapshot of %s: %w", stream, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, nil, false, fmt.Errorf("embedded: load snapshot of %s: %w", stream, es.ErrClosed)
	}
	v, closer, err := s.db.Get(snapshotKey(stream))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("embedded: load snapshot of %s: %w", stream, err)
	}
	defer closer.Close()
	if len(v) < 9 || v[0] != snapshotFormat {
		return 0, nil, false, fmt.Errorf("embedded: load snapshot of %s: %w: snapshot entry", stream, errCorrupt)
	}
	return int64(binary.BigEndian.Uint64(v[1:])), append([]byte{}, v[9:]...), true, nil
}
