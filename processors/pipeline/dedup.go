package pipeline

import (
	"encoding/binary"
	"fmt"
	"maps"
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
// id may be remembered a little longer, never shorter. Memory: 14 to 19
// bytes per event within the horizon (a slot of an ordered hash set of
// 8-byte hashes of the ids, 0.53 to 0.80 full once grown: 10 to 15
// bytes, and the hash's low 32 bits, its key, in the eviction queue: 4; a
// 64-bit hash collision among the ids of one horizon is vanishingly
// unlikely). A key tells which id to forget because the ids of one key
// are next to each other in the set, where only that id has it; the rare key two or more remembered ids have (shared)
// counts its sightings in the queue, and those ids are forgotten together
// with the last of them (later than their blocks, never earlier). The
// decision depends only on the partition's records, so it is
// deterministic, and the set is part of the snapshot (which lists the
// keys from a block start, so a restore has the same blocks, the set's
// hashes and the shared keys).
type dedup struct {
	horizon int64
	seen    hashSet
	// Keys of the sightings in arrival order, for eviction, in chunks of
	// dedupChunk (all full but the last; a chunk read to the end is
	// dropped, so the queue never copies what it holds): the i-th key from
	// the start of chunks[0] is in block i/dedupBlock, whose latest event
	// time (seconds, see secs) is maxes[i/dedupBlock]. head, the index in
	// chunks[0] of the first remembered, starts a block.
	chunks [][]uint32
	maxes  []uint32
	head   int
	// shared counts the sightings in the queue of each key that two or
	// more remembered ids have.
	shared map[uint32]int32
}

// dedupBlock is the number of ids forgotten together; dedupChunk, a
// multiple of it, the number of keys in a chunk of the queue (32 KiB).
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
	return d.remember(xxhash.Sum64String(id), secs(eventTime))
}

// remember adds hash h, of a sighting of time s, unless the set has it,
// and reports whether it was new.
func (d *dedup) remember(h uint64, s uint32) bool {
	added, others := d.seen.add(h)
	if !added {
		return false
	}
	k := uint32(h)
	if others > 0 { // (a shared key has two ids or more in the set)
		if c := d.shared[k]; c > 0 {
			d.shared[k] = c + 1
		} else { // the key's other id had one sighting
			if d.shared == nil {
				d.shared = map[uint32]int32{}
			}
			d.shared[k] = 2
		}
	}
	d.push(k, s)
	return true
}

func (d *dedup) push(k uint32, s uint32) {
	n := len(d.chunks)
	if n == 0 || len(d.chunks[n-1]) == dedupChunk {
		d.chunks = append(d.chunks, make([]uint32, 0, dedupChunk))
		n++
	}
	i := (n-1)*dedupChunk + len(d.chunks[n-1]) // from the start of chunks[0]
	d.chunks[n-1] = append(d.chunks[n-1], k)
	if i%dedupBlock == 0 {
		d.maxes = append(d.maxes, s)
	} else {
		d.maxes[i/dedupBlock] = max(d.maxes[i/dedupBlock], s)
	}
}

// forget forgets the id of a sighting of key k leaving the queue: the one
// id of k, or, when k is shared, every id of k with its last sighting.
func (d *dedup) forget(k uint32) {
	if len(d.shared) == 0 {
		d.seen.delKey(k, false)
		return
	}
	c, ok := d.shared[k]
	switch {
	case !ok:
		d.seen.delKey(k, false)
	case c > 1:
		d.shared[k] = c - 1
	default:
		delete(d.shared, k)
		d.seen.delKey(k, true)
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
		for _, k := range c[d.head : d.head+dedupBlock] {
			d.forget(k)
		}
		d.head += dedupBlock
	}
}

// frozenSeen is the remembered ids as a snapshot (version 4) holds them.
type frozenSeen struct {
	keys   [][]uint32 // the queue's keys, oldest first, from a block start
	maxes  []uint32   // the latest event time (seconds) of each of their blocks
	hashes []uint64   // the set's hashes, in no order
	shared map[uint32]int32
}

