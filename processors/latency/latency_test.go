package latency

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"
	"unsafe"

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

// TestStreamingEqualsBatch runs random streams through 1 and 4 partitions
// and requires the merged rows and the latest quest_conversions row of each
// conversion to equal the batch definition. The disorder goes up to the
// allowed lateness: event times lag arrival by up to out-of-orderness +
// lateness, so completions often arrive after the watermark has released
// their conversions, yet no event misses a window.
func TestStreamingEqualsBatch(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Conversions = true
	const outOfOrder = 30 * sec
	maxDisorder := outOfOrder + cfg.Window.Lateness.Milliseconds()
	reattributed := 0
	for seed := range uint64(8) {
		disorder := int64(90 * sec) // within the watermark bound
		if seed%2 == 1 {
			disorder = maxDisorder // up to the allowed lateness
		}
		sc := streamgen.Config{Seed: seed, Events: 3000, Disorder: disorder, Gap: 3000, Users: 20}
		bound := disorder // the watermark's out-of-orderness bound
		if seed%2 == 1 {
			bound = outOfOrder
		}
		events := streamgen.Generate(sc)
		wantRows, wantConvs := Batch(cfg, window.ScopeAll, events, nil)
		if len(wantConvs) < 20 {
			t.Fatalf("seed %d: only %d attributed conversions: a weak test", seed, len(wantConvs))
		}
		for _, n := range []int{1, 4} {
			var partials []Row
			var convs []Conversion
			for i, part := range streamgen.Partition(events, n) {
				r, c := stream(t, cfg, part, bound, 1+i*53)
				partials = append(partials, r...)
				convs = append(convs, c...)
			}
			got := dropZero(Merge(partials))
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
			// quest_conversions: the row of highest version per conversion
			// (a re-attribution replaces the row; versions must grow).
			latest := map[string]Conversion{}
			for _, c := range convs {
				if old, ok := latest[c.EventID]; ok {
					if c.Version <= old.Version {
						t.Fatalf("seed %d: conversion %s re-emitted with version %d after %d", seed, c.EventID, c.Version, old.Version)
					}
					if n == 1 {
						reattributed++
					}
				}
				latest[c.EventID] = c
			}
			var final []Conversion
			for _, c := range latest {
				c.Version = 0
				final = append(final, c)
			}
			slices.SortFunc(final, func(a, b Conversion) int {
				return cmp.Or(cmp.Compare(a.ConversionTime, b.ConversionTime), cmp.Compare(a.EventID, b.EventID))
			})
			if !slices.Equal(final, wantConvs) {
				for i := 0; i < len(final) && i < len(wantConvs); i++ {
					if final[i] != wantConvs[i] {
						t.Logf("first difference: %+v\nwant %+v", final[i], wantConvs[i])
						break
					}
				}
				t.Fatalf("seed %d, %d partitions: conversions differ (%d vs %d)", seed, n, len(final), len(wantConvs))
			}
		}
	}
	// The late-completion path must have been exercised.
	if reattributed < 20 {
		t.Fatalf("only %d re-attributions: the disorder does not reach the late-completion path", reattributed)
	}
	t.Logf("%d re-attributions", reattributed)
}

// dropZero removes the zero rows a retraction writes over a row that lost
// its last conversion.
func dropZero(rows []Row) []Row {
	return slices.DeleteFunc(rows, func(r Row) bool { return r.Conversions == 0 })
}

