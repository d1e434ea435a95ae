package histogram

import (
	"math/rand/v2"
	"testing"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// TestMatchesHdrHistogram: buckets and quantiles are hdrhistogram-go's.
func TestMatchesHdrHistogram(t *testing.T) {
	h := hdr.New(1, 1<<40, SigFigs)
	for _, v := range []int64{1, 2, 2047, 2048, 2049, 4095, 4096, 4097, 123_456, 1_800_000, 1 << 39} {
		lo := Lowest(v)
		if !h.ValuesAreEquivalent(v, lo) || h.ValuesAreEquivalent(v, lo-1) && lo > 0 {
			t.Fatalf("Lowest(%d) = %d is not the bucket's lowest value", v, lo)
		}
		if hi := highest(lo); !h.ValuesAreEquivalent(v, hi) || h.ValuesAreEquivalent(v, hi+1) {
			t.Fatalf("highest(%d) = %d", lo, hi)
		}
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for round := range 50 {
		h.Reset()
		var s Sparse
		n := 1 + rng.IntN(2000)
		scale := int64(1) << rng.IntN(30)
		for range n {
			v := rng.Int64N(scale) + 1
			h.RecordValue(v)
			s.Record(v)
		}
		for _, q := range []float64{0.1, 1, 25, 50, 90, 99, 99.9, 100} {
			got, _ := s.Quantile(q)
			if want := h.ValueAtQuantile(q); got != want {
				t.Fatalf("round %d q%v: %d, hdrhistogram-go %d", round, q, got, want)
			}
		}
	}
}

func TestMergeExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	var all Sparse
	parts := make([]Sparse, 4)
	for range 5000 {
		v := rng.Int64N(1_000_000)
		all.Record(v)
		parts[rng.IntN(4)].Record(v)
	}
	var m Sparse
	for i := range parts {
		m.Merge(&parts[i])
	}
	if !m.Equal(&all) || m.Total() != 5000 {
		t.Fatal("merge of parts differs from the whole")
	}
	var empty Sparse
	if _, ok := empty.Quantile(50); ok {
		t.Fatal("quantile of empty")
	}
}

// TestAddFromIsMerge: AddFrom gives Merge's buckets, for random sparse
// histograms (overlapping, disjoint, empty, contained).
func TestAddFromIsMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		var a, b Sparse
		for range rng.IntN(20) {
			a.RecordN(rng.Int64N(1<<uint(rng.IntN(30))), 1+rng.Int64N(3))
		}
		for range rng.IntN(20) {
			b.RecordN(rng.Int64N(1<<uint(rng.IntN(30))), 1+rng.Int64N(3))
		}
		if rng.IntN(4) == 0 { // b within a
			b = Sparse{}
			for _, x := range a.Buckets {
				if rng.IntN(2) == 0 {
					b.RecordN(x.Value, 2)
				}
			}
		}
		want := a.Clone()
		want.Merge(&b)
		got := a.Clone()
		got.AddFrom(&b)
		if !got.Equal(&want) {
			t.Fatalf("%v + %v: AddFrom %v, Merge %v", a.Buckets, b.Buckets, got.Buckets, want.Buckets)
		}
	}
}
