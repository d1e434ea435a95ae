package latency

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestUsersAgainstMap: adding, finding and removing users (and the
// compaction of their ids) agree with a map, through growth and
// shrinking of the index; a record keeps what was put in it.
func TestUsersAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var us users
	want := map[string]int64{} // id → the T of its one completion
	for step := range 200_000 {
		id := fmt.Sprintf("u%d", r.IntN(20_000))
		if step > 100_000 {
			id = fmt.Sprintf("u%d", r.IntN(300)) // fewer: the index shrinks
		}
		if step%1000 == 0 {
			id = "" // an empty id is a user too
		}
		u := us.find(id)
		if _, ok := want[id]; ok != (u != nil) {
			t.Fatalf("step %d: %q found %v, want %v", step, id, u != nil, ok)
		}
		if u == nil {
			u = us.add(id)
		}
		u.Comps = append(u.Comps[:0], userComp{T: int64(step)})
		want[id] = int64(step)
		if step%5_000 == 4_999 {
			removed := false
			for n := range uint32(us.nums) {
				if us.held(n) && us.rec(n).Comps[0].T < int64(step-2_000) {
					delete(want, us.id(n))
					us.remove(n)
					removed = true
				}
			}
			if removed {
				us.compact()
			}
		}
		if us.len() != len(want) || us.index.Len() != len(want) {
			t.Fatalf("step %d: %d users, index %d, want %d", step, us.len(), us.index.Len(), len(want))
		}
	}
	for id, ts := range want {
		if u := us.find(id); u == nil || len(u.Comps) != 1 || u.Comps[0].T != ts {
			t.Fatalf("%q: %+v, want T %d", id, u, ts)
		}
	}
	if us.index.Slots() > 4096 {
		t.Fatalf("index not shrunk: %d slots for %d", us.index.Slots(), len(want))
	}
}
