package bots

import (
	"math"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/questline/questline/processors/internal/hashindex"
)

// entities interns the entity ids (user or device ids) of a Processor to
// dense integers, so that the panes hold small pointer-free records instead
// of string-keyed maps. An id is forgotten (and its number reused) once no
// live pane holds it.
type entities struct {
	index hashindex.Index // by hashName, confirmed against rec(i).name
	// The records by number, in chunks of entityChunk that never move (a
	// slice grown by append left ~4 times its final size to the garbage
	// collector on the way, in steps of 1.25).
	chunks []*[entityChunk]entity
	nums   int // numbers handed out: the records in chunks
	free   []uint32
	n      int // entities held
	// The last id looked up (its interned name) and its number: a
	// partition's records come in runs of one user (a client's batch),
	// and a run skips the index. Cleared by sweep.
	lastName string
	lastID   uint32
}

// entity is what a Processor keeps of an entity, in one record (an event
// reads it all: one cache line, not one per field).
type entity struct {
	name string // "" for a free number
	last int64  // the newest pane start holding the entity
	// The entity's events in the pane (aggregate) numbered serial, its
	// newest: counted to find the panes where it is heavy.
	serial, count uint32
}

// entityChunk is the number of records in a chunk (32 KiB).
const entityChunk = 1024

func newEntities() entities { return entities{} }

// rec returns the record of number i.
func (t *entities) rec(i uint32) *entity { return &t.chunks[i/entityChunk][i%entityChunk] }

// id returns the number of name, interning a copy of it (decoded strings
// share their record's allocation).
func (t *entities) id(name string) uint32 {
	if name == t.lastName && name != "" {
		return t.lastID
	}
	h := hashName(name)
	if i, ok := t.index.Find(h, func(i uint32) bool { return t.rec(i).name == name }); ok {
		t.lastName, t.lastID = t.rec(i).name, i
		return i
	}
	name = strings.Clone(name)
	var i uint32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		if t.nums == maxEntities {
			panic("bots: more entities than an event's word numbers")
		}
		i = uint32(t.nums)
		if t.nums%entityChunk == 0 {
			t.chunks = append(t.chunks, new([entityChunk]entity))
		}
		t.nums++
	}
	*t.rec(i) = entity{name: name, last: math.MinInt64}
	t.index.Insert(h, i)
	t.n++
	t.lastName, t.lastID = name, i
	return i
}

// sweep forgets the entities whose newest pane starts at or before cut
// (every pane of theirs is evicted).
func (t *entities) sweep(cut int64) {
	t.lastName = ""
	for i := range uint32(t.nums) {
		if e := t.rec(i); e.name != "" && e.last <= cut {
			t.index.Remove(hashName(e.name), uint32(i))
			e.name = ""
			t.free = append(t.free, uint32(i))
			t.n--
		}
	}
	t.index.Shrink()
}

// len returns the number of entities held.
func (t *entities) len() int { return t.n }

// hashName is the hash of an entity id in the index.
func hashName(name string) uint64 { return xxhash.Sum64String(name) }
