package clickhouse

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSinkMetricsForAlerts: the series alerts/questline.rules.yml reads
// with increase() and rate() exist at 0 from the start (increase() sees
// nothing of a series born at 1), and a revoked partition's lag series
// goes (its last value would keep QuestlineSinkLagging firing).
func TestSinkMetricsForAlerts(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newSinkMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.deadLettered); n != 2 {
		t.Errorf("%d questline_sink_dead_lettered_total series at start, want 2 (refused, undecodable)", n)
	}
	if n := testutil.CollectAndCount(m.records); n != 2 {
		t.Errorf("%d questline_sink_records_total series at start, want 2 (the events and dead-letter topics)", n)
	}
	s := &Sink{m: m}
	m.lag.WithLabelValues("questline.events", "0").Set(5000)
	m.lag.WithLabelValues("questline.events", "1").Set(7)
	s.forgetLag(t.Context(), nil, map[string][]int32{"questline.events": {0}})
	if n := testutil.CollectAndCount(m.lag); n != 1 || testutil.ToFloat64(m.lag.WithLabelValues("questline.events", "1")) != 7 {
		t.Errorf("after partition 0 is revoked: %d lag series, want only partition 1's", n)
	}
}
