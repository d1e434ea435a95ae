package processors

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/questline/questline/processors/tables"
)

// TestRefusedCountersStartAtZero: questline_processor_rows_refused_total
// has every table's series at 0 from the start. increase() sees nothing
// of a series whose first sample is already 1, so QuestlineRowsDeadLettered
// (alerts/) would miss a process's first refused rows.
func TestRefusedCountersStartAtZero(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	for _, table := range []string{tables.OfferYield.Name, tables.QuestConversions.Name, tables.BotSignals.Name, tables.LateEvents.Name} {
		if n := testutil.CollectAndCount(m.refused); n != 8 {
			t.Fatalf("%d series of questline_processor_rows_refused_total at start, want one per table (8)", n)
		}
		if v := testutil.ToFloat64(m.refused.WithLabelValues(table)); v != 0 {
			t.Errorf("%s: %v", table, v)
		}
	}
}
