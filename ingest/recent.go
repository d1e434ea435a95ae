package ingest

import (
	"hash/maphash"
	"sync"
)

// recentIDs remembers the event_ids ingest has had acknowledged by Kafka
// lately, so that a client retrying a batch whose answer it lost does not
// put the same events on Kafka again. It is only a first line: it is per
// process, bounded (two generations of at most size/2 ids each) and empty
// after a restart, so correctness rests on downstream deduplication by
// event_id (docs/ingest.md, "Duplicates").
//
// It keeps 128-bit hashes (two seeded maphashes) rather than the ids: no
// copy of each id, a third of the memory, and a false match — which would
// keep an event off Kafka — is about as likely as 2^-90 per lookup.
type recentIDs struct {
	mu        sync.Mutex
	seeds     [2]maphash.Seed
	half      int
	cur, prev map[[2]uint64]struct{}
}

func newRecentIDs(size int) *recentIDs {
	if size <= 0 {
		return nil
	}
	half := max(1, size/2)
	return &recentIDs{
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		half:  half,
		cur:   make(map[[2]uint64]struct{}, half),
	}
}

func (r *recentIDs) hash(id string) [2]uint64 {
	return [2]uint64{maphash.String(r.seeds[0], id), maphash.String(r.seeds[1], id)}
}

// seen reports whether id was added lately. A nil cache has seen nothing.
func (r *recentIDs) seen(id string) bool {
	if r == nil {
		return false
	}
	h := r.hash(id)
	r.mu.Lock()
	_, ok := r.cur[h]
	if !ok {
		_, ok = r.prev[h]
	}
	r.mu.Unlock()
	return ok
}

// add remembers ids.
func (r *recentIDs) add(ids []string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	for _, id := range ids {
		if len(r.cur) >= r.half {
			r.prev, r.cur = r.cur, make(map[[2]uint64]struct{}, r.half)
		}
		r.cur[r.hash(id)] = struct{}{}
	}
	r.mu.Unlock()
}
