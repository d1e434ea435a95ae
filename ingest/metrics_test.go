package ingest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestAcceptedCountersStartAtZero: questline_ingest_events_accepted_total
// has the client and server series at 0 from the start, so that
// QuestlineIngestRejectsHigh (a ratio over it) has a value on an instance
// that rejects every event it receives.
func TestAcceptedCountersStartAtZero(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	if n := testutil.CollectAndCount(m.accepted); n != 2 {
		t.Fatalf("%d series of questline_ingest_events_accepted_total at start, want 2 (client, server)", n)
	}
}
