package api

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRequestDurationIsWallTime: questline_api_request_duration_seconds
// measures the request on the wall clock, whatever the server clock
// (Clock) says: a request is not an hour long because the clock option
// reads an hour ago.
func TestRequestDurationIsWallTime(t *testing.T) {
	reg := prometheus.NewRegistry()
	past := time.Now().Add(-time.Hour)
	base := startInstance(t, newBroker(t), Registerer(reg), Clock(func() time.Time { return past })).srv.URL
	if a := call(t, base, "POST", "/v1/quests", serverKey, map[string]any{"quest_id": "q1", "min_duration_ms": 1000}); a.code != 200 {
		t.Fatalf("define: %d %v", a.code, a.body)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "questline_api_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() > 10 {
				t.Errorf("request duration: %d samples, sum %.1f s", h.GetSampleCount(), h.GetSampleSum())
			}
		}
		return
	}
	t.Error("questline_api_request_duration_seconds not registered")
}

// TestDecisionsGauge: questline_api_claims_decisions counts the decisions
// the fold holds (about 200 bytes of heap each: docs/benchmarks/api.md),
// so the memory the claims log costs each instance can be watched and
// alerted on; repeats add none. (It drops when drops are forgotten:
// TestClaimsRetention.)
func TestDecisionsGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	base := startInstance(t, newBroker(t), Registerer(reg)).srv.URL
	scheduleLive(t, base, "d1", 2)
	for _, c := range []string{"c1", "c2", "c3", "c1"} {
		call(t, base, "POST", "/v1/drops/d1/claims", serverKey, map[string]any{"claim_id": c, "user_id": "u-" + c})
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "questline_api_claims_decisions" {
			if got := mf.GetMetric()[0].GetGauge().GetValue(); got != 3 {
				t.Errorf("questline_api_claims_decisions = %v, want 3", got)
			}
			return
		}
	}
	t.Error("questline_api_claims_decisions not registered")
}
