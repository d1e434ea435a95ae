package yield

import (
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/window"
)

// TestRetractedOrphanZeroRowsAfterReplay is TestRetractedOrphanZeroRows
// across a crash: a process writes the offer's windows (an orphan, an
// impression) and dies before the bid_request; its successor starts from
// the snapshot before them all and takes the three records in one flush,
// so it never emitted those windows. The rows its predecessor wrote must
// still be replaced by zero rows (helper-43 found latency's zero rows
// missing on such a replay; yield's had the same condition).
func TestRetractedOrphanZeroRowsAfterReplay(t *testing.T) {
	cfg := Config{Window: window.Spec{Size: 2 * time.Minute, Slide: time.Minute, Lateness: 10 * time.Minute}, Grace: 30 * time.Minute}
	events := []event.Event{
		mk{"X", t0 + 10*minute}.ev(event.OfferShown, placement("feed")),
		mk{"Y", t0 + 13*minute}.ev(event.BidRequest, req("other")),
		mk{"X", t0 + 5*minute}.ev(event.BidRequest, req("feed")),
	}
	// What ReplacingMergeTree(version) FINAL keeps: the highest version,
	// the later insert among equal ones.
	latest := map[[3]any]Row{}
	ilatest := map[[3]any]IntegrityRow{}
	keep := func(rows []Row, irows []IntegrityRow) {
		for _, r := range rows {
			if o, ok := latest[[3]any{r.Start, r.Placement, r.BidderID}]; !ok || r.Version >= o.Version {
				latest[[3]any{r.Start, r.Placement, r.BidderID}] = r
			}
		}
		for _, r := range irows {
			if o, ok := ilatest[[3]any{r.Start, r.Placement, r.Kind}]; !ok || r.Version >= o.Version {
				ilatest[[3]any{r.Start, r.Placement, r.Kind}] = r
			}
		}
	}
	wmk := window.NewWatermark(30 * time.Second)
	wms := make([]int64, len(events))
	for i := range events {
		wms[i] = wmk.Observe(events[i].EventTime)
	}
	first, _ := New(cfg, window.ScopeAll, nil)
	for i := range 2 {
		first.Add(&events[i], wms[i])
		keep(first.Flush(wms[i]))
	}
	written := len(latest) + len(ilatest)
	successor, _ := New(cfg, window.ScopeAll, nil)
	for i := range events {
		successor.Add(&events[i], wms[i])
	}
	end := wmk.Max() + 1e9
	successor.Advance(end)
	keep(successor.Flush(end))

	wantRows, wantInteg := Batch(cfg, window.ScopeAll, events, nil)
	want := map[[3]any]bool{}
	for _, r := range wantRows {
		want[[3]any{r.Start, r.Placement, r.BidderID}] = true
	}
	for k, r := range latest {
		if !want[k] && !r.Counts.zero() {
			t.Errorf("offer_yield %d..%d %q %q after the replay: %+v, want a zero row", (r.Start-t0)/minute, (r.End-t0)/minute, r.Placement, r.BidderID, r.Counts)
		}
	}
	iwant := map[[3]any]bool{}
	for _, r := range wantInteg {
		iwant[[3]any{r.Start, r.Placement, r.Kind}] = true
	}
	for k, r := range ilatest {
		if !iwant[k] && (r.Violations != 0 || r.Auctions != 0) {
			t.Errorf("bidstream_integrity %d..%d %q %s after the replay: %d violations of %d auctions, want a zero row", (r.Start-t0)/minute, (r.End-t0)/minute, r.Placement, r.Kind, r.Violations, r.Auctions)
		}
	}
	if written == 0 {
		t.Fatal("the first process wrote no row before the bid_request: the scenario did not happen")
	}
}
