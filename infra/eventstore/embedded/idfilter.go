package embedded

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"

	"github.com/google/uuid"
)

// idFilter is an in-memory Bloom filter of every event id in the store,
// in front of the event-id index.
//
// Every append must prove that its ids are not stored elsewhere, and
// nearly every id is new. Pebble answers "not stored" cheaply from the
// Bloom filters of its sstables, but not from its memtables, where a miss
// is a full skiplist seek in each of them; at tens of thousands of appends
// a second those seeks were most of the committer's time. With this
// filter a new id costs a hash and one cache line, and only the rare
// "maybe" (about 1%, and the real retries) goes to Pebble.
//
// The filter is rebuilt from the index when the store opens, in the
// background: until it is complete, lookups go to Pebble. It takes about
// 1.25 bytes per event stored at open, and grows by adding segments twice
// the size of the last, each with more bits per id than the one before,
// so that the sum of their false-positive rates stays around 2% however
// the store grows.
//
// The segments slice is owned by the committer. The first segment is
// shared with the builder; bits are set with atomic ORs so that the two
// can add concurrently.
type idFilter struct {
	seed     maphash.Seed
	segments []*bloomSegment
	// ready is set once the builder has added every id stored at open.
	ready atomic.Bool
}

const (
	// bloomBitsPerID is the density of the first segment; each later one
	// adds bloomBitsStep, up to bloomMaxBitsPerID.
	bloomBitsPerID    = 10
	bloomBitsStep     = 2
	bloomMaxBitsPerID = 20
	bloomProbes       = 7 // optimal for 10 bits per id, good beyond
	// bloomMinCapacity keeps a small store from growing segment by tiny
	// segment.
	bloomMinCapacity = 1 << 20
)

func newIDFilter(stored uint64) *idFilter {
	f := &idFilter{seed: maphash.MakeSeed()}
	f.segments = []*bloomSegment{newBloomSegment(max(2*stored, bloomMinCapacity), bloomBitsPerID)}
	return f
}

// add records id. Only the committer calls it.
func (f *idFilter) add(id uuid.UUID) {
	last := f.segments[len(f.segments)-1]
	if last.count.Load() >= last.capacity {
		last = newBloomSegment(2*last.capacity, min(last.bitsPerID+bloomBitsStep, bloomMaxBitsPerID))
		f.segments = append(f.segments, last)
	}
	last.add(maphash.Comparable(f.seed, id))
}

// mayContain reports whether id may be stored; false is certain once the
// filter is ready. Only the committer calls it.
func (f *idFilter) mayContain(id uuid.UUID) bool {
	if !f.ready.Load() {
		return true
	}
	h := maphash.Comparable(f.seed, id)
	for _, s := range f.segments {
		if s.mayContain(h) {
			return true
		}
	}
	return false
}

// bloomSegment is a blocked Bloom filter: all probes of one id fall in one
// 64-byte block, so a lookup touches one cache line.
type bloomSegment struct {
	words     []atomic.Uint64 // blocks of 8 words
	blocks    uint64
	capacity  uint64
	bitsPerID uint64
	count     atomic.Uint64
}

func newBloomSegment(capacity, bitsPerID uint64) *bloomSegment {
	blocks := (capacity*bitsPerID + 511) / 512
	return &bloomSegment{words: make([]atomic.Uint64, blocks*8), blocks: blocks, capacity: capacity, bitsPerID: bitsPerID}
}

func (s *bloomSegment) add(h uint64) {
	block, probes := s.locate(h)
	for range bloomProbes {
		bit := probes & 511
		s.words[block+bit/64].Or(1 << (bit % 64))
		probes >>= 9
	}
	s.count.Add(1)
}

func (s *bloomSegment) mayContain(h uint64) bool {
	block, probes := s.locate(h)
	for range bloomProbes {
		bit := probes & 511
		if s.words[block+bit/64].Load()&(1<<(bit%64)) == 0 {
			return false
		}
		probes >>= 9
	}
	return true
}

// locate picks the block from the hash (by multiply-shift, which needs no
// power-of-two size) and derives the probes within it from a remix of the
// hash, 9 bits each.
func (s *bloomSegment) locate(h uint64) (block uint64, probes uint64) {
	hi, _ := bits.Mul64(h, s.blocks)
	// splitmix64's finalizer decorrelates the probes from the block.
	z := h + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return hi * 8, z ^ (z >> 31)
}
