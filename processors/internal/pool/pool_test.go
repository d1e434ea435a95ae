package pool

import "testing"

// TestPool: numbers start at 1, nodes come zero, pointers stay valid as
// chunks are added, and freed numbers are reused before new ones.
func TestPool(t *testing.T) {
	p := New[[2]uint64](2) // chunks of 4
	var ptrs []*[2]uint64
	for i := range 10 {
		n := p.Alloc()
		if n != uint32(i+1) || *p.At(n) != [2]uint64{} {
			t.Fatalf("alloc %d: number %d, node %v", i, n, *p.At(n))
		}
		p.At(n)[0] = uint64(n)
		ptrs = append(ptrs, p.At(n))
	}
	for i, q := range ptrs {
		if q[0] != uint64(i+1) || q != p.At(uint32(i+1)) {
			t.Fatalf("node %d moved or changed: %v", i+1, *q)
		}
	}
	p.Release(3)
	p.Release(7)
	if a, b, c := p.Alloc(), p.Alloc(), p.Alloc(); a != 7 || b != 3 || c != 11 || *p.At(a) != [2]uint64{} {
		t.Fatalf("after freeing 3 and 7: %d %d %d", a, b, c)
	}
	if p.Nums() != 11 {
		t.Fatalf("%d numbers handed out, want 11", p.Nums())
	}
}
