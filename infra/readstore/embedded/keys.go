package embedded

import (
	"bytes"
	"cmp"
	"time"

	"github.com/google/uuid"
)

// timeKey orders the indexes by a time, then id. The time is kept as
// seconds and nanoseconds, which cover every date, where Unix nanoseconds
// overflow after 2262.
type timeKey struct {
	sec  int64
	nsec int32
	id   uuid.UUID
}

func timeKeyOf(t time.Time, id uuid.UUID) timeKey {
	return timeKey{sec: t.Unix(), nsec: int32(t.Nanosecond()), id: id}
}

func compareTimeKeys(a, b timeKey) int {
	if c := cmp.Compare(a.sec, b.sec); c != 0 {
		return c
	}
	if c := cmp.Compare(a.nsec, b.nsec); c != 0 {
		return c
	}
	return bytes.Compare(a.id[:], b.id[:])
}
