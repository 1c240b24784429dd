package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
)

// SaveSnapshot stores data as the snapshot of stream's aggregate at
// version. Snapshots are events in the stream "snapshot-<stream>", whose
// metadata sets $maxCount to 1: reads see only the latest, and KurrentDB's
// scavenge removes the others. The data is stored as given (the event is
// marked JSON when it is JSON).
func (s *Store) SaveSnapshot(ctx context.Context, stream string, version int64, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kurrentdb: save snapshot of %s: %w", stream, err)
	}
	ev, err := snapshotEvent(version, data)
	if err != nil {
		return fmt.Errorf("kurrentdb: save snapshot of %s: %w", stream, err)
	}
	o, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("kurrentdb: save snapshot of %s: %w", stream, err)
	}
	defer o.done()
	snap := snapshotStream(stream)
	if err := s.limitSnapshots(o, snap); err != nil {
		return s.fail(ctx, o, "save snapshot of "+stream+": set $maxCount of "+snap, err)
	}
	if _, err := o.client.AppendToStream(o.ctx, snap, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, ev); err != nil {
		return s.fail(ctx, o, "save snapshot of "+stream, err)
	}
	return nil
}

// limitSnapshots makes sure, once per snapshot stream and process, that
// the stream's metadata keeps one event. It reads the metadata before
// writing it, so that restarts add no metadata events and other
// properties (an ACL, say) are kept.
func (s *Store) limitSnapshots(o op, snap string) error {
	if _, done := s.snapshotMeta.Load(snap); done {
		return nil
	}
	meta := "$$" + snap
	var raw []byte
	rs, err := o.client.ReadStream(o.ctx, meta, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return err
	}
	re, err := rs.Recv()
	rs.Close()
	switch {
	case err == nil:
		raw = re.OriginalEvent().Data
	case errors.Is(err, io.EOF), streamError(err) != nil:
		// No metadata yet.
	default:
		return err
	}
	if updated, changed := withMaxCount(raw); changed {
		ev := esdb.EventData{EventID: uuid.New(), EventType: "$metadata", ContentType: esdb.ContentTypeJson, Data: updated}
		if _, err := o.client.AppendToStream(o.ctx, meta, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, ev); err != nil {
			return err
		}
	}
	s.snapshotMeta.Store(snap, struct{}{})
	return nil
}

// LoadSnapshot returns the latest snapshot saved for stream, ok=false if
// there is none.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (version int64, data []byte, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, false, fmt.Errorf("kurrentdb: load snapshot of %s: %w", stream, err)
	}
	o, err := s.begin(ctx)
	if err != nil {
		return 0, nil, false, fmt.Errorf("kurrentdb: load snapshot of %s: %w", stream, err)
	}
	defer o.done()
	rs, err := o.client.ReadStream(o.ctx, snapshotStream(stream), esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return 0, nil, false, s.fail(ctx, o, "load snapshot of "+stream, err)
	}
	defer rs.Close()
	re, err := rs.Recv()
	switch {
	case errors.Is(err, io.EOF):
		return 0, nil, false, nil
	case err != nil:
		if streamError(err) != nil {
			return 0, nil, false, nil
		}
		return 0, nil, false, s.fail(ctx, o, "load snapshot of "+stream, err)
	}
	version, data, err = decodeSnapshot(re.OriginalEvent())
	if err != nil {
		return 0, nil, false, fmt.Errorf("kurrentdb: load snapshot of %s: %w", stream, err)
	}
	return version, data, true, nil
}
