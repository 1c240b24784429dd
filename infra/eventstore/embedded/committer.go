package embedded

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
	"github.com/ticketd/ticketing/domain/es"
)

// committer is the single writer of the store. Being the only goroutine
// that assigns positions and writes is what makes the global order
// gapless: positions are handed out in the order batches are written, and
// readers see a record only once the syncer has synced it and everything
// before it.
//
// A group of appends goes through two goroutines. The committer checks
// each append against the stream heads, assigns revisions and positions
// and writes the whole group as one Pebble batch without waiting for the
// WAL sync (the batch is visible to the committer's next reads at once).
// The syncer then syncs the WAL, with one fsync for every group written
// since its previous one, publishes the new durable head and acknowledges
// the appends, in order. So the committer prepares the next group while
// the previous one syncs, and an fsync is shared by however many appends
// arrived while the previous fsync ran.
type committer struct {
	s  *Store
	db *pebble.DB

	// Owned by the committer goroutine.

	// head is the last position written (not necessarily synced).
	head uint64
	// heads caches stream heads (including "no stream"), so that checking
	// an expected revision rarely touches Pebble. It may forget any entry
	// between groups: Pebble has the truth.
	heads    map[string]streamHead
	maxHeads int
	// The group being built: heads and ids it has written, not yet
	// in Pebble. A later append of the same group checks against these,
	// so two appends to one stream in one group see each other.
	pending    map[string]streamHead
	pendingIDs map[uuid.UUID]idLoc
	// iter reads Pebble during one group; it is created on first use and
	// closed before the group is written.
	iter *pebble.Iterator
	key  [17]byte

	// toSync carries written groups to the syncer, in order. Its capacity
	// bounds how far the committer runs ahead of the disk.
	toSync chan written

	// Owned by the syncer goroutine: the error of a failed sync, after
	// which nothing more is acknowledged.
	syncErr error

	// failed is set when a write or a sync fails. Whether a failed write
	// reached the disk is unknowable, so the in-memory state can no
	// longer be trusted and every later append fails until the store is
	// reopened (which recovers from what Pebble has).
	failMu sync.Mutex
	failed error
}

// streamHead is what the committer knows of a stream's end.
type streamHead struct {
	rev    uint64 // revision of the last record
	pos    uint64 // position of the last record
	exists bool
}

// idLoc is where an event id is stored.
type idLoc struct {
	stream string
	rev    uint64
	pos    uint64
}

// written is a group on its way from the committer to the syncer.
type written struct {
	group   []*appendReq
	head    uint64 // log head after the group
	appends int    // appends of the group that stored records
}

// maxInFlight bounds the groups written but not yet synced.
const maxInFlight = 64

func newCommitter(s *Store, head uint64) *committer {
	return &committer{
		s:          s,
		db:         s.db,
		head:       head,
		heads:      make(map[string]streamHead),
		maxHeads:   s.opts.StreamCacheSize,
		pending:    make(map[string]streamHead),
		pendingIDs: make(map[uuid.UUID]idLoc),
		toSync:     make(chan written, maxInFlight),
	}
}

func (c *committer) failure() error {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	return c.failed
}

func (c *committer) setFailure(err error) error {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	if c.failed == nil {
		c.failed = fmt.Errorf("write failed, reopen the store: %w", err)
	}
	return c.failed
}

// run writes groups until Close closes the queue, then lets the syncer
// finish.
func (c *committer) run() {
	go c.syncLoop()
	defer close(c.toSync)
	for first := range c.s.reqs {
		group := c.gather(first)
		w := written{group: group, head: c.head}
		select {
		case <-c.s.closing:
			c.fail(group, es.ErrClosed)
		default:
			if err := c.failure(); err != nil {
				c.fail(group, err)
			} else {
				w = c.commit(group)
			}
		}
		c.toSync <- w
	}
}

// gather returns first plus whatever else is already queued, up to the
// group bounds. It never waits: the appends that arrive while this group
// is written form the next one, which is what sizes groups to the load.
func (c *committer) gather(first *appendReq) []*appendReq {
	group := make([]*appendReq, 1, 16)
	group[0] = first
	size := len(first.bodies)
	for len(group) < c.s.opts.MaxGroupSize && size < maxGroupBytes {
		select {
		case r, ok := <-c.s.reqs:
			if !ok {
				return group
			}
			group = append(group, r)
			size += len(r.bodies)
		default:
			return group
		}
	}
	return group
}

