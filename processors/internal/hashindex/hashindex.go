// Package hashindex finds small numbers (a processor's dense ids of users,
// entities or auctions) by the 64-bit hash of their name: open addressing
// with linear probing and backward-shift deletion, one 8-byte slot per
// number (the high 32 bits of the hash, the number + 1 in the low bits; 0
// is empty), at most 3/4 full. The caller keeps the names: a match of the
// hash bits is confirmed against the caller's name of the number, so
// lookups are exact. It takes about a third of the memory of a
// map[string]uint32, whose entries hold a string header, and grows by
// copying 8-byte slots without hashing the names again.
package hashindex

// Index is the index. The zero value is empty and ready.
type Index struct {
	slots []uint64
	n     int
}

// minSlots is the smallest table.
const minSlots = 1024

// home returns the slot where a hash starts probing, from tag, its high
// 32 bits.
func (x *Index) home(tag uint32) uint64 { return uint64(tag) & uint64(len(x.slots)-1) }

// slot returns the slot value of number i, of hash h: h's high 32 bits
// and i + 1 (never 0, the empty slot).
func slot(h uint64, i uint32) uint64 { return h&^(1<<32-1) | uint64(i+1) }

// Find returns the number of hash h for which is reports true (is(i):
// the caller's name of number i is the one looked up).
func (x *Index) Find(h uint64, is func(i uint32) bool) (uint32, bool) {
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
			if i := uint32(s) - 1; is(i) {
				return i, true
			}
		}
	}
}

// Insert adds number i, of hash h (absent).
func (x *Index) Insert(h uint64, i uint32) {
	if (x.n+1)*4 > len(x.slots)*3 {
		x.resize(max(minSlots, 2*len(x.slots)))
	}
	x.put(slot(h, i))
	x.n++
}

func (x *Index) put(s uint64) {
	mask := uint64(len(x.slots) - 1)
	j := x.home(uint32(s >> 32))
	for x.slots[j] != 0 {
		j = (j + 1) & mask
	}
	x.slots[j] = s
}

// Remove deletes number i, of hash h (present).
func (x *Index) Remove(h uint64, i uint32) {
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

// Shrink halves the table while it is less than 1/8 full (after many
// removals).
func (x *Index) Shrink() {
	size := len(x.slots)
	for size > minSlots && x.n*8 < size {
		size /= 2
	}
	if size != len(x.slots) {
		x.resize(size)
	}
}

// Len returns the number of numbers indexed.
func (x *Index) Len() int { return x.n }

// Slots returns the size of the table.
func (x *Index) Slots() int { return len(x.slots) }

func (x *Index) resize(size int) {
	old := x.slots
	x.slots = make([]uint64, size)
	for _, s := range old {
		if s != 0 {
			x.put(s)
		}
	}
}