// freeze returns the remembered ids for a snapshot: the queue's keys as
// references to its chunks (which are only appended to, and dropped once
// read, so the references stay valid while the set goes on), copies of
// the rest.
func (d *dedup) freeze() frozenSeen {
	var f frozenSeen
	for ci, c := range d.chunks {
		if ci == 0 {
			c = c[d.head:]
		}
		f.keys = append(f.keys, c[:len(c):len(c)])
	}
	first := d.head / dedupBlock
	n := (d.len() + dedupBlock - 1) / dedupBlock
	f.maxes = slices.Clone(d.maxes[first : first+n])
	f.hashes = d.seen.appendTo(make([]uint64, 0, d.seen.n+1))
	f.shared = maps.Clone(d.shared)
	return f
}

// restoreFrozen replaces the remembered ids with those of a snapshot of
// version 4: keys (4 bytes each) and hashes (8 bytes each), little-endian.
func (d *dedup) restoreFrozen(keys, hashes []byte, maxes []uint32, shared map[uint32]int32) error {
	if len(keys)%4 != 0 || len(hashes)%8 != 0 || (len(keys)/4+dedupBlock-1)/dedupBlock != len(maxes) || len(hashes)/8 < len(keys)/4-sharedSightings(shared) {
		return fmt.Errorf("pipeline: snapshot: %d bytes of event id keys, %d of hashes, %d block times", len(keys), len(hashes), len(maxes))
	}
	d.chunks, d.maxes, d.head = nil, nil, 0
	d.seen = hashSet{}
	// At its final size first, not grown on the way. (Snapshots of the
	// power-of-two table, before version 4's set was ordered, list the
	// hashes in the order of their low bits: into that table, growing,
	// they piled into one long probe run, 6 s instead of 0.2 for 3 M ids.
	// The ordered set takes them in any order.)
	d.seen.reserve(len(hashes) / 8)
	for i := 0; i < len(hashes); i += 8 {
		d.seen.add(binary.LittleEndian.Uint64(hashes[i:]))
	}
	for i := 0; i < len(keys); i += 4 {
		d.push(binary.LittleEndian.Uint32(keys[i:]), maxes[i/4/dedupBlock])
	}
	d.shared = maps.Clone(shared)
	return nil
}

// sharedSightings returns the sightings counted in shared.
func sharedSightings(shared map[uint32]int32) int {
	n := 0
	for _, c := range shared {
		n += int(c)
	}
	return n
}

// restoreBlocks replaces the remembered ids with those of a snapshot of
// version 3: hashes (8 bytes each, little-endian) oldest first, from a
// block start.
func (d *dedup) restoreBlocks(hashes []byte, maxes []uint32) error {
	if len(hashes)%8 != 0 || (len(hashes)/8+dedupBlock-1)/dedupBlock != len(maxes) {
		return fmt.Errorf("pipeline: snapshot: %d bytes of event id hashes with %d block times", len(hashes), len(maxes))
	}
	d.chunks, d.maxes, d.head, d.shared = nil, nil, 0, nil
	d.seen = hashSet{}
	for i := 0; i < len(hashes); i += 8 {
		d.restoreOne(binary.LittleEndian.Uint64(hashes[i:]), maxes[i/8/dedupBlock])
	}
	return nil
}

// restore replaces the remembered ids with those of a snapshot of
// version 1 or 2.
func (d *dedup) restore(ids []SeenID) {
	d.chunks, d.maxes, d.head, d.shared = nil, nil, 0, nil
	d.seen = hashSet{}
	for _, s := range ids {
		d.restoreOne(s.Hash, secs(s.Time))
	}
}

// restoreOne is remember for a sighting of an older snapshot, which holds
// each hash once.
func (d *dedup) restoreOne(h uint64, s uint32) {
	if !d.remember(h, s) {
		d.push(uint32(h), s) // a damaged snapshot: keep the blocks aligned
	}
}

func (d *dedup) len() int {
	n := len(d.chunks)
	if n == 0 {
		return 0
	}
	return (n-1)*dedupChunk + len(d.chunks[n-1]) - d.head
}
