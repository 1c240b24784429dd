package readmodels

import (
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ticketd/ticketing/domain/fault"
)

// Page sizes of the listings.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Listing cursors are keyset cursors: the sort key of the last item of the
// previous page, so that a page never repeats or skips an item when items
// are added or removed between two requests (an offset would). They are
// opaque to clients: base64url of a kind byte, the time (Unix seconds and
// nanoseconds, which unlike Unix nanoseconds do not overflow for any date
// an admin may type) and the id. The kind byte keeps a booking cursor from being
// read as an event cursor.
const (
	cursorEvents   byte = 'e'
	cursorBookings byte = 'b'
	cursorLen           = 1 + 8 + 4 + 16
)

// ListRequest is a page request as the client sent it; every field may be
// empty.
type ListRequest struct {
	// Limit is the page size, "" for DefaultLimit, at most MaxLimit.
	Limit string
	// Cursor is the next_cursor of the previous page, "" for the first.
	Cursor string
}

func encodeCursor(kind byte, t time.Time, id uuid.UUID) string {
	var b [cursorLen]byte
	b[0] = kind
	binary.BigEndian.PutUint64(b[1:9], uint64(t.Unix()))
	binary.BigEndian.PutUint32(b[9:13], uint32(t.Nanosecond()))
	copy(b[13:], id[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeCursor(kind byte, s string) (time.Time, uuid.UUID, bool) {
	var b [cursorLen]byte
	if base64.RawURLEncoding.DecodedLen(len(s)) != cursorLen {
		return time.Time{}, uuid.Nil, false
	}
	n, err := base64.RawURLEncoding.Decode(b[:], []byte(s))
	if err != nil || n != cursorLen || b[0] != kind {
		return time.Time{}, uuid.Nil, false
	}
	nsec := binary.BigEndian.Uint32(b[9:13])
	if nsec >= 1e9 {
		return time.Time{}, uuid.Nil, false
	}
	t := time.Unix(int64(binary.BigEndian.Uint64(b[1:9])), int64(nsec)).UTC()
	id, _ := uuid.FromBytes(b[13:])
	return t, id, true
}

// parseLimit checks a page size, recording a field error in in.
func parseLimit(in *fault.Input, s string) int {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultLimit
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxLimit {
		in.Add("limit", "must be an integer between 1 and "+strconv.Itoa(MaxLimit))
		return 0
	}
	return n
}

// parseTime reads a range bound: an RFC 3339 timestamp, or a date
// (YYYY-MM-DD, UTC). A date as the end of a range means the end of that
// day, so that from=2030-06-01&to=2030-06-01 lists that day's events.
func parseTime(in *fault.Input, field, s string, end bool) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC()
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		if end {
			t = t.AddDate(0, 0, 1)
		}
		return t
	}
	in.Add(field, "must be an RFC 3339 timestamp such as 2026-05-01T19:00:00Z, or a date such as 2026-05-01")
	return time.Time{}
}
