package processors

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/questline/questline/processors/tables"
)

// TestRefusedCountersStartAtZero: questline_processor_rows_refused_total
// has every table's series at 0 from the start. increase() sees nothing
// of a series whose first sample is already 1, so QuestlineRowsDeadLettered
// (alerts/) would miss a process's first refused rows.
func TestRefusedCountersStartAtZero(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry(), nil)
	for _, table := range []string{tables.OfferYield.Name, tables.QuestConversions.Name, tables.BotSignals.Name, tables.LateEvents.Name} {
		if n := testutil.CollectAndCount(m.refused); n != 8 {
			t.Fatalf("%d series of questline_processor_rows_refused_total at start, want one per table (8)", n)
		}
		if v := testutil.ToFloat64(m.refused.WithLabelValues(table)); v != 0 {
			t.Errorf("%s: %v", table, v)
		}
	}
}

// TestWatermarkLagAtScrape: the lag is the clock at the scrape minus the
// watermark of the last flush, so a stage that stops flushing (stuck on
// ClickHouse or Kafka) shows a growing lag; a gauge set by the flush kept
// its last value and QuestlineWatermarkLagHigh could not fire.
func TestWatermarkLagAtScrape(t *testing.T) {
	now := time.UnixMilli(1767225600000)
	m := newMetrics(prometheus.NewRegistry(), func() time.Time { return now })
	m.watermarkLag.set(3, now.UnixMilli()-30_000)
	if v := testutil.ToFloat64(m.watermarkLag); v != 30 {
		t.Fatalf("lag %v s, want 30", v)
	}
	now = now.Add(10 * time.Minute) // no flush since
	if v := testutil.ToFloat64(m.watermarkLag); v != 630 {
		t.Fatalf("lag %v s after 10 minutes without a flush, want 630", v)
	}
	m.watermarkLag.drop(3)
	if n := testutil.CollectAndCount(m.watermarkLag); n != 0 {
		t.Fatalf("%d series after the partition was revoked", n)
	}
}
