// Package hashindex finds small numbers (a processor's dense ids of users,
// entities or auctions) by the 64-bit hash of their name, one 8-byte slot
// per number: the high 32 bits of the hash (its tag) above the number + 1
// (0 is empty). The caller keeps the names: a match of the tag is
// confirmed against the caller's name of the number, so lookups are exact.
// It takes less than a third of the memory of a map[string]uint32, whose
// entries hold a string header (about a third already with the
// power-of-two table it had before), and grows without hashing the names
// again.
//
// The table is ordered linear probing (Amble and Knuth, 1974): a tag's
// home slot is the tag scaled to the table's size (tag·size/2^32), so
// homes follow the tags' order. Invariants: a slot value sits at or after
// its home with no empty slot in between, and the occupied slots, read in
// order, hold the values in increasing order (which follows from the
// first, as the homes do). A lookup stops at the first larger tag, an
// insertion shifts the rest of its run one slot on, a removal shifts back
// the values displaced after it (no tombstones), and a resize places the
// values in one pass in order. The table grows by 5/4 once more than 7/8
// of its home slots would be full (0.70 to 0.875 full once grown: 9.1 to
// 11.4 bytes per number; the power-of-two table with linear probing it
// replaces was at most 3/4 full, 10.7 to 21.3 bytes per number). Runs
// spilling past the last home slot take the spill slots after it (more
// are added when one spills further); the last slot of the array is
// always empty, so a scan ends.
package hashindex

// Index is the index. The zero value is empty and ready.
type Index struct {
	slots []uint64 // size home slots, then the spill; 0: empty
	size  int      // home slots, below 2^32
	n     int
}

// Sizes of the table: the smallest (home slots), growth by growNum/growDen,
// the largest load loadNum/loadDen of the home slots, and the slots after
// the last home slot.
const (
	minSlots = 1024
	growNum  = 5
	growDen  = 4
	loadNum  = 7
	loadDen  = 8
	spill    = 64
)

// home returns the home slot of tag.
func (x *Index) home(tag uint32) int { return int(uint64(tag) * uint64(x.size) >> 32) }

// slot returns the slot value of number i, of hash h: h's high 32 bits
// and i + 1 (never 0, the empty slot).
func slot(h uint64, i uint32) uint64 { return h&^(1<<32-1) | uint64(i+1) }

// Find returns the number of hash h for which is reports true (is(i):
// the caller's name of number i is the one looked up).
func (x *Index) Find(h uint64, is func(i uint32) bool) (uint32, bool) {
	if x.n == 0 {
		return 0, false
	}
	tag := uint32(h >> 32)
	for j := x.home(tag); ; j++ {
		s := x.slots[j]
		if s == 0 || uint32(s>>32) > tag {
			return 0, false
		}
		if uint32(s>>32) == tag {
			if i := uint32(s) - 1; is(i) {
				return i, true
			}
		}
	}
}

// Insert adds number i, of hash h (absent).
func (x *Index) Insert(h uint64, i uint32) {
	if (x.n+1)*loadDen > x.size*loadNum {
		size := minSlots
		if x.size > 0 {
			size = x.size * growNum / growDen
		}
		x.resize(size)
	}
	s := slot(h, i)
	j := x.home(uint32(h >> 32))
	for x.slots[j] != 0 && x.slots[j] < s {
		j++
	}
	e := j // the first empty slot from j, which the run's rest moves into
	for x.slots[e] != 0 {
		e++
	}
	if e == len(x.slots)-1 { // keep the last slot empty
		x.spill()
	}
	copy(x.slots[j+1:e+1], x.slots[j:e])
	x.slots[j] = s
	x.n++
}

// spill adds spill empty slots at the end of the array.
func (x *Index) spill() {
	slots := make([]uint64, len(x.slots)+spill)
	copy(slots, x.slots)
	x.slots = slots
}

// Remove deletes number i, of hash h (present).
func (x *Index) Remove(h uint64, i uint32) {
	want := slot(h, i)
	j := x.home(uint32(h >> 32))
	for x.slots[j] != want {
		j++
	}
	// Move back by one slot the values after j that are past their home.
	k := j + 1
	for v := x.slots[k]; v != 0 && x.home(uint32(v>>32)) < k; v = x.slots[k] {
		k++
	}
	copy(x.slots[j:k-1], x.slots[j+1:k])
	x.slots[k-1] = 0
	x.n--
}

// Shrink halves the table while it is less than 1/8 full (after many
// removals).
func (x *Index) Shrink() {
	size := x.size
	for size > minSlots && x.n*8 < size {
		size = max(minSlots, size/2)
	}
	if size != x.size {
		x.resize(size)
	}
}

// Len returns the number of numbers indexed.
func (x *Index) Len() int { return x.n }

// Slots returns the size of the table (home slots).
func (x *Index) Slots() int { return x.size }

// resize makes the table size home slots, placing the values in their
// order, each at its new home or just after the one before it.
func (x *Index) resize(size int) {
	old := x.slots
	x.size = size
	x.slots = make([]uint64, size+spill)
	p := 0
	for _, v := range old {
		if v == 0 {
			continue
		}
		p = max(p, x.home(uint32(v>>32)))
		if p == len(x.slots)-1 {
			x.spill()
		}
		x.slots[p] = v
		p++
	}
}
