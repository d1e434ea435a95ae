package minheap

import (
	"container/heap"
	"math/rand/v2"
	"testing"
)

type pair struct{ k, seq int }

func less(a, b *pair) bool { return a.k < b.k || a.k == b.k && a.seq < b.seq }

// ref is the same heap through container/heap.
type ref []pair

func (r ref) Len() int           { return len(r) }
func (r ref) Less(i, j int) bool { return less(&r[i], &r[j]) }
func (r ref) Swap(i, j int)      { r[i], r[j] = r[j], r[i] }
func (r *ref) Push(x any)        { *r = append(*r, x.(pair)) }
func (r *ref) Pop() any {
	old := *r
	x := old[len(old)-1]
	*r = old[:len(old)-1]
	return x
}

// Every step leaves the slice exactly as container/heap leaves it, so a
// run or a snapshot does not change with the implementation.
func TestSameOrderAsContainerHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := Heap[pair]{Less: less}
	var r ref
	same := func(step int) {
		if len(h.S) != len(r) {
			t.Fatalf("step %d: %d elements, container/heap %d", step, len(h.S), len(r))
		}
		for i := range r {
			if h.S[i] != r[i] {
				t.Fatalf("step %d: element %d is %v, container/heap has %v", step, i, h.S[i], r[i])
			}
		}
	}
	for step := range 5000 {
		switch {
		case step == 2500: // restore from an unordered slice
			s := append([]pair(nil), h.S...)
			rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
			h.S, r = s, append(ref(nil), s...)
			h.Init()
			heap.Init(&r)
		case h.Len() == 0 || rng.IntN(3) > 0:
			x := pair{k: rng.IntN(50), seq: step}
			h.Push(x)
			heap.Push(&r, x)
		default:
			if got, want := h.Pop(), heap.Pop(&r).(pair); got != want {
				t.Fatalf("step %d: Pop %v, container/heap %v", step, got, want)
			}
		}
		same(step)
	}
}
