package api

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkClaim: claims answered by one instance (append to the claims
// log, wait for the fold, write the outcome event), 8 clients in parallel;
// half are granted, half sold out.
func BenchmarkClaim(b *testing.B) {
	brokers := newBroker(b)
	in := startInstance(b, brokers)
	scheduleLive(b, in.srv.URL, "bench", b.N/2)
	var n atomic.Int64
	b.SetParallelism(4) // × GOMAXPROCS (2) = 8 clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			a := call(b, in.srv.URL, "POST", "/v1/drops/bench/claims", serverKey, map[string]any{"claim_id": fmt.Sprint("b", i), "user_id": fmt.Sprint("u", i)})
			if o := outcome(a); o != "granted" && o != ReasonSoldOut {
				b.Errorf("claim %d: %d %v", i, a.code, a.body)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "claims/s")
}
