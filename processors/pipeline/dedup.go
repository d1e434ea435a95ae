package pipeline

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// dedup drops an event whose event_id the partition has already seen: the
// copy a client sends when it retries a batch after a lost answer, or that
// ingest produced twice after a partial Kafka write (SPEC §1: the same id
// sent twice is one event everywhere downstream). A retried event has the
// same user_id, so it is in the same partition; its event_time may differ
// (derived from a later received_at), so identity is the id alone.
//
// An id is remembered while the event can still change a row: until the
// watermark passes its event time by the horizon (the longest window, its
// allowed lateness and the clean pass's lag). A copy arriving later than
// that is late for every window anyway. Ids are forgotten by blocks of
// dedupBlock in arrival order: a full block once the watermark is past the
// horizon of its latest event time (in whole seconds, rounded up), so an
// id may be remembered a little longer, never shorter. Memory: about 22
// bytes per event within the horizon (a slot of an open-addressing set of
// 8-byte hashes of the ids, at most 3/4 full, and the hash again in the
// eviction queue; a 64-bit hash collision among the ids of one horizon is
// vanishingly unlikely). The decision depends only on the partition's
// records, so it is deterministic, and the set is part of the snapshot
// (which lists the ids from a block start, so a restore has the same
// blocks).
type dedup struct {
	horizon int64
	seen    hashSet
	// Sightings in arrival order, for eviction, in chunks of dedupChunk
	// (all full but the last; a chunk read to the end is dropped, so the
	// queue never copies what it holds): the i-th hash from the start of
	// chunks[0] is in block i/dedupBlock, whose latest event time (seconds,
	// see secs) is maxes[i/dedupBlock]. head, the index in chunks[0] of the
	// first remembered, starts a block.
	chunks [][]uint64
	maxes  []uint32
	head   int
}

// dedupBlock is the number of ids forgotten together; dedupChunk, a
// multiple of it, the number of hashes in a chunk of the queue (64 KiB).
const (
	dedupBlock = 64
	dedupChunk = 8192
)

// SeenID is a remembered event id (its hash) and the event time it is
// remembered by (version 2 snapshots from before blocks: the event's own).
type SeenID struct {
	Hash uint64
	Time int64
}

func newDedup(horizon int64) dedup {
	return dedup{horizon: horizon}
}

// secs returns event time t (Unix ms) in whole seconds, rounded up, within
// uint32 (a time before 1970 is 0: behind every horizon, as it was).
func secs(t int64) uint32 {
	switch {
	case t <= 0:
		return 0
	case t >= math.MaxUint32*1000:
		return math.MaxUint32
	}
	return uint32((t + 999) / 1000)
}

// first reports whether id is seen for the first time, remembering it, and
// forgets ids whose event time is more than the horizon behind wm.
func (d *dedup) first(id string, eventTime, wm int64) bool {
	d.evict(wm)
	h := xxhash.Sum64String(id)
	if !d.seen.add(h) {
		return false
	}
	d.push(h, secs(eventTime))
	return true
}

func (d *dedup) push(h uint64, s uint32) {
	n := len(d.chunks)
	if n == 0 || len(d.chunks[n-1]) == dedupChunk {
		d.chunks = append(d.chunks, make([]uint64, 0, dedupChunk))
		n++
	}
	i := (n-1)*dedupChunk + len(d.chunks[n-1]) // from the start of chunks[0]
	d.chunks[n-1] = append(d.chunks[n-1], h)
	if i%dedupBlock == 0 {
		d.maxes = append(d.maxes, s)
	} else {
		d.maxes[i/dedupBlock] = max(d.maxes[i/dedupBlock], s)
	}
}

func (d *dedup) evict(wm int64) {
	cut := wm - d.horizon
	if cut > wm { // no watermark yet (window.None): nothing to forget
		return
	}
	for len(d.chunks) > 0 {
		if d.head == dedupChunk { // chunks[0] read to the end
			d.chunks[0] = nil
			d.chunks = d.chunks[1:]
			d.maxes = d.maxes[dedupChunk/dedupBlock:]
			d.head = 0
			continue
		}
		c := d.chunks[0]
		if d.head+dedupBlock > len(c) || int64(d.maxes[d.head/dedupBlock])*1000 >= cut {
			return
		}
		for _, h := range c[d.head : d.head+dedupBlock] {
			d.seen.del(h)
		}
		d.head += dedupBlock
	}
}

