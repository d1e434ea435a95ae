package bots

import (
	"math"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// entities interns the entity ids (user or device ids) of a Processor to
// dense integers, so that the panes hold small pointer-free records instead
// of string-keyed maps. An id is forgotten (and its number reused) once no
// live pane holds it.
type entities struct {
	index nameIndex
	recs  []entity // by number
	free  []uint32
	n     int // entities held
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

func newEntities() entities { return entities{} }

// id returns the number of name, interning a copy of it (decoded strings
// share their record's allocation).
func (t *entities) id(name string) uint32 {
	if name == t.lastName && name != "" {
		return t.lastID
	}
	h := hashName(name)
	if i, ok := t.index.find(h, name, t.recs); ok {
		t.lastName, t.lastID = t.recs[i].name, i
		return i
	}
	name = strings.Clone(name)
	var i uint32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
		t.recs[i] = entity{name: name, last: math.MinInt64}
	} else {
		i = uint32(len(t.recs))
		t.recs = append(t.recs, entity{name: name, last: math.MinInt64})
	}
	t.index.insert(h, i)
	t.n++
	t.lastName, t.lastID = name, i
	return i
}

// sweep forgets the entities whose newest pane starts at or before cut
// (every pane of theirs is evicted).
func (t *entities) sweep(cut int64) {
	t.lastName = ""
	for i := range t.recs {
		if e := &t.recs[i]; e.name != "" && e.last <= cut {
			t.index.remove(hashName(e.name), uint32(i))
			e.name = ""
			t.free = append(t.free, uint32(i))
			t.n--
		}
	}
	t.index.shrink(t.n)
}

// len returns the number of entities held.
func (t *entities) len() int { return t.n }

// nameIndex finds an entity's number by its name: open addressing with
// linear probing and backward-shift deletion, one 8-byte slot per entity
// (the high 32 bits of the name's hash, the number + 1 in the low bits; 0
// is empty), at most 3/4 full. A match of the hash bits is confirmed
// against the name itself, so lookups are exact. It takes about a third of
// the memory of a map[string]uint32 (whose entries hold a string header).
type nameIndex struct {
	slots []uint64
	n     int
}

// home returns the slot where a name starts probing, from tag, the high
// 32 bits of its hash.
func (x *nameIndex) home(tag uint32) uint64 { return uint64(tag) & uint64(len(x.slots)-1) }

// slot returns the slot value of entity i, of hash h: h's high 32 bits
// and i + 1 (never 0, the empty slot).
func slot(h uint64, i uint32) uint64 { return h&^(1<<32-1) | uint64(i+1) }

// find returns the number of the entity named name, of hash h.
func (x *nameIndex) find(h uint64, name string, recs []entity) (uint32, bool) {
	if x.n == 0 {
		return 0, false
	}
	mask := uint64(len(x.slots) - 1)
	tag := uint32(h >> 32)
	for j := x.home(tag); ; j = (j + 1) & mask {
		s := x.slots[j]
		if s == 0 {
			return 0, false
		}
		if uint32(s>>32) == tag {
			if i := uint32(s) - 1; recs[i].name == name {
				return i, true
			}
		}
	}
}

// insert adds entity i, of hash h (absent).
func (x *nameIndex) insert(h uint64, i uint32) {
	if (x.n+1)*4 > len(x.slots)*3 {
		x.resize(max(1024, 2*len(x.slots)))
	}
	x.put(slot(h, i))
	x.n++
}

func (x *nameIndex) put(s uint64) {
	mask := uint64(len(x.slots) - 1)
	j := x.home(uint32(s >> 32))
	for x.slots[j] != 0 {
		j = (j + 1) & mask
	}
	x.slots[j] = s
}

// remove deletes entity i, of hash h (present).
func (x *nameIndex) remove(h uint64, i uint32) {
	mask := uint64(len(x.slots) - 1)
	want := slot(h, i)
	j := x.home(uint32(h >> 32))
	for x.slots[j] != want {
		j = (j + 1) & mask
	}
	// Shift back the entries of the probe run that would no longer be
	// reachable from their home slot.
	for k := j; ; {
		k = (k + 1) & mask
		v := x.slots[k]
		if v == 0 {
			break
		}
		home := x.home(uint32(v >> 32))
		// v stays if its home lies cyclically in (j, k].
		if j <= k && j < home && home <= k || j > k && (j < home || home <= k) {
			continue
		}
		x.slots[j] = v
		j = k
	}
	x.slots[j] = 0
	x.n--
}

// shrink halves the table while it is less than 1/8 full (after sweeps).
func (x *nameIndex) shrink(n int) {
	size := len(x.slots)
	for size > 1024 && n*8 < size {
		size /= 2
	}
	if size != len(x.slots) {
		x.resize(size)
	}
}

func (x *nameIndex) resize(size int) {
	old := x.slots
	x.slots = make([]uint64, size)
	for _, s := range old {
		if s != 0 {
			x.put(s)
		}
	}
}

// hashName is the hash of an entity id in the index.
func hashName(name string) uint64 { return xxhash.Sum64String(name) }