func stream(t *testing.T, cfg Config, events []event.Event, bound int64, flushEvery int) ([]Row, []Conversion) {
	t.Helper()
	p, err := New(cfg, window.ScopeAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	wmk := window.NewWatermark(time.Duration(bound) * time.Millisecond)
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
			t.Fatalf("event %d late within the allowed lateness", i)
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

// TestLateCompletion follows one conversion through re-attributions by
// completions that arrive after it was released but within the allowed
// lateness: the window rows move from the old quest to the new one (the old
// quest's row is written as a zero row), the quest_conversions row is
// written again with a higher version, ties go to the greater quest id, and
// a completion after the windows closed changes nothing.
func TestLateCompletion(t *testing.T) {
	cfg := Config{
		Window:      window.Spec{Size: 2 * time.Minute, Slide: time.Minute, Lateness: 5 * time.Minute},
		Attribution: 10 * time.Minute, Conversions: true,
	}
	p, err := New(cfg, window.ScopeAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	wmk := window.NewWatermark(time.Minute)
	add := func(e event.Event) {
		t.Helper()
		if missed := p.Add(&e, wmk.Observe(e.EventTime)); missed != 0 {
			t.Fatalf("%+v: %d windows missed", e, missed)
		}
	}
	type key struct {
		start int64
		quest string
	}
	rows := map[key]Row{}
	var convs []string
	flush := func() {
		rs, cs := p.Flush(p.Watermark())
		for _, r := range rs {
			rows[key{r.Start, r.QuestID}] = r
		}
		for _, c := range cs {
			convs = append(convs, fmt.Sprintf("%s:%s:%ds:v%d", c.EventID, c.QuestID, c.LatencyMs/sec, c.Version))
		}
	}
	want := func(start int64, quest string, n, maxMs int64) {
		t.Helper()
		r, ok := rows[key{start, quest}]
		if !ok || r.Conversions != n || r.MaxMs != maxMs || r.Hist.Total() != n {
			t.Fatalf("row [%d min, %q]: %+v (present %v), want n=%d max=%d", (start-t0)/min, quest, r, ok, n, maxMs)
		}
	}

	add(comp("u1", "qa", t0+10*min))
	add(conv("c1", "u1", t0+13*min))
	add(conv("x", "u9", t0+16*min)) // watermark 15 min: c1 released, attributed to qa
	flush()
	want(t0+12*min, "", 1, 180*sec)
	want(t0+12*min, "qa", 1, 180*sec)

	add(comp("u1", "qb", t0+12*min)) // 3 min behind the watermark, windows of c1 open
	flush()
	want(t0+12*min, "", 1, 60*sec)
	want(t0+12*min, "qa", 0, 0) // retracted: a zero row replaces the old one
	want(t0+12*min, "qb", 1, 60*sec)
	want(t0+13*min, "qb", 1, 60*sec)

	add(comp("u1", "qc", t0+12*min)) // same millisecond, greater quest id: takes it
	add(comp("u1", "qa", t0+12*min)) // same millisecond, smaller quest id: does not
	add(comp("u1", "qz", t0+9*min))  // earlier than the current one: does not
	flush()
	want(t0+13*min, "qb", 0, 0)
	want(t0+13*min, "qc", 1, 60*sec)

	add(conv("y", "u9", t0+31*min))         // watermark 30 min: c1's windows closed
	add(comp("u1", "qd", t0+12*min+30*sec)) // too late to re-attribute
	p.Advance(t0 + 120*min)
	flush()
	want(t0+13*min, "qc", 1, 60*sec)
	if _, ok := rows[key{t0 + 13*min, "qd"}]; ok {
		t.Fatal("a completion after the windows closed re-attributed")
	}
	wantConvs := []string{"c1:qa:180s:v1", "c1:qb:60s:v2", "c1:qc:60s:v3"}
	if !slices.Equal(convs, wantConvs) {
		t.Fatalf("quest_conversions rows %v, want %v", convs, wantConvs)
	}
	if p.Users() != 0 || p.Panes() != 0 {
		t.Fatalf("state left: %d users, %d panes", p.Users(), p.Panes())
	}
}

// TestConcatCopies: a released conversion's ids are a copy of their own
// even when one of them is empty (a + b would then return the other, and
// keep the record it was decoded from).
func TestConcatCopies(t *testing.T) {
	rec := []byte("event-1order-9")
	id, order := string(rec[:7]), string(rec[7:])
	for _, c := range [][2]string{{id, ""}, {"", order}, {id, order}, {"", ""}} {
		got := concat(c[0], c[1])
		if got != c[0]+c[1] {
			t.Fatalf("concat(%q, %q) = %q", c[0], c[1], got)
		}
		if len(got) > 0 && (unsafe.StringData(got) == unsafe.StringData(c[0]) || unsafe.StringData(got) == unsafe.StringData(c[1])) {
			t.Fatalf("concat(%q, %q) shares its argument's bytes", c[0], c[1])
		}
	}
}

// TestNamesForgotten: quest, drop and creator ids are client input; a
// stream where most completions and conversions bring ids never seen again
// (helper-37: kept for ever) gets its names renumbered from the live state
// once they pile up (compact), and its rows and conversions stay those of
// the batch definition.
func TestNamesForgotten(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Conversions = true
	sc := streamgen.Config{Seed: 5, Events: 30_000, Disorder: 60 * sec, Gap: 1500, Users: 30}
	events := streamgen.Generate(sc)
	distinct := map[string]bool{}
	for i := range events {
		e := &events[i]
		if i%5 != 0 { // 4 events in 5
			for _, s := range []*string{&e.QuestID, &e.DropID, &e.CreatorID} {
				if *s != "" {
					*s += "-" + e.ID
				}
			}
		}
		distinct[e.QuestID], distinct[e.DropID], distinct[e.CreatorID] = true, true, true
	}
	wantRows, wantConvs := Batch(cfg, window.ScopeAll, events, nil)
	p, err := New(cfg, window.ScopeAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	wmk := window.NewWatermark(time.Duration(sc.Disorder) * time.Millisecond)
	latest := map[rowKey]Row{}
	conv := map[string]Conversion{}
	keep := func(rows []Row, cs []Conversion) {
		for _, r := range rows {
			latest[rowKey{r.Start, r.QuestID, r.Scope}] = r
		}
		for _, c := range cs {
			conv[c.EventID] = c
		}
	}
	most, shrunk := 0, 0
	for i := range events {
		wm := wmk.Observe(events[i].EventTime)
		p.Add(&events[i], wm)
		if i%7 == 0 {
			before := len(p.names.Names())
			keep(p.Flush(wm))
			most = max(most, before)
			if len(p.names.Names()) < before {
				shrunk++
			}
		}
	}
	end := wmk.Max() + 1e9
	p.Advance(end)
	keep(p.Flush(end))
	if shrunk == 0 || most >= len(distinct)/2 {
		t.Fatalf("%d distinct names: at most %d held at once, renumbered %d times", len(distinct), most, shrunk)
	}
	var rows []Row
	for _, r := range latest {
		rows = append(rows, r)
	}
	got := dropZero(Merge(rows))
	if len(got) != len(wantRows) {
		t.Fatalf("%d rows, want %d", len(got), len(wantRows))
	}
	for i := range got {
		g, w := got[i], wantRows[i]
		if g.Start != w.Start || g.QuestID != w.QuestID || g.Conversions != w.Conversions || g.SumMs != w.SumMs || !g.Hist.Equal(&w.Hist) {
			t.Fatalf("row %d:\n%+v\nwant\n%+v", i, g, w)
		}
	}
	if len(conv) != len(wantConvs) {
		t.Fatalf("%d conversions, want %d", len(conv), len(wantConvs))
	}
	for _, w := range wantConvs {
		g := conv[w.EventID]
		g.Version = 0
		if g != w {
			t.Fatalf("conversion:\n%+v\nwant\n%+v", g, w)
		}
	}
	t.Logf("%d distinct names: at most %d held at once, renumbered %d times; %d rows, %d conversions", len(distinct), most, shrunk, len(got), len(conv))
}

// TestLateUnattributedConversion: a conversion whose windows have all
// closed is late whether or not a completion takes it (helper-43: an
// unattributed one returned no missed windows, so window_late_events and
// the late-events metric never showed a late conversion feed).
func TestLateUnattributedConversion(t *testing.T) {
	p, err := New(DefaultConfig(), window.ScopeAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := int64(t0 + 60*min)
	wm := now - 30*sec
	x := conv("other", "u9", now)
	p.Add(&x, wm)
	c := comp("u1", "qa", now-35*min)
	p.Add(&c, wm)
	attributed, unattributed := conv("a", "u1", now-30*min), conv("b", "u2", now-30*min)
	ma, mb := p.Add(&attributed, wm), p.Add(&unattributed, wm)
	if ma == 0 || mb != ma {
		t.Errorf("missed windows: %d attributed, %d unattributed; want the same, above 0", ma, mb)
	}
	onTime := conv("c", "u3", now-10*sec)
	p.Add(&onTime, wm)
	if m := p.Add(&x, now); m != 0 { // releases onTime: none of its windows closed
		t.Errorf("an unattributed conversion on time missed %d windows", m)
	}
}
