package latency

import (
	"bytes"
	"encoding/gob"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/window"
)

// TestZeroRowAfterReplay: a conversion's row is written under quest qa, a
// late completion of qb then takes the conversion over, and the process
// dies before the flush that would write qa's zero row. Its successor
// restores the older snapshot and replays both in one flush, a window it
// has never emitted: it must still write qa's zero row over the one in
// the table (helper-43: it wrote none, so FINAL counted the conversion
// under qa and qb).
func TestZeroRowAfterReplay(t *testing.T) {
	cfg := DefaultConfig()
	type key struct {
		start int64
		quest string
	}
	table := map[key]Row{} // what ReplacingMergeTree(version) FINAL keeps
	write := func(rows []Row) {
		for _, r := range rows {
			k := key{r.Start, r.QuestID}
			if o, ok := table[k]; !ok || r.Version >= o.Version {
				table[k] = r
			}
		}
	}
	events := []event.Event{
		comp("u1", "qa", t0+10*min),
		conv("c1", "u1", t0+13*min),
		conv("x", "u9", t0+20*min),  // the watermark passes [5, 15): c1's row under qa
		comp("u1", "qb", t0+12*min), // late, within lateness: c1 is qb's
		conv("y", "u9", t0+90*min),  // every window closes
	}
	wmk := window.NewWatermark(30 * time.Second)
	wms := make([]int64, len(events))
	for i := range events {
		wms[i] = wmk.Observe(events[i].EventTime)
	}
	p, err := New(cfg, window.ScopeAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	if err := gob.NewEncoder(&snap).Encode(p.Snapshot()); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		p.Add(&events[i], wms[i])
	}
	rows, _ := p.Flush(wms[2])
	write(rows)
	w := key{t0 + 5*min, "qa"}
	if table[w].Conversions != 1 {
		t.Fatalf("before the late completion: qa's row %+v, want 1 conversion", table[w])
	}
	// The process dies here; its successor restores the snapshot and
	// replays every record in one flush.
	var s State
	if err := gob.NewDecoder(&snap).Decode(&s); err != nil {
		t.Fatal(err)
	}
	q, _ := New(cfg, window.ScopeAll, nil)
	q.Restore(&s)
	for i := range events {
		q.Add(&events[i], wms[i])
	}
	rows, _ = q.Flush(wms[len(wms)-1])
	write(rows)
	if qa, qb, all := table[w].Conversions, table[key{w.start, "qb"}].Conversions, table[key{w.start, ""}].Conversions; qa != 0 || qb != 1 || all != 1 {
		t.Errorf("window [5, 15) after the replay: qa %d, qb %d, all quests %d; want 0, 1, 1", qa, qb, all)
	}
}
