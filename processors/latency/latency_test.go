package latency

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/internal/streamgen"
	"github.com/questline/questline/processors/window"
)

const (
	sec = 1000
	min = 60 * sec
	t0  = 1767225600000 // 2026-01-01T00:00Z
)

func comp(user, quest string, t int64) event.Event {
	return event.Event{Type: event.QuestCompleted, UserID: user, QuestID: quest, EventTime: t}
}

func conv(id, user string, t int64) event.Event {
	return event.Event{ID: id, Type: event.Conversion, UserID: user, OrderID: "o-" + id, EventTime: t, AmountMicros: 5_000_000, Currency: "EUR"}
}

func TestHandComputed(t *testing.T) {
	cfg := Config{
		Window:      window.Spec{Size: 2 * time.Minute, Slide: time.Minute, Lateness: time.Minute},
		Attribution: 5 * time.Minute, Conversions: true,
	}
	p, err := New(cfg, window.ScopeAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	wmk := window.NewWatermark(time.Minute)
	for _, e := range []event.Event{
		comp("u1", "qa", t0+10*min),
		conv("c1", "u1", t0+13*min), // 180 s after qa
		conv("c6", "u4", t0+12*min+30*sec),
		comp("u4", "qa", t0+11*min+30*sec), // arrives after its conversion, within the bound
		comp("u1", "qb", t0+14*min),
		conv("c2", "u1", t0+14*min), // same ms as qb: latency 0, qb
		comp("u2", "qa", t0+10*min),
		conv("c3", "u2", t0+15*min),   // exactly the attribution window: attributed
		conv("c4", "u2", t0+15*min+1), // 1 ms beyond: not attributed
		conv("c5", "u3", t0+14*min),   // no completion
	} {
		wm := wmk.Observe(e.EventTime)
		if missed := p.Add(&e, wm); missed != 0 {
			t.Fatalf("%s late", e.ID)
		}
	}
	p.Advance(t0 + 60*min)
	rows, convs := p.Flush(t0 + 60*min)

	var gotConv []string
	for _, c := range convs {
		gotConv = append(gotConv, c.EventID+":"+c.QuestID+":"+time.Duration(c.LatencyMs*1e6).String())
	}
	slices.Sort(gotConv)
	wantConv := []string{"c1:qa:3m0s", "c2:qb:0s", "c3:qa:5m0s", "c6:qa:1m0s"}
	if !slices.Equal(gotConv, wantConv) {
		t.Fatalf("conversions %v, want %v", gotConv, wantConv)
	}

	// Window [12,14) holds c6 (60 s, qa) and c1 (180 s, qa).
	var found bool
	for _, r := range rows {
		if r.Start != t0+12*min || r.QuestID != "" {
			continue
		}
		found = true
		if r.Conversions != 2 || r.MaxMs != 180*sec {
			t.Fatalf("row %+v", r)
		}
		if m, _ := r.MeanMs(); m != 120*sec {
			t.Fatalf("mean %v", m)
		}
		p50, _ := r.Quantile(50)
		p99, _ := r.Quantile(99)
		within(t, "p50", p50, 60*sec)
		within(t, "p99", p99, 180*sec)
	}
	if !found {
		t.Fatal("no row for [12,14)")
	}
	// [14,16) holds c2 (0 ms, qb) and c3 (300 s, qa): the '' row has both.
	for _, r := range rows {
		if r.Start == t0+14*min && r.QuestID == "" {
			if r.Conversions != 2 || r.MaxMs != 300*sec {
				t.Fatalf("row %+v", r)
			}
			p50, _ := r.Quantile(50)
			within(t, "p50", p50, 0)
		}
	}
	// Empty row: no quantile, no mean (NULL).
	var empty Row
	if _, ok := empty.Quantile(50); ok {
		t.Fatal("quantile of an empty row")
	}
	if _, ok := empty.MeanMs(); ok {
		t.Fatal("mean of an empty row")
	}
	if p.Users() != 0 || p.Panes() != 0 {
		t.Fatalf("state left: %d users, %d panes", p.Users(), p.Panes())
	}
}

// within checks an HDR quantile against the exact value at 3 significant
// digits.
func within(t *testing.T, name string, got, exact int64) {
	t.Helper()
	if got < exact || float64(got-exact) > float64(exact)/1000+1 {
		t.Fatalf("%s = %d, exact %d", name, got, exact)
	}
}

func TestStreamingEqualsBatch(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Conversions = true
	for seed := range uint64(6) {
		sc := streamgen.Config{Seed: seed, Events: 3000, Disorder: 90 * sec, Gap: 3000, Users: 20}
		events := streamgen.Generate(sc)
		wantRows, wantConvs := Batch(cfg, window.ScopeAll, events, nil)
		if len(wantConvs) < 20 {
			t.Fatalf("seed %d: only %d attributed conversions: a weak test", seed, len(wantConvs))
		}
		for _, n := range []int{1, 4} {
			var partials []Row
			var convs []Conversion
			for i, part := range streamgen.Partition(events, n) {
				r, c := stream(t, cfg, part, sc.Disorder, 1+i*53)
				partials = append(partials, r...)
				convs = append(convs, c...)
			}
			got := Merge(partials)
			if len(got) != len(wantRows) {
				t.Fatalf("seed %d, %d partitions: %d rows, want %d", seed, n, len(got), len(wantRows))
			}
			for i := range got {
				g, w := got[i], wantRows[i]
				if g.Start != w.Start || g.QuestID != w.QuestID || g.Conversions != w.Conversions ||
					g.SumMs != w.SumMs || g.MaxMs != w.MaxMs || !g.Hist.Equal(&w.Hist) {
					t.Fatalf("seed %d, %d partitions, row %d:\n%+v\nwant\n%+v", seed, n, i, g, w)
				}
			}
			slices.SortFunc(convs, func(a, b Conversion) int {
				return cmp.Or(cmp.Compare(a.ConversionTime, b.ConversionTime), cmp.Compare(a.EventID, b.EventID))
			})
			if !slices.Equal(convs, wantConvs) {
				t.Fatalf("seed %d, %d partitions: conversions differ (%d vs %d)", seed, n, len(convs), len(wantConvs))
			}
		}
	}
}

func stream(t *testing.T, cfg Config, events []event.Event, disorder int64, flushEvery int) ([]Row, []Conversion) {
	t.Helper()
	p, err := New(cfg, window.ScopeAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	wmk := window.NewWatermark(time.Duration(disorder) * time.Millisecond)
	latest := map[rowKey]Row{}
	var convs []Conversion
	keep := func(rows []Row, c []Conversion) {
		for _, r := range rows {
			latest[rowKey{r.Start, r.QuestID, r.Scope}] = r
		}
		convs = append(convs, c...)
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
	end := wmk.Max() + 1e9
	p.Advance(end)
	keep(p.Flush(end))
	out := make([]Row, 0, len(latest))
	for _, r := range latest {
		out = append(out, r)
	}
	return out, convs
}
