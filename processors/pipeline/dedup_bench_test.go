package pipeline

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkDedup times the remembered-id set per event: from empty
// (growing) to 1 M ids, and in a steady state of about 1 M ids (one id per
// event, 2 ms of event time apart, a horizon of 2,000 s: each event
// forgets as many ids as it adds). The code is the same for any set
// layout, so the file can be copied into another tree to compare.
func BenchmarkDedup(b *testing.B) {
	const horizon, step = 2_000_000, 2 // ms
	b.Run("grow", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			d := newDedup(horizon)
			for i := range int64(1_000_000) {
				d.evict(i * step)
				d.remember(rng.Uint64(), secs(i*step))
			}
		}
	})
	b.Run("steady", func(b *testing.B) {
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
