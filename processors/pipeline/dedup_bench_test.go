package pipeline

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkDedup times the remembered-id set per event: from empty
// (growing) to 1 M ids, and in steady states of about 0.6 to 1.4 M ids
// (one id per event, 2 ms of event time apart, horizons of 1,200 to
// 2,800 s: each event forgets as many ids as it adds; a set's load, and
// so its speed and bytes per id, depends on where the number of ids falls
// between two of its sizes, so several are measured). The code is the
// same for any set layout, so the file can be copied into another tree to
// compare.
func BenchmarkDedup(b *testing.B) {
	const step = 2 // ms
	b.Run("grow", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			d := newDedup(2_000_000)
			for i := range int64(1_000_000) {
				d.evict(i * step)
				d.remember(rng.Uint64(), secs(i*step))
			}
		}
	})
	for _, ids := range []int64{600_000, 800_000, 1_000_000, 1_200_000, 1_400_000} {
		b.Run(fmt.Sprintf("steady=%dk", ids/1000), func(b *testing.B) {
			horizon := ids * step
			rng := rand.New(rand.NewPCG(3, 4))
			d := newDedup(horizon)
			i := int64(0)
			for ; i < 3*horizon/step; i++ {
				d.evict(i * step)
				d.remember(rng.Uint64(), secs(i*step))
			}
			b.ResetTimer()
			for range b.N {
				d.evict(i * step)
				d.remember(rng.Uint64(), secs(i*step))
				i++
			}
			b.ReportMetric(float64(len(d.seen.slots)*8)/float64(d.seen.n), "set-B/id")
		})
	}
}
