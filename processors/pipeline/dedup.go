package pipeline

import "github.com/cespare/xxhash/v2"

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
// that is late for every window anyway. Memory: about 60 bytes per event
// within the horizon (a map entry and an eviction-queue entry, 8-byte
// hashes of the ids; a 64-bit hash collision among the ids of one horizon
// is vanishingly unlikely). The decision depends only on the partition's
// records, so it is deterministic, and the set is part of the snapshot.
type dedup struct {
	horizon int64
	seen    map[uint64]struct{}
	order   []SeenID // sightings in arrival order, for eviction
	head    int
}

// SeenID is a remembered event id (its hash) and the event time it was
// first seen with.
type SeenID struct {
	Hash uint64
	Time int64
}

func newDedup(horizon int64) dedup {
	return dedup{horizon: horizon, seen: map[uint64]struct{}{}}
}

// first reports whether id is seen for the first time, remembering it, and
// forgets ids whose event time is more than the horizon behind wm.
func (d *dedup) first(id string, eventTime, wm int64) bool {
	d.evict(wm)
	h := xxhash.Sum64String(id)
	if _, ok := d.seen[h]; ok {
		return false
	}
	d.seen[h] = struct{}{}
	d.order = append(d.order, SeenID{Hash: h, Time: eventTime})
	return true
}

func (d *dedup) evict(wm int64) {
	cut := wm - d.horizon
	if cut > wm { // no watermark yet (window.None): nothing to forget
		return
	}
	for d.head < len(d.order) && d.order[d.head].Time < cut {
		delete(d.seen, d.order[d.head].Hash)
		d.head++
	}
	if d.head > 4096 && d.head*2 > len(d.order) {
		d.order = append(d.order[:0], d.order[d.head:]...)
		d.head = 0
	}
}

// state returns the remembered ids, oldest first, for a snapshot.
func (d *dedup) state() []SeenID { return d.order[d.head:] }

// restore replaces the remembered ids with those of a snapshot.
func (d *dedup) restore(ids []SeenID) {
	d.order = append(d.order[:0], ids...)
	d.head = 0
	clear(d.seen)
	for _, s := range ids {
		d.seen[s.Hash] = struct{}{}
	}
}

func (d *dedup) len() int { return len(d.order) - d.head }
