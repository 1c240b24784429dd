package redis

import (
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// The indexes are sorted sets whose members all have score 0, so that
// Redis orders them by their bytes (ZRANGE ... BYLEX). A score, a float64,
// cannot hold a time to the nanosecond; bytes can, and they order a time
// and an id exactly as readmodels.EventKey.Compare does:
//
//	time  12 bytes: Unix seconds as big-endian uint64 with the sign bit
//	      flipped (so that dates before 1970, and the zero time, sort
//	      first), then nanoseconds as big-endian uint32
//	id    36 bytes: the canonical lower-case UUID string, whose byte order
//	      is the order of the UUID's 16 bytes
const (
	timeLen = 12
	idLen   = 36
	keyLen  = timeLen + idLen
)

// maxIDString is the greatest id string; uuid.Nil's string is the least.
const maxIDString = "ffffffff-ffff-ffff-ffff-ffffffffffff"

func appendTime(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// sortKey is the 48-byte key of (t, id).
func sortKey(t time.Time, id string) []byte {
	b := make([]byte, 0, keyLen+64)
	return append(appendTime(b, t), id...)
}

// prefixEnd is the least string greater than every string that starts
// with p; p never ends in 0xff here (it ends in an id's character).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// listingMember is an event's member of the listing: its key, then the
// lower-cased name and venue that a search looks into, so that a search
// reads nothing but the index to find its page. The name is preceded by
// its length (4 bytes, big-endian) so that no byte of it can be taken for
// a separator.
func listingMember(startsAt time.Time, id uuid.UUID, lowerName, lowerVenue string) string {
	b := sortKey(startsAt, id.String())
	b = binary.BigEndian.AppendUint32(b, uint32(len(lowerName)))
	b = append(b, lowerName...)
	return string(append(b, lowerVenue...))
}

// userMember is a booking's member of the index by user: the user's id,
// then the booking's key.
func userMember(user uuid.UUID, createdAt time.Time, id uuid.UUID) string {
	b := make([]byte, 0, idLen+keyLen)
	b = append(b, user.String()...)
	b = appendTime(b, createdAt)
	return string(append(b, id.String()...))
}

// dueMember is a hold's member of the index by deadline.
func dueMember(expiresAt time.Time, id uuid.UUID) string {
	return string(sortKey(expiresAt, id.String()))
}
