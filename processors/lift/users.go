package lift

import (
	"github.com/cespare/xxhash/v2"

	"github.com/questline/questline/processors/internal/arena"
	"github.com/questline/questline/processors/internal/hashindex"
)

// users numbers the users of a Processor's drops, so that an event looks
// its user up once however many drops are live, and a drop finds a user's
// facts by index. A number is freed (and reused) once no drop holds the
// user. The ids are copies in a byte arena, found through an index of
// 8-byte slots by their hash (as latency's users are): an event of a live
// drop looks its user up in both passes, and a map[string]int32 of the
// drops' users took a third of the steady state's lift time
// (docs/benchmarks/processors.md, session 17).
type users struct {
	index hashindex.Index // number by hash of the id, confirmed against ids
	names arena.Names
	ids   []arena.Ref // by number; zero for a free number
	refs  []int32     // drops holding the user
	free  []int32
}

// hashID is the hash users are indexed by.
func hashID(id string) uint64 { return xxhash.Sum64String(id) }

// lookup returns the number of user id, if it has one.
func (t *users) lookup(id string) (int32, bool) { return t.find(id, hashID(id)) }

// find is lookup for an id of hash h.
func (t *users) find(id string, h uint64) (int32, bool) {
	n, ok := t.index.Find(h, func(n uint32) bool { return t.names.Equal(t.ids[n], id) })
	return int32(n), ok
}

// number returns the number of user id, numbering a copy of it (decoded
// strings share their record). A new number is freed by the first
// release after the hold of the drop that asked for it.
func (t *users) number(id string) int32 {
	h := hashID(id)
	if n, ok := t.find(id, h); ok {
		return n
	}
	ref := t.names.Add(id)
	var n int32
	if k := len(t.free); k > 0 {
		n = t.free[k-1]
		t.free = t.free[:k-1]
		t.ids[n], t.refs[n] = ref, 0
	} else {
		n = int32(len(t.ids))
		t.ids = append(t.ids, ref)
		t.refs = append(t.refs, 0)
	}
	t.index.Insert(h, uint32(n))
	return n
}

// name returns the id of user n, a view of the arena's bytes: clone it to
// keep it.
func (t *users) name(n int32) string { return t.names.View(t.ids[n]) }

// count returns the numbers handed out, held or free.
func (t *users) count() int { return len(t.ids) }

// hold records that one more drop holds user n.
func (t *users) hold(n int32) { t.refs[n]++ }

// release records that a drop no longer holds user n, freeing the number
// when none does.
func (t *users) release(n int32) {
	if t.refs[n]--; t.refs[n] != 0 {
		return
	}
	t.index.Remove(hashID(t.name(n)), uint32(n))
	t.index.Shrink() // after a large drop's users are gone (helper-53)
	t.names.Free(t.ids[n])
	t.ids[n] = arena.Ref{}
	t.free = append(t.free, n)
	t.names.Compact(func(move func(arena.Ref) arena.Ref) {
		for i, r := range t.ids {
			t.ids[i] = move(r)
		}
	})
}