// blocks returns the remembered ids for a snapshot (version 3): their
// hashes oldest first, from a block start, as references to the queue's
// chunks (which are only appended to, and dropped once read, so the
// references stay valid while the set goes on), and the latest event time
// (seconds) of each of their blocks (a copy: the last block's changes).
func (d *dedup) blocks() (hashes [][]uint64, maxes []uint32) {
	for ci, c := range d.chunks {
		if ci == 0 {
			c = c[d.head:]
		}
		hashes = append(hashes, c[:len(c):len(c)])
	}
	first := d.head / dedupBlock
	n := (d.len() + dedupBlock - 1) / dedupBlock
	return hashes, slices.Clone(d.maxes[first : first+n])
}

// restoreBlocks replaces the remembered ids with those of blocks.
func (d *dedup) restoreBlocks(hashes []byte, maxes []uint32) error {
	if len(hashes)%8 != 0 || (len(hashes)/8+dedupBlock-1)/dedupBlock != len(maxes) {
		return fmt.Errorf("pipeline: snapshot: %d bytes of event id hashes with %d block times", len(hashes), len(maxes))
	}
	d.chunks, d.maxes, d.head = nil, nil, 0
	d.seen = hashSet{}
	for i := 0; i < len(hashes); i += 8 {
		h := binary.LittleEndian.Uint64(hashes[i:])
		d.seen.add(h)
		d.push(h, maxes[i/8/dedupBlock])
	}
	return nil
}

// restore replaces the remembered ids with those of a snapshot of
// version 1 or 2.
func (d *dedup) restore(ids []SeenID) {
	d.chunks, d.maxes, d.head = nil, nil, 0
	d.seen = hashSet{}
	for _, s := range ids {
		d.seen.add(s.Hash)
		d.push(s.Hash, secs(s.Time))
	}
}

func (d *dedup) len() int {
	n := len(d.chunks)
	if n == 0 {
		return 0
	}
	return (n-1)*dedupChunk + len(d.chunks[n-1]) - d.head
}

// hashSet is a set of 64-bit hashes: open addressing with linear probing
// and backward-shift deletion (no tombstones), one 8-byte slot per entry
// and at most 3/4 full. The Go map it replaces took about twice the memory
// and several cache misses per lookup.
type hashSet struct {
	slots []uint64 // 0: empty
	n     int      // entries in slots
	zero  bool     // the hash 0, which cannot be stored in a slot
}

// add inserts h and reports whether it was absent.
func (s *hashSet) add(h uint64) bool {
	if h == 0 {
		had := s.zero
		s.zero = true
		return !had
	}
	if (s.n+1)*4 > len(s.slots)*3 {
		s.resize(max(1024, 2*len(s.slots)))
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return false
		case 0:
			s.slots[i] = h
			s.n++
			return true
		}
	}
}

// del removes h if present.
func (s *hashSet) del(h uint64) {
	if h == 0 {
		s.zero = false
		return
	}
	if len(s.slots) == 0 {
		return
	}
	mask := uint64(len(s.slots) - 1)
	i := h & mask
	for s.slots[i] != h {
		if s.slots[i] == 0 {
			return
		}
		i = (i + 1) & mask
	}
	// Shift back the entries of the probe run that would no longer be
	// reachable from their home slot.
	for j := i; ; {
		j = (j + 1) & mask
		v := s.slots[j]
		if v == 0 {
			break
		}
		k := v & mask // home slot of v
		// v stays if its home lies cyclically in (i, j].
		if i <= j && i < k && k <= j || i > j && (i < k || k <= j) {
			continue
		}
		s.slots[i] = v
		i = j
	}
	s.slots[i] = 0
	s.n--
	if len(s.slots) > 1024 && s.n*8 < len(s.slots) {
		s.resize(len(s.slots) / 2)
	}
}

func (s *hashSet) resize(size int) {
	old := s.slots
	s.slots, s.n = make([]uint64, size), 0
	mask := uint64(size - 1)
	for _, v := range old {
		if v == 0 {
			continue
		}
		i := v & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = v
		s.n++
	}
}