func (c *committer) fail(group []*appendReq, err error) {
	for _, r := range group {
		r.res, r.err = es.AppendResult{}, fmt.Errorf("embedded: append to %s: %w", r.stream, err)
	}
}

// commit applies each append of group in order and writes all of them in
// one batch, unsynced.
func (c *committer) commit(group []*appendReq) written {
	// Size the batch up front: the bodies plus, per record, the three
	// keys, the record header, two index values and Pebble's framing.
	size := 0
	for _, r := range group {
		size += len(r.bodies) + len(r.ids)*(64+len(r.prefix))
	}
	b := c.db.NewBatchWithSize(size)
	defer b.Close()
	defer clear(c.pending)
	defer clear(c.pendingIDs)

	pos := c.head
	appends := 0
	for _, r := range group {
		r.res, r.err = c.apply(r, &pos)
		if r.err == nil && len(r.ids) > 0 {
			appends++
		}
	}
	var batchErr error
	if c.iter != nil {
		batchErr = c.iter.Close()
		c.iter = nil
	}
	if batchErr == nil && pos > c.head {
		batchErr = write(b, group)
	}
	if batchErr == nil && pos > c.head {
		// The syncer makes it durable; see syncLoop.
		batchErr = b.Commit(pebble.NoSync)
	}
	if batchErr != nil {
		// Every outcome of the group was decided against state that
		// was not written, so none of them stands.
		c.fail(group, c.setFailure(batchErr))
		return written{group: group, head: c.head}
	}
	for stream, h := range c.pending {
		c.heads[stream] = h
	}
	c.evict()
	c.head = pos
	return written{group: group, head: pos, appends: appends}
}

// syncLoop syncs, publishes and acknowledges the groups the committer
// wrote, in order, until the committer closes toSync.
func (c *committer) syncLoop() {
	defer close(c.s.committerDone)
	set := make([]written, 0, maxInFlight)
	for w := range c.toSync {
		set = append(set[:0], w)
	drain:
		for len(set) < cap(set) {
			select {
			case w, ok := <-c.toSync:
				if !ok {
					break drain
				}
				set = append(set, w)
			default:
				break drain
			}
		}
		c.finish(set)
		clear(set)
	}
}

// finish makes the groups of set durable with one WAL sync, publishes
// them to readers and acknowledges their appends.
//
// A WAL sync covers every record written before it, so syncing a tiny
// log-only record after the groups syncs them all (Pebble syncs and closes
// a WAL before it switches to a new one, so this holds across WAL files).
func (c *committer) finish(set []written) {
	var head uint64
	appends := 0
	for _, w := range set {
		head = max(head, w.head)
		appends += w.appends
	}
	wrote := head > c.s.durable.Load()
	if wrote && c.syncErr == nil {
		if err := c.db.LogData(nil, pebble.Sync); err != nil {
			c.syncErr = c.setFailure(err)
		}
	}
	switch {
	case c.syncErr != nil:
		for _, w := range set {
			c.fail(w.group, c.syncErr)
		}
	case wrote:
		// Publish before acknowledging, so that a writer that reads the
		// log right after its append returns sees its own records.
		c.s.publish(head)
		c.s.syncs.Add(1)
		c.s.appends.Add(uint64(appends))
	}
	for _, w := range set {
		for _, r := range w.group {
			r.done <- struct{}{}
		}
	}
}

// evict bounds the head cache by dropping arbitrary entries (Go's map
// iteration order is randomised, which is as good as LRU for a cache
// whose misses cost one index seek).
func (c *committer) evict() {
	if len(c.heads) <= c.maxHeads {
		return
	}
	target := c.maxHeads - c.maxHeads/8
	for stream := range c.heads {
		if len(c.heads) <= target {
			break
		}
		delete(c.heads, stream)
	}
}

