package latency

import (
	"iter"

	"github.com/cespare/xxhash/v2"
	"github.com/questline/questline/processors/internal/arena"
	"github.com/questline/questline/processors/internal/hashindex"
	"github.com/questline/questline/processors/internal/pool"
)

// users holds the processor's users by id: records by number in chunks
// that never move (a *user stays valid while its number is held), found
// through an index of 8-byte slots by the hash of the id and confirmed
// against the id, which is in a byte arena; and the nodes of their lists.
// Per user that is the 16-byte record, the id's bytes and the index's 8
// bytes at most 3/4 full (about 40 bytes, and no heap object of its own;
// 56-byte records with two slices, and the slices' allocations, in
// session 9 before the lists; a map[string]*user cost about 37 bytes of
// map, the id's own allocation (8 bytes and up) and a 48-byte object with
// the two slices, about 93, before).
type users struct {
	index hashindex.Index // by hashID, confirmed against the record's id
	ids   arena.Names
	recs  pool.Pool[user] // the records by number (from 1), freed ones reused
	n     int             // users held
	comps pool.Pool[userComp]
	rels  pool.Pool[released]
}

// newUsers returns an empty table.
func newUsers() users {
	return users{recs: pool.New[user](userBits), comps: pool.New[userComp](compBits), rels: pool.New[released](relBits)}
}

// user is a user's attribution state: two lists, by their first node's
// number (0: empty). A free record has both empty; a held one has at least
// one node in them, but within Add and in Flush, which frees a user whose
// lists are both empty.
type user struct {
	id    arena.Ref // in users.ids
	comps uint32    // completions, ascending by (T, quest id)
	// rels are the user's conversions already attributed (or found
	// unattributable) whose windows are all still open, in release order:
	// a late completion may re-attribute them.
	rels uint32
}

// userBits: records in chunks of 1,024 (16 KiB).
const userBits = 10

// rec returns the record of number i.
func (t *users) rec(i uint32) *user { return t.recs.At(i) }

// numbers returns every number handed out, held or free, ascending.
func (t *users) numbers() iter.Seq[uint32] {
	return func(yield func(uint32) bool) {
		for i := uint32(1); i <= t.recs.Nums(); i++ {
			if !yield(i) {
				return
			}
		}
	}
}

// held reports whether number i holds a user.
func (t *users) held(i uint32) bool {
	u := t.rec(i)
	return u.comps != 0 || u.rels != 0
}

// id returns the id of the user numbered i, a view of the arena's bytes:
// clone it to keep it (a view keeps its whole chunk).
func (t *users) id(i uint32) string { return t.ids.View(t.rec(i).id) }

// find returns the user with id, or nil.
func (t *users) find(id string) *user {
	if i, ok := t.index.Find(hashID(id), func(i uint32) bool { return t.ids.Equal(t.rec(i).id, id) }); ok {
		return t.rec(i)
	}
	return nil
}

// add returns a new record for id (not held), interning a copy of id:
// the caller adds to its lists.
func (t *users) add(id string) *user {
	i := t.recs.Alloc()
	*t.rec(i) = user{id: t.ids.Add(id)}
	t.index.Insert(hashID(id), i)
	t.n++
	return t.rec(i)
}

// remove frees number i, whose lists are empty.
func (t *users) remove(i uint32) {
	u := t.rec(i)
	t.index.Remove(hashID(t.id(i)), i)
	t.ids.Free(u.id)
	t.recs.Release(i)
	t.n--
}

// compact shrinks the index and the ids' arena after removals.
func (t *users) compact() {
	t.index.Shrink()
	t.ids.Compact(func(move func(arena.Ref) arena.Ref) {
		for i := range t.numbers() {
			if t.held(i) {
				u := t.rec(i)
				u.id = move(u.id)
			}
		}
	})
}

// len returns the number of users held.
func (t *users) len() int { return t.n }

// hashID is the hash of a user id in the index.
func hashID(id string) uint64 { return xxhash.Sum64String(id) }
