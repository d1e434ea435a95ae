package ingest

import (
	"strings"
	"sync"
)

// recentIDs remembers the event_ids ingest has had acknowledged by Kafka
// lately, so that a client retrying a batch whose answer it lost does not
// put the same events on Kafka again. It is only a first line: it is per
// process, bounded (two generations of at most size/2 ids each) and empty
// after a restart, so correctness rests on downstream deduplication by
// event_id (docs/ingest.md, "Duplicates").
type recentIDs struct {
	mu        sync.Mutex
	half      int
	cur, prev map[string]struct{}
}

func newRecentIDs(size int) *recentIDs {
	if size <= 0 {
		return nil
	}
	half := max(1, size/2)
	return &recentIDs{half: half, cur: make(map[string]struct{}, half)}
}

// seen reports whether id was added lately. A nil cache has seen nothing.
func (r *recentIDs) seen(id string) bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	_, ok := r.cur[id]
	if !ok {
		_, ok = r.prev[id]
	}
	r.mu.Unlock()
	return ok
}

// add remembers ids. It copies them: an id parsed from a request body
// shares that body's memory, which must not stay alive for the cache.
func (r *recentIDs) add(ids []string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	for _, id := range ids {
		if len(r.cur) >= r.half {
			r.prev, r.cur = r.cur, make(map[string]struct{}, r.half)
		}
		r.cur[strings.Clone(id)] = struct{}{}
	}
	r.mu.Unlock()
}
