package bots

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestEntitiesAgainstMap: interning, lookups and sweeps agree with a map,
// through growth and shrinking of the index.
func TestEntitiesAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ents := newEntities()
	want := map[string]uint32{}
	for step := range 200_000 {
		name := fmt.Sprintf("u%d", r.IntN(20_000))
		if step > 100_000 {
			name = fmt.Sprintf("u%d", r.IntN(300)) // fewer: the index shrinks
		}
		i := ents.id(name)
		if j, ok := want[name]; ok && i != j {
			t.Fatalf("step %d: %s is %d, was %d", step, name, i, j)
		}
		want[name] = i
		ents.rec(i).last = int64(step)
		if step%5_000 == 4_999 {
			cut := int64(step - 2_000)
			ents.sweep(cut)
			for n, i := range want {
				if ents.name(i) != n {
					delete(want, n)
				}
			}
		}
		if ents.len() != len(want) || ents.index.Len() != len(want) {
			t.Fatalf("step %d: %d entities, index %d, want %d", step, ents.len(), ents.index.Len(), len(want))
		}
	}
	for n, i := range want {
		if j, ok := ents.index.Find(hashName(n), func(i uint32) bool { return ents.name(i) == n }); !ok || j != i {
			t.Fatalf("%s: %d %v, want %d", n, j, ok, i)
		}
	}
	if ents.index.Slots() > 4096 {
		t.Fatalf("index not shrunk: %d slots for %d", ents.index.Slots(), len(want))
	}
}

// TestEntitiesSweepForgetsLastLookup: a sweep that forgets the entity
// looked up last (a watermark far ahead evicts every pane) also forgets
// the run shortcut, so the next lookup of its id interns it again.
func TestEntitiesSweepForgetsLastLookup(t *testing.T) {
	ents := newEntities()
	i := ents.id("u1")
	ents.rec(i).last = 10
	ents.sweep(math.MaxInt64)
	if ents.len() != 0 {
		t.Fatalf("%d entities after sweeping every one", ents.len())
	}
	j := ents.id("u1")
	if ents.name(j) != "u1" || ents.len() != 1 {
		t.Fatalf("u1 after a sweep: number %d named %q, %d entities", j, ents.name(j), ents.len())
	}
	if k, ok := ents.index.Find(hashName("u1"), func(i uint32) bool { return ents.name(i) == "u1" }); !ok || k != j {
		t.Fatalf("u1 not in the index after a sweep: %d %v", k, ok)
	}
}
