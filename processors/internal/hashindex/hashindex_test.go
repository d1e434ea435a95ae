package hashindex

import (
	"math/rand/v2"
	"testing"
)

// TestAgainstMap: inserts, finds and removes agree with a map, through
// growth and shrinking, with hashes that collide in their low bits and
// in their tags (the caller's names tell numbers apart).
func TestAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var x Index
	names := map[uint32]uint64{} // number → name, standing for the caller's records
	byName := map[uint64]uint32{}
	hash := func(name uint64) uint64 { return (name % 5000) << 40 } // many equal tags
	next := uint32(0)
	for step := range 100_000 {
		name := uint64(r.IntN(20_000))
		if step > 60_000 {
			name = uint64(r.IntN(200))
		}
		i, ok := x.Find(hash(name), func(i uint32) bool { return names[i] == name })
		j, want := byName[name]
		if ok != want || ok && i != j {
			t.Fatalf("step %d: find %d = %d, %v; want %d, %v", step, name, i, ok, j, want)
		}
		switch {
		case !ok:
			x.Insert(hash(name), next)
			names[next], byName[name] = name, next
			next++
		case r.IntN(2) == 0:
			x.Remove(hash(name), i)
			delete(names, i)
			delete(byName, name)
			x.Shrink()
		}
		if x.Len() != len(byName) {
			t.Fatalf("step %d: %d indexed, want %d", step, x.Len(), len(byName))
		}
	}
	for name, i := range byName {
		if j, ok := x.Find(hash(name), func(i uint32) bool { return names[i] == name }); !ok || j != i {
			t.Fatalf("%d: %d, %v; want %d", name, j, ok, i)
		}
		x.Remove(hash(name), i)
		delete(names, i)
	}
	x.Shrink()
	if x.Len() != 0 || x.Slots() != minSlots {
		t.Fatalf("%d indexed in %d slots after removing all", x.Len(), x.Slots())
	}
}

// check checks the invariants of x: every value at or after its home slot
// with no empty slot in between, the values increasing, n of them, and
// the last slot empty.
func check(t *testing.T, x *Index) {
	t.Helper()
	if x.size == 0 {
		return
	}
	n, prev := 0, uint64(0)
	for i, v := range x.slots {
		if v == 0 {
			continue
		}
		n++
		h := x.home(uint32(v >> 32))
		for j := h; j < i; j++ {
			if x.slots[j] == 0 {
				t.Fatalf("slot %d: value %x of home %d with an empty slot between", i, v, h)
			}
		}
		if h > i || v <= prev {
			t.Fatalf("slot %d: value %x of home %d after %x", i, v, h, prev)
		}
		prev = v
	}
	if n != x.n || x.slots[len(x.slots)-1] != 0 || len(x.slots) < x.size+spill {
		t.Fatalf("%d values in %d slots (%d home), counted %d", n, len(x.slots), x.size, x.n)
	}
}

// TestOrderedRuns: many equal tags at the top of the tag range (runs from
// the last home slots, longer than the spill) and random ones keep the
// table's invariants through inserts, removals, growth and shrinking.
func TestOrderedRuns(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var x Index
	held := map[uint32]uint64{} // number → hash
	for step := range 50_000 {
		if len(held) > 0 && (step/10_000)%2 == 1 && r.IntN(4) != 0 {
			for i, h := range held {
				x.Remove(h, i)
				delete(held, i)
				break
			}
			x.Shrink()
		} else {
			h := r.Uint64()
			if r.IntN(3) == 0 {
				h = uint64(0xffff_fff0+r.IntN(16)) << 32
			}
			i := uint32(step)
			x.Insert(h, i)
			held[i] = h
		}
		if step%500 == 0 {
			check(t, &x)
		}
		if x.Len() != len(held) {
			t.Fatalf("step %d: %d indexed, want %d", step, x.Len(), len(held))
		}
	}
	check(t, &x)
	for i, h := range held {
		if j, ok := x.Find(h, func(j uint32) bool { return j == i }); !ok || j != i {
			t.Fatalf("%d: %d, %v", i, j, ok)
		}
	}
}