// apply checks r against the state the group has built so far and, if it
// passes and is not a retry, assigns its revisions and positions (in
// r.firstRev and r.firstPos) for commit to write.
func (c *committer) apply(r *appendReq, pos *uint64) (res es.AppendResult, err error) {
	r.firstPos = 0
	head, err := c.streamHead(r)
	if err != nil {
		return res, fmt.Errorf("embedded: append to %s: %w", r.stream, err)
	}
	if len(r.ids) == 0 {
		if !r.expected.Check(head.rev, head.exists) {
			return res, c.conflict(r, head)
		}
		if head.exists {
			res = es.AppendResult{NextRevision: head.rev, Position: head.pos}
		}
		return res, nil
	}
	first, found, err := c.lookupID(r.ids[0])
	if err != nil {
		return res, fmt.Errorf("embedded: append to %s: %w", r.stream, err)
	}
	if found {
		return c.retried(r, first)
	}
	if !r.expected.Check(head.rev, head.exists) {
		return res, c.conflict(r, head)
	}
	for _, id := range r.ids[1:] {
		loc, found, err := c.lookupID(id)
		if err != nil {
			return res, fmt.Errorf("embedded: append to %s: %w", r.stream, err)
		}
		if found {
			return res, duplicate(r, id, loc)
		}
	}

	r.firstRev = 0
	if head.exists {
		r.firstRev = head.rev + 1
	}
	r.firstPos = *pos + 1
	for i, id := range r.ids {
		c.pendingIDs[id] = idLoc{stream: r.stream, rev: r.firstRev + uint64(i), pos: r.firstPos + uint64(i)}
		c.s.ids.add(id)
	}
	*pos += uint64(len(r.ids))
	h := streamHead{rev: r.firstRev + uint64(len(r.ids)) - 1, pos: *pos, exists: true}
	c.pending[r.stream] = h
	return es.AppendResult{NextRevision: h.rev, Position: h.pos, Written: true}, nil
}

// write puts the records of the accepted appends of group into b: all log
// entries first, then the stream index, then the id index. Pebble inserts
// a batch into its memtable in batch order and reuses its skiplist
// position from one key to the next, so the log's consecutive positions
// then cost next to nothing, instead of a full seek each when the three
// keyspaces alternate.
func write(b *pebble.Batch, group []*appendReq) error {
	for _, r := range group {
		if r.firstPos == 0 {
			continue
		}
		for i := range r.ids {
			body := r.body(i)
			op := b.SetDeferred(9, recordHeaderLen+len(body))
			putLogKey(op.Key, r.firstPos+uint64(i))
			op.Value[0] = recordFormat
			binary.BigEndian.PutUint64(op.Value[1:], r.firstRev+uint64(i))
			copy(op.Value[recordHeaderLen:], body)
			if err := op.Finish(); err != nil {
				return err
			}
		}
	}
	for _, r := range group {
		if r.firstPos == 0 {
			continue
		}
		for i := range r.ids {
			op := b.SetDeferred(len(r.prefix)+8, 8)
			copy(op.Key, r.prefix)
			binary.BigEndian.PutUint64(op.Key[len(r.prefix):], r.firstRev+uint64(i))
			binary.BigEndian.PutUint64(op.Value, r.firstPos+uint64(i))
			if err := op.Finish(); err != nil {
				return err
			}
		}
	}
	for _, r := range group {
		if r.firstPos == 0 {
			continue
		}
		for i, id := range r.ids {
			op := b.SetDeferred(17, 8)
			op.Key[0] = tagID
			copy(op.Key[1:], id[:])
			binary.BigEndian.PutUint64(op.Value, r.firstPos+uint64(i))
			if err := op.Finish(); err != nil {
				return err
			}
		}
	}
	return nil
}

