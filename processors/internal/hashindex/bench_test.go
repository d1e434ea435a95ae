package hashindex

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkFind times a lookup of a present number (what an event of a
// known user or auction does) in indexes of 40 k to 400 k numbers, with
// the index's bytes per number; and BenchmarkChurn an insert and a remove
// (a new auction, an evicted one) at a steady size. The code is the same
// for any table layout, so the file can be copied into another tree to
// compare.
func BenchmarkFind(b *testing.B) {
	for _, n := range []int{40_000, 50_000, 100_000, 400_000} {
		b.Run(fmt.Sprintf("n=%dk", n/1000), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			hashes := make([]uint64, n)
			var x Index
			for i := range hashes {
				hashes[i] = rng.Uint64()
				x.Insert(hashes[i], uint32(i))
			}
			order := rng.Perm(n)
			b.ResetTimer()
			for i := range b.N {
				j := uint32(order[i%n])
				if _, ok := x.Find(hashes[j], func(k uint32) bool { return k == j }); !ok {
					b.Fatal("lost")
				}
			}
			b.ReportMetric(float64(8*x.Slots())/float64(n), "B/number")
		})
	}
}

func BenchmarkChurn(b *testing.B) {
	const n = 100_000
	rng := rand.New(rand.NewPCG(3, 4))
	hashes := make([]uint64, n)
	var x Index
	for i := range hashes {
		hashes[i] = rng.Uint64()
		x.Insert(hashes[i], uint32(i))
	}
	b.ResetTimer()
	for i := range b.N {
		j := uint32(i % n)
		x.Remove(hashes[j], j)
		hashes[j] = rng.Uint64()
		x.Insert(hashes[j], j)
	}
}
