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