// retried decides an append whose first id is already stored: it is an
// idempotent retry if all its ids are stored consecutively in its stream,
// starting at the revision its expectation implies.
func (c *committer) retried(r *appendReq, first idLoc) (es.AppendResult, error) {
	want := first.rev // Any and StreamExists: wherever they are
	if x, ok := r.expected.Revision(); ok {
		want = x + 1
	} else if r.expected.IsNoStream() {
		want = 0
	}
	if first.stream != r.stream || first.rev != want {
		return es.AppendResult{}, duplicate(r, r.ids[0], first)
	}
	last := first
	for i, id := range r.ids[1:] {
		loc, found, err := c.lookupID(id)
		if err != nil {
			return es.AppendResult{}, fmt.Errorf("embedded: append to %s: %w", r.stream, err)
		}
		if !found || loc.stream != r.stream || loc.rev != first.rev+1+uint64(i) {
			return es.AppendResult{}, fmt.Errorf("embedded: append to %s: event %s was stored by an earlier append but event %s does not follow it: %w",
				r.stream, r.ids[0], id, es.ErrDuplicateEventID)
		}
		last = loc
	}
	return es.AppendResult{NextRevision: last.rev, Position: last.pos}, nil
}

func (c *committer) conflict(r *appendReq, head streamHead) error {
	return &es.ConflictError{Stream: r.stream, Expected: r.expected, Actual: head.rev, Exists: head.exists}
}

func duplicate(r *appendReq, id uuid.UUID, at idLoc) error {
	return fmt.Errorf("embedded: append to %s: event %s is already stored at %s@%d: %w",
		r.stream, id, at.stream, at.rev, es.ErrDuplicateEventID)
}

func (c *committer) iterator() (*pebble.Iterator, error) {
	if c.iter == nil {
		// L6 filters: most id lookups miss, and most of a large store
		// sits in L6.
		it, err := c.db.NewIter(&pebble.IterOptions{UseL6Filters: true})
		if err != nil {
			return nil, err
		}
		c.iter = it
	}
	return c.iter, nil
}

// streamHead returns the head of r's stream as of the group so far.
func (c *committer) streamHead(r *appendReq) (streamHead, error) {
	if h, ok := c.pending[r.stream]; ok {
		return h, nil
	}
	if h, ok := c.heads[r.stream]; ok {
		return h, nil
	}
	it, err := c.iterator()
	if err != nil {
		return streamHead{}, err
	}
	var h streamHead
	if it.SeekLT(streamUpper(r.prefix)) && bytes.HasPrefix(it.Key(), r.prefix) {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return streamHead{}, err
		}
		if len(k) != len(r.prefix)+8 || len(v) != 8 {
			return streamHead{}, fmt.Errorf("%w: stream index entry %x", errCorrupt, k)
		}
		h = streamHead{rev: binary.BigEndian.Uint64(k[len(r.prefix):]), pos: positionOf(v), exists: true}
	} else if err := it.Error(); err != nil {
		return streamHead{}, err
	}
	c.heads[r.stream] = h
	return h, nil
}

// lookupID returns where id is stored, counting the group so far.
func (c *committer) lookupID(id uuid.UUID) (idLoc, bool, error) {
	if loc, ok := c.pendingIDs[id]; ok {
		return loc, true, nil
	}
	if !c.s.ids.mayContain(id) {
		return idLoc{}, false, nil
	}
	it, err := c.iterator()
	if err != nil {
		return idLoc{}, false, err
	}
	c.key[0] = tagID
	copy(c.key[1:], id[:])
	if !it.SeekPrefixGE(c.key[:]) || !bytes.Equal(it.Key(), c.key[:]) {
		return idLoc{}, false, it.Error()
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return idLoc{}, false, err
	}
	if len(v) != 8 {
		return idLoc{}, false, fmt.Errorf("%w: id index entry for %s", errCorrupt, id)
	}
	pos := positionOf(v)
	lk := logKey(pos)
	if !it.SeekGE(lk) || !bytes.Equal(it.Key(), lk) {
		if err := it.Error(); err != nil {
			return idLoc{}, false, err
		}
		return idLoc{}, false, fmt.Errorf("%w: event %s points at missing position %d", errCorrupt, id, pos)
	}
	rec, err := it.ValueAndErr()
	if err != nil {
		return idLoc{}, false, err
	}
	stream, rev, ok := peekStreamRevision(rec)
	if !ok {
		return idLoc{}, false, fmt.Errorf("%w at position %d", errCorrupt, pos)
	}
	return idLoc{stream: stream, rev: rev, pos: pos}, true, nil
}
