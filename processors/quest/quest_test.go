package quest

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/internal/streamgen"
	"github.com/questline/questline/processors/window"
)

const min = 60_000

func ev(typ event.Type, user, quest string, t int64) event.Event {
	return event.Event{Type: typ, UserID: user, QuestID: quest, EventTime: t}
}

func rowString(r Row) string {
	rate := "NULL"
	if p := r.CompletionRate(); p != nil {
		rate = fmt.Sprintf("%.3f", *p)
	}
	return fmt.Sprintf("%d %q %s s=%d c=%d a=%d rate=%s", r.Start/min, r.QuestID, r.Scope, r.Starts, r.Completions, r.Abandons, rate)
}

func TestHandComputed(t *testing.T) {
	cfg := Config{Window: window.Spec{Size: 2 * time.Minute, Slide: time.Minute, Lateness: time.Minute}}
	p, err := New(cfg, window.ScopeAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	wmk := window.NewWatermark(0)
	var got []string
	add := func(e event.Event) {
		wm := wmk.Observe(e.EventTime)
		p.Add(&e, wm)
	}
	flush := func() {
		for _, r := range p.Flush(wmk.Time()) {
			got = append(got, rowString(r))
		}
	}
	add(ev(event.QuestStarted, "u1", "qa", 10*min+1000))
	add(ev(event.QuestStarted, "u2", "qa", 10*min+2000))
	add(ev(event.QuestCompleted, "u1", "qa", 11*min+0))
	add(ev(event.QuestAbandoned, "u3", "qb", 11*min+5000)) // no start in any window: rate NULL
	add(ev(event.Conversion, "u1", "qa", 11*min+6000))     // not a quest event
	flush()
	// wm = 11:06 has passed the end of [9,11) only.
	want := []string{
		`9 "" all s=2 c=0 a=0 rate=0.000`,
		`9 "qa" all s=2 c=0 a=0 rate=0.000`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows\n%v\nwant\n%v", got, want)
	}
	got = nil
	add(ev(event.QuestStarted, "u4", "qb", 12*min)) // wm 12:00: [10,12) ends
	flush()
	want = []string{
		`10 "" all s=2 c=1 a=1 rate=0.500`,
		`10 "qa" all s=2 c=1 a=0 rate=0.500`,
		`10 "qb" all s=0 c=0 a=1 rate=NULL`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows\n%v\nwant\n%v", got, want)
	}
	got = nil
	// The empty-window case: a window with only other events has no rows,
	// and a far watermark closes everything with rates that are never NaN.
	add(ev(event.Conversion, "u1", "", 30*min))
	p.Advance(60 * min)
	for _, r := range p.Flush(60 * min) {
		if r.Start/min >= 13 {
			t.Errorf("row for a window without quest events: %v", rowString(r))
		}
		if rp := r.CompletionRate(); rp != nil && (math.IsNaN(*rp) || math.IsInf(*rp, 0)) {
			t.Errorf("non-finite rate: %v", rowString(r))
		}
		got = append(got, rowString(r))
	}
	want = []string{
		`11 "" all s=1 c=1 a=1 rate=1.000`,
		`11 "qa" all s=0 c=1 a=0 rate=NULL`,
		`11 "qb" all s=1 c=0 a=1 rate=0.000`,
		`12 "" all s=1 c=0 a=0 rate=0.000`,
		`12 "qb" all s=1 c=0 a=0 rate=0.000`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows\n%v\nwant\n%v", got, want)
	}
	if p.Panes() != 0 {
		t.Fatalf("%d panes left", p.Panes())
	}
}

// stream runs one partition's events through a processor and returns the
// last row emitted for every identity.
func stream(t *testing.T, cfg Config, events []event.Event, disorder int64, flushEvery int) []Row {
	t.Helper()
	p, err := New(cfg, window.ScopeAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	wmk := window.NewWatermark(time.Duration(disorder) * time.Millisecond)
	latest := map[rowKey]Row{}
	keep := func(rows []Row) {
		for _, r := range rows {
			k := rowKey{r.Start, r.QuestID, r.Scope}
			if old, ok := latest[k]; ok && old.Version > r.Version {
				t.Fatalf("version went down for %v", k)
			}
			latest[k] = r
		}
	}
	for i := range events {
		wm := wmk.Observe(events[i].EventTime)
		if missed := p.Add(&events[i], wm); missed != 0 {
			t.Fatalf("event %d late within the disorder bound", i)
		}
		if i%flushEvery == 0 {
			keep(p.Flush(wm))
		}
	}
	p.Advance(wmk.Max() + 1e9)
	keep(p.Flush(wmk.Max() + 1e9))
	out := make([]Row, 0, len(latest))
	for _, r := range latest {
		out = append(out, r)
	}
	return out
}

func TestStreamingEqualsBatch(t *testing.T) {
	cfg := DefaultConfig()
	for seed := range uint64(8) {
		sc := streamgen.Config{Seed: seed, Events: 3000, Disorder: 90_000, Gap: 2000}
		events := streamgen.Generate(sc)
		want := Batch(cfg.Window, window.ScopeAll, events, nil)
		for _, n := range []int{1, 4} {
			var partials []Row
			for i, part := range streamgen.Partition(events, n) {
				partials = append(partials, stream(t, cfg, part, sc.Disorder, 1+i*37)...)
			}
			got := Merge(partials)
			if len(got) != len(want) {
				t.Fatalf("seed %d, %d partitions: %d rows, want %d", seed, n, len(got), len(want))
			}
			for i := range got {
				g, w := got[i], want[i]
				g.Version = 0
				if g != w {
					t.Fatalf("seed %d, %d partitions, row %d:\n%+v\nwant\n%+v", seed, n, i, g, w)
				}
			}
		}
	}
}
