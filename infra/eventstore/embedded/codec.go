package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/ticketd/ticketing/domain/es"
)

// Key layout. Every key starts with a one-byte keyspace tag so that the
// keyspaces never interleave and each can be scanned with simple bounds.
//
//	'l' pos(8, big-endian)                     → record (see encodeBody)
//	's' uvarint(len) stream rev(8, big-endian)  → pos(8)
//	'i' event id(16)                           → pos(8)
//	'p' stream                                 → version(8) snapshot data
//	'm' name                                   → store metadata
//
// The log is the source of truth; the stream and id keys are indexes that
// are written in the same batch as the record they point to, so they can
// never disagree with it. Big-endian integers make Pebble's bytewise order
// the numeric order, which is what lets a stream be read forward or
// backward and the log be tailed with plain iterators. The stream name is
// length-prefixed so that no stream's keys are a prefix of another's
// ("booking-1" and "booking-12" stay apart).
const (
	tagLog      = 'l'
	tagStream   = 's'
	tagID       = 'i'
	tagSnapshot = 'p'
	tagMeta     = 'm'
)

// recordFormat is the first byte of every stored record. Decoding refuses
// any other value, so a future format change is detected instead of being
// misread; a new format gets a new number and both are decoded.
const recordFormat byte = 1

// recordHeaderLen is the format byte plus the big-endian revision that the
// committer writes in front of the body encoded by the appender.
const recordHeaderLen = 1 + 8

// formatKey names the metadata entry that marks a directory as a ticketd
// event store and records the version of the key layout.
var formatKey = []byte{tagMeta, 'f', 'o', 'r', 'm', 'a', 't'}

// layoutVersion is the value stored under formatKey.
const layoutVersion byte = 1

func logKey(pos uint64) []byte {
	k := make([]byte, 9)
	putLogKey(k, pos)
	return k
}

func putLogKey(dst []byte, pos uint64) {
	dst[0] = tagLog
	binary.BigEndian.PutUint64(dst[1:], pos)
}

// positionOf decodes a log key or an index value.
func positionOf(b []byte) uint64 { return binary.BigEndian.Uint64(b[len(b)-8:]) }

// streamPrefix returns the prefix shared by every index key of stream.
func streamPrefix(stream string) []byte {
	p := make([]byte, 0, 1+binary.MaxVarintLen64+len(stream)+8)
	p = append(p, tagStream)
	p = binary.AppendUvarint(p, uint64(len(stream)))
	return append(p, stream...)
}

// streamKey returns prefix (from streamPrefix) followed by rev.
func streamKey(prefix []byte, rev uint64) []byte {
	return binary.BigEndian.AppendUint64(slices.Clip(prefix), rev)
}

// streamUpper is a key greater than every index key of the stream with
// this prefix and smaller than any key of another stream that sorts after
// it: index keys are exactly len(prefix)+8 bytes long.
func streamUpper(prefix []byte) []byte {
	k := slices.Clip(prefix)
	for range 9 {
		k = append(k, 0xff)
	}
	return k
}

func snapshotKey(stream string) []byte {
	k := make([]byte, 0, 1+len(stream))
	k = append(k, tagSnapshot)
	return append(k, stream...)
}

// encodeBody appends the encoding of r, stored in stream, to dst. The body
// is everything but the revision, which only the committer knows; it is
// encoded by the appending goroutine so that the single committer does as
// little work per record as possible.
//
//	id(16) aggregate id(16) correlation id(16) causation id(16)
//	varint schema version, varint unix seconds, uvarint nanoseconds
//	uvarint len, stream; uvarint len, type
//	uvarint count, then count × (uvarint len, key; uvarint len, value)
//	uvarint len, data
//
// Meta entries are sorted by key so that equal records encode equally.
func encodeBody(dst []byte, stream string, r *es.Record) []byte {
	dst = append(dst, r.ID[:]...)
	dst = append(dst, r.AggregateID[:]...)
	dst = append(dst, r.CorrelationID[:]...)
	dst = append(dst, r.CausationID[:]...)
	dst = binary.AppendVarint(dst, int64(r.SchemaVersion))
	dst = binary.AppendVarint(dst, r.Time.Unix())
	dst = binary.AppendUvarint(dst, uint64(r.Time.Nanosecond()))
	dst = appendString(dst, stream)
	dst = appendString(dst, r.Type)
	dst = binary.AppendUvarint(dst, uint64(len(r.Meta)))
	switch len(r.Meta) {
	case 0:
	case 1:
		for k, v := range r.Meta {
			dst = appendString(dst, k)
			dst = appendString(dst, v)
		}
	default:
		keys := make([]string, 0, len(r.Meta))
		for k := range r.Meta {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			dst = appendString(dst, k)
			dst = appendString(dst, r.Meta[k])
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Data)))
	return append(dst, r.Data...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

var errCorrupt = errors.New("embedded: corrupt record")

// decodeRecord decodes the value stored under the log key of pos. The
// result shares no memory with value, which Pebble reuses.
func decodeRecord(pos uint64, value []byte) (es.Record, error) {
	if len(value) < recordHeaderLen {
		return es.Record{}, fmt.Errorf("%w at position %d: %d bytes", errCorrupt, pos, len(value))
	}
	if value[0] != recordFormat {
		return es.Record{}, fmt.Errorf("%w at position %d: unknown format %d", errCorrupt, pos, value[0])
	}
	d := decoder{b: value[recordHeaderLen:]}
	r := es.Record{
		Revision: binary.BigEndian.Uint64(value[1:]),
		Position: pos,
	}
	r.ID = d.uuid()
	r.AggregateID = d.uuid()
	r.CorrelationID = d.uuid()
	r.CausationID = d.uuid()
	sv := d.varint()
	if sv < math.MinInt || sv > math.MaxInt {
		d.fail()
	}
	r.SchemaVersion = int(sv)
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= uint64(time.Second) {
		d.fail()
	}
	r.Time = time.Unix(sec, int64(nsec)).UTC()
	r.Stream = string(d.bytes())
	r.Type = string(d.bytes())
	if n := d.uvarint(); n > 0 {
		if n > uint64(len(d.b)) { // each entry takes at least two bytes
			d.fail()
		} else {
			r.Meta = make(map[string]string, n)
			for range n {
				k := string(d.bytes())
				r.Meta[k] = string(d.bytes())
			}
		}
	}
	if data := d.bytes(); len(data) > 0 {
		r.Data = slices.Clone(data)
	}
	if d.err || len(d.b) != 0 {
		return es.Record{}, fmt.Errorf("%w at position %d", errCorrupt, pos)
	}
	return r, nil
}

// peekStreamRevision returns the stream and revision of an encoded record
// without decoding the rest; the idempotency check needs only these.
func peekStreamRevision(value []byte) (stream string, rev uint64, ok bool) {
	if len(value) < recordHeaderLen+64 || value[0] != recordFormat {
		return "", 0, false
	}
	d := decoder{b: value[recordHeaderLen+64:]}
	d.varint()
	d.varint()
	d.uvarint()
	s := d.bytes()
	if d.err {
		return "", 0, false
	}
	return string(s), binary.BigEndian.Uint64(value[1:]), true
}

// decoder reads the body encoding; the first malformed field sets err and
// makes every later read return zero values, so callers check once.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) fail() {
	d.err = true
	d.b = nil
}

func (d *decoder) uuid() (u uuid.UUID) {
	if len(d.b) < len(u) {
		d.fail()
		return u
	}
	copy(u[:], d.b)
	d.b = d.b[len(u):]
	return u
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}
