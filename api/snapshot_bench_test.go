package api

import (
	"fmt"
	"testing"
)

// benchFold is a fold of n claims on 16 drops, as TestCatchUp's log.
func benchFold(n int) *Fold {
	f := NewFoldRetention(0, DefaultClaimsRetention)
	for d := range 16 {
		f.Apply(f.next, &Record{Kind: KindStart, DropID: fmt.Sprintf("d%d", d), At: 1, Inventory: inv(int64(n / 32))})
	}
	for i := range n {
		r := claimRec(2, fmt.Sprintf("d%d", i%16), fmt.Sprintf("c%d", i), fmt.Sprintf("u%d", i%5000))
		f.Apply(f.next, &r)
	}
	return f
}

// BenchmarkSnapshotEncode, BenchmarkSnapshotDecode: a claims fold of
// 250,000 decisions (one partition of TestCatchUp's million).
func BenchmarkSnapshotEncode(b *testing.B) {
	f := benchFold(250_000)
	b.ResetTimer()
	for range b.N {
		encodeSnapshot(snapshotHeader{Partitions: 4, Layout: 4}, f)
	}
}

func BenchmarkSnapshotDecode(b *testing.B) {
	buf := encodeSnapshot(snapshotHeader{Partitions: 4, Layout: 4}, benchFold(250_000))
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, _, err := decodeSnapshot(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshotView: the pause a snapshot makes in folding.
func BenchmarkSnapshotView(b *testing.B) {
	f := benchFold(250_000)
	b.ResetTimer()
	for range b.N {
		f.view()
	}
}
