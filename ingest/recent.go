package ingest

import (
	"hash/maphash"
	"math/bits"
	"sync"
)

// recentIDs remembers the event_ids ingest has had acknowledged by Kafka
// lately, so that a client retrying a batch whose answer it lost does not
// put the same events on Kafka again. It is only a first line: it is per
// process, bounded, lossy and empty after a restart, so correctness rests on
// downstream deduplication by event_id (docs/ingest.md, "Duplicates").
//
// It is a direct-mapped table of 128-bit hashes (two seeded maphashes): one
// slot per hash, a newer id overwrites an older one in its slot. No
// allocation, no pointers for the GC to scan, one cache miss per lookup. A
// false match — which would keep an event off Kafka — needs a 128-bit
// collision: about 2^-128 per lookup.
type recentIDs struct {
	mu    sync.Mutex
	seeds [2]maphash.Seed
	mask  uint64
	slots [][2]uint64
}

// newRecentIDs returns a cache of at least size slots (a power of two), or
// nil (no cache) for size <= 0.
func newRecentIDs(size int) *recentIDs {
	if size <= 0 {
		return nil
	}
	n := uint64(1) << bits.Len64(uint64(size-1))
	return &recentIDs{
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		mask:  n - 1,
		slots: make([][2]uint64, n),
	}
}

func (r *recentIDs) hash(id string) [2]uint64 {
	h := [2]uint64{maphash.String(r.seeds[0], id), maphash.String(r.seeds[1], id)}
	if h == [2]uint64{} {
		h[1] = 1 // the zero value marks an empty slot
	}
	return h
}

// seen reports whether id was added lately. A nil cache has seen nothing.
func (r *recentIDs) seen(id string) bool {
	if r == nil {
		return false
	}
	h := r.hash(id)
	r.mu.Lock()
	ok := r.slots[h[0]&r.mask] == h
	r.mu.Unlock()
	return ok
}

// add remembers ids.
func (r *recentIDs) add(ids []string) {
	if r == nil {
		return
	}
	hs := make([][2]uint64, 0, 128)
	for _, id := range ids {
		hs = append(hs, r.hash(id))
	}
	r.mu.Lock()
	for _, h := range hs {
		r.slots[h[0]&r.mask] = h
	}
	r.mu.Unlock()
}
