package pipeline

// hashSet is a set of 64-bit hashes: an ordered linear-probing table
// (Amble and Knuth, 1974). A hash's key is its low 32 bits, and its home
// slot the key scaled to the table's size (key·size/2^32), so homes follow
// the keys' order. Invariants: a hash sits at or after its home with no
// empty slot in between, and the occupied slots, read in order, hold the
// hashes in the order of their keys (which follows from the first, as the
// homes do). So a lookup stops at the first larger key, an insertion
// shifts the rest of its run one slot on, a deletion shifts back the
// hashes displaced after it (no tombstones), the hashes of one key are
// next to each other, and a resize places the hashes in one pass in order
// (no random writes).
//
// Memory: 8 bytes per slot; the table grows by 3/2 once more than 4/5 of
// its home slots would be full, so a grown table is 0.53 to 0.80 full:
// 10 to 15 bytes per hash, 12.3 on average over sizes (the power-of-two
// table with linear probing it replaces was 0.375 to 0.75 full, 10.7 to
// 21.3 bytes per hash, 15.4 on average). It shrinks by half below 1/8
// full. Growth by 5/4 up to 7/8 full (10.2 bytes on average) took a
// third more CPU while growing and longer runs when nearly full
// (docs/benchmarks/processors.md, session 8). Runs spilling past the last home slot
// take the setSpill slots after it (more are added when one spills
// further); the last slot of the array is always empty, so a scan ends.
type hashSet struct {
	slots []uint64 // size home slots, then the spill; 0: empty
	size  int      // home slots, below 2^32
	n     int      // entries in slots
	zero  bool     // the hash 0, which cannot be stored in a slot
}

// Sizes of the table: the smallest (home slots), its growth (size·3/2),
// its largest load (4/5 of the home slots), and the slots after the last
// home slot.
const (
	setMinSize     = 1024
	setGrowNum     = 3
	setGrowDen     = 2
	setLoadNum     = 4
	setLoadDen     = 5
	setSpill       = 64
	setShrinkBelow = 8 // shrinks to half when fewer than size/8 are held
)

// home returns the home slot of key k.
func (s *hashSet) home(k uint32) int { return int(uint64(k) * uint64(s.size) >> 32) }

// grownSize returns the size the table grows to from size.
func grownSize(size int) int {
	if size == 0 {
		return setMinSize
	}
	return size * setGrowNum / setGrowDen
}

// add inserts h and reports whether it was absent and, if it was, how
// many other hashes of the set have its key. The hashes of one key are
// next to each other in the run from the key's home slot, which add walks
// to its place.
func (s *hashSet) add(h uint64) (added bool, others int) {
	if h == 0 {
		if s.zero {
			return false, 0
		}
		s.zero = true
		return true, s.count(0) - 1
	}
	if (s.n+1)*setLoadDen > s.size*setLoadNum {
		s.resize(grownSize(s.size))
	}
	k := uint32(h)
	i := s.home(k)
	for ; ; i++ {
		v := s.slots[i]
		if v == 0 || uint32(v) > k {
			break
		}
		if uint32(v) == k {
			if v == h {
				return false, 0
			}
			others++
		}
	}
	e := i // the first empty slot from i, which the run's rest moves into
	for s.slots[e] != 0 {
		e++
	}
	if e == len(s.slots)-1 { // keep the last slot empty
		s.spill()
	}
	copy(s.slots[i+1:e+1], s.slots[i:e])
	s.slots[i] = h
	s.n++
	if k == 0 && s.zero {
		others++
	}
	return true, others
}

// spill adds setSpill empty slots at the end of the array.
func (s *hashSet) spill() {
	slots := make([]uint64, len(s.slots)+setSpill)
	copy(slots, s.slots)
	s.slots = slots
}

// count returns the number of hashes of key k in the set.
func (s *hashSet) count(k uint32) int {
	n := 0
	if k == 0 && s.zero {
		n++
	}
	if s.size == 0 {
		return n
	}
	for i := s.home(k); s.slots[i] != 0 && uint32(s.slots[i]) <= k; i++ {
		if uint32(s.slots[i]) == k {
			n++
		}
	}
	return n
}

// delKey removes the hashes of key k: all of them, or the first found
// (the caller knows there is one).
func (s *hashSet) delKey(k uint32, all bool) {
	if k == 0 && s.zero {
		s.zero = false
		if !all {
			return
		}
	}
	if s.size == 0 {
		return
	}
	for i := s.home(k); s.slots[i] != 0 && uint32(s.slots[i]) <= k; {
		if uint32(s.slots[i]) != k {
			i++
			continue
		}
		s.delAt(i) // the next of the key, if any, is now at i
		if !all {
			break
		}
	}
	if s.size > setMinSize && s.n*setShrinkBelow < s.size {
		s.resize(max(setMinSize, s.size/2))
	}
}

// delAt removes the hash in slot i, moving back by one slot the hashes
// after it that are past their home slot.
func (s *hashSet) delAt(i int) {
	j := i + 1
	for v := s.slots[j]; v != 0 && s.home(uint32(v)) < j; v = s.slots[j] {
		j++
	}
	copy(s.slots[i:j-1], s.slots[i+1:j])
	s.slots[j-1] = 0
	s.n--
}

// reserve makes the table as large as n hashes need.
func (s *hashSet) reserve(n int) {
	size := setMinSize
	for (n+1)*setLoadDen > size*setLoadNum {
		size = grownSize(size)
	}
	if size > s.size {
		s.resize(size)
	}
}

// appendTo appends the set's hashes to dst in the order of their keys (0
// first if held).
func (s *hashSet) appendTo(dst []uint64) []uint64 {
	if s.zero {
		dst = append(dst, 0)
	}
	for _, v := range s.slots {
		if v != 0 {
			dst = append(dst, v)
		}
	}
	return dst
}

// resize makes the table size home slots, placing the hashes in their
// order, each at its new home or just after the one before it.
func (s *hashSet) resize(size int) {
	old := s.slots
	s.size = size
	s.slots = make([]uint64, size+setSpill)
	p := 0
	for _, v := range old {
		if v == 0 {
			continue
		}
		p = max(p, s.home(uint32(v)))
		if p == len(s.slots)-1 {
			s.spill()
		}
		s.slots[p] = v
		p++
	}
}
