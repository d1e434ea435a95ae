package pipeline

import (
	"slices"
	"testing"
)

// TestEarlyEmissionFarAheadChangesNothing: an emission watermark can run
// hours ahead of event time (Flush emits windows early without closing
// them); the pipeline's final rows must not depend on it.
func TestEarlyEmissionFarAheadChangesNothing(t *testing.T) {
	cfg := testConfig()
	events := stream(0)
	ref := run(t, cfg, events, 1, 1, 0)
	for _, ahead := range []int64{120 * minute, 24 * 60 * minute} {
		got := runIdle(t, cfg, events, 1, 50, 333, ahead)
		for k, want := range ref {
			if !slices.Equal(got[k], want) {
				t.Errorf("ahead %d min: table %s differs (%d vs %d rows)\n%s", ahead/minute, k, len(got[k]), len(want), firstDiff(got[k], want))
			}
		}
	}
}
