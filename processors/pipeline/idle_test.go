package pipeline

import (
	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/catalog"
	"slices"
	"testing"
)

// TestIdleEmissionFarAheadChangesNothing: the runtime's idle emission can
// run hours ahead of event time (a backfill: now − out-of-orderness); the
// pipeline's final rows must not depend on it.
func TestIdleEmissionFarAheadChangesNothing(t *testing.T) {
	cfg := testConfig()
	events := stream(0)
	ref := run(t, cfg, events, 1, 1, 0)
	for _, ahead := range []int64{20 * minute, 120 * minute, 24 * 60 * minute} {
		got := runAhead(t, cfg, events, ahead)
		for k, want := range ref {
			if !slices.Equal(got[k], want) {
				t.Errorf("ahead %d min: table %s differs (%d vs %d rows)\n%s", ahead/minute, k, len(got[k]), len(want), firstDiff(got[k], want))
			}
		}
	}
}

// runAhead is run on one partition with idle emissions ahead of event time.
func runAhead(t *testing.T, cfg Config, events []event.Event, ahead int64) map[string][]string {
	cat := catalog.New()
	for _, e := range testCatalog() {
		cat.Apply(&e)
	}
	p, err := New(cfg, cat)
	if err != nil {
		t.Fatal(err)
	}
	tb := newTables()
	for i := range events {
		p.Add(&events[i])
		if i%50 == 0 {
			tb.keep(p.Flush(p.Watermark()))
			p.Reset()
		}
		if i%333 == 0 {
			tb.keep(p.Flush(p.Watermark() + ahead))
			p.Reset()
		}
	}
	p.Advance(p.Watermark() + 1e9)
	tb.keep(p.Flush(p.Watermark()))
	p.Reset()
	return merged([]*tables{tb})
}
