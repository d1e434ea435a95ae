package bots

import (
	"math"

	"github.com/cespare/xxhash/v2"
	"github.com/questline/questline/processors/internal/arena"
	"github.com/questline/questline/processors/internal/hashindex"
	"github.com/questline/questline/processors/internal/pool"
)

// entities interns the entity ids (user or device ids) of a Processor to
// dense integers, so that the panes hold small pointer-free records instead
// of string-keyed maps. An id is forgotten (and its number reused) once no
// live pane holds it.
type entities struct {
	index hashindex.Index // by hashName, confirmed against the name
	names arena.Names     // the names of the records
	// The records by number (from 1), in chunks that never move (a slice
	// grown by append left ~4 times its final size to the garbage
	// collector on the way, in steps of 1.25), freed numbers reused.
	recs pool.Pool[entity]
	n    int // entities held
	// The last id looked up (a view of its name in names) and its
	// number: a partition's records come in runs of one user (a client's
	// batch), and a run skips the index. Cleared by sweep.
	lastName string
	lastID   uint32
}

// entity is what a Processor keeps of an entity, in one record (an event
// reads it all: one cache line, not one per field): 24 bytes, no pointer
// (32 bytes and a string of its own, 8 to 16 bytes more, before session 9).
type entity struct {
	last int64     // the newest pane start holding the entity
	name arena.Ref // in entities.names; "" (never an entity) for a free number
	// The entity's events in the pane (aggregate) numbered serial, its
	// newest: counted to find the panes where it is heavy.
	serial, count uint32
}

// entityBits: records in chunks of 1,024 (24 KiB).
const entityBits = 10

func newEntities() entities { return entities{recs: pool.New[entity](entityBits)} }

// rec returns the record of number i.
func (t *entities) rec(i uint32) *entity { return t.recs.At(i) }

// nums returns the highest number handed out (numbers start at 1).
func (t *entities) nums() uint32 { return t.recs.Nums() }

// id returns the number of name, interning a copy of it (decoded strings
// share their record's allocation).
func (t *entities) id(name string) uint32 {
	if name == t.lastName && name != "" {
		return t.lastID
	}
	h := hashName(name)
	if i, ok := t.index.Find(h, func(i uint32) bool { return t.names.Equal(t.rec(i).name, name) }); ok {
		t.lastName, t.lastID = t.name(i), i
		return i
	}
	i := t.recs.Alloc()
	if i > maxEntity {
		panic("bots: more entities than an event's word numbers")
	}
	*t.rec(i) = entity{name: t.names.Add(name), last: math.MinInt64}
	t.index.Insert(h, i)
	t.n++
	t.lastName, t.lastID = t.name(i), i
	return i
}

// name returns the name of number i, a view of the arena's bytes: clone
// it to keep it for long (a view keeps its whole chunk).
func (t *entities) name(i uint32) string { return t.names.View(t.rec(i).name) }

// sweep forgets the entities whose newest pane starts at or before cut
// (every pane of theirs is evicted), and compacts the names once most of
// their bytes are forgotten ones.
func (t *entities) sweep(cut int64) {
	t.lastName = ""
	for i := uint32(1); i <= t.nums(); i++ {
		if e := t.rec(i); e.name.Len() != 0 && e.last <= cut {
			t.index.Remove(hashName(t.name(i)), i)
			t.names.Free(e.name)
			t.recs.Release(i) // its name becomes "": free
			t.n--
		}
	}
	t.index.Shrink()
	t.names.Compact(func(move func(arena.Ref) arena.Ref) {
		for i := uint32(1); i <= t.nums(); i++ {
			if e := t.rec(i); e.name.Len() != 0 {
				e.name = move(e.name)
			}
		}
	})
}

// len returns the number of entities held.
func (t *entities) len() int { return t.n }

// hashName is the hash of an entity id in the index.
func hashName(name string) uint64 { return xxhash.Sum64String(name) }
