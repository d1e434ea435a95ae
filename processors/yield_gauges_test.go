package processors

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/questline/questline/processors/yield"
)

// gathered returns the registry's series as name{label="value",...} → value.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

func expectSeries(t *testing.T, step string, got, want map[string]float64) {
	t.Helper()
	if !maps.Equal(got, want) {
		keys := slices.Sorted(maps.Keys(got))
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "  %s %v\n", k, got[k])
		}
		t.Fatalf("%s: series\n%swant %v", step, b.String(), want)
	}
}

// TestYieldGauges: the gauges show, per placement, the newest window every
// source is past, with its rows' own figures (late updates included),
// never an incomplete window, another scope or a per-bidder row; a window
// older than the one shown does not come back, and a placement an hour of
// event time behind the others is dropped.
func TestYieldGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := newYieldGauges()
	reg.MustRegister(g)
	const min = int64(60_000)
	row := func(placement, bidder, scope string, start, auctions, impressions, revenue int64) *yield.Row {
		return &yield.Row{Start: start, End: start + 5*min, Placement: placement, BidderID: bidder, Scope: scope,
			Counts: yield.Counts{Auctions: auctions, Impressions: impressions, RevenueMicros: revenue}}
	}
	integ := func(placement string, start int64, kind string, violations, auctions, clean int64) *yield.IntegrityRow {
		return &yield.IntegrityRow{Start: start, End: start + 5*min, Placement: placement, Kind: kind, Scope: "all",
			Violations: violations, Auctions: auctions, CleanAuctions: clean}
	}
	g.offer(row("home", "", "all", 0, 100, 80, 5_000_000))
	g.offer(row("home", "b1", "all", 0, 60, 50, 3_000_000)) // a bidder's row: not shown
	g.offer(row("home", "", "clean", 0, 90, 70, 4_000_000)) // clean scope: not shown
	g.offer(row("", "", "all", 0, 100, 80, 5_000_000))      // every placement: not shown
	g.integrityRow(integ("home", 0, "orphan", 3, 104, 96))
	g.integrityRow(integ("home", 0, "duplicate_win", 5, 104, 96))
	g.offer(row("home", "", "all", min, 120, 90, 6_000_000))

	g.publish(5*min - 1) // window 0 ends at 5 min: not complete
	expectSeries(t, "before any window is complete", gathered(t, reg), map[string]float64{})

	g.publish(5 * min)
	window0 := map[string]float64{
		`questline_yield_window_end_timestamp_seconds{placement="home"}`:           300,
		`questline_yield_window_auctions{placement="home"}`:                        100,
		`questline_yield_window_impressions{placement="home"}`:                     80,
		`questline_yield_window_revenue_micros{placement="home"}`:                  5_000_000,
		`questline_yield_window_integrity_ratio{placement="home"}`:                 96.0 / 104,
		`questline_yield_window_violations{kind="orphan",placement="home"}`:        3,
		`questline_yield_window_violations{kind="duplicate_win",placement="home"}`: 5,
	}
	expectSeries(t, "window 0 complete", gathered(t, reg), window0)

	// A late event updates the window shown.
	g.offer(row("home", "", "all", 0, 101, 80, 5_100_000))
	g.publish(5*min + 10)
	window0[`questline_yield_window_auctions{placement="home"}`] = 101
	window0[`questline_yield_window_revenue_micros{placement="home"}`] = 5_100_000
	expectSeries(t, "late update", gathered(t, reg), window0)

	// The next window completes; it has no integrity rows yet: no ratio.
	g.publish(6 * min)
	window1 := map[string]float64{
		`questline_yield_window_end_timestamp_seconds{placement="home"}`: 360,
		`questline_yield_window_auctions{placement="home"}`:              120,
		`questline_yield_window_impressions{placement="home"}`:           90,
		`questline_yield_window_revenue_micros{placement="home"}`:        6_000_000,
	}
	expectSeries(t, "window 1 complete", gathered(t, reg), window1)
	g.offer(row("home", "", "all", 0, 500, 500, 1)) // older than shown: ignored
	g.publish(6 * min)
	expectSeries(t, "late row of a window no longer shown", gathered(t, reg), window1)

	// Another placement moves on for more than an hour: home is dropped.
	for i := int64(0); i <= 62; i++ {
		g.offer(row("search", "", "all", i*min, 10, 5, 1000))
		g.publish(i*min + 5*min)
	}
	got := gathered(t, reg)
	if _, ok := got[`questline_yield_window_auctions{placement="home"}`]; ok {
		t.Fatalf("a placement an hour behind is still shown: %v", got)
	}
	if got[`questline_yield_window_end_timestamp_seconds{placement="search"}`] != float64(67*min/1000) {
		t.Fatalf("search: %v", got)
	}
	if n := len(g.windows["search"]); n != 1 {
		t.Fatalf("%d windows of search held, want only the one shown", n)
	}
}

// TestYieldGaugesSplitWindow: a window's offer_yield row and its
// bidstream_integrity rows are different identities, merged in different
// partials partitions and so, with several processes, by different
// processes. A process with only the integrity rows shows the ratio and
// no offer figures (not 0 auctions, which would hide the other process's
// figures from the recording rules); one with only the offer row shows no
// ratio.
func TestYieldGaugesSplitWindow(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := newYieldGauges()
	reg.MustRegister(g)
	g.integrityRow(&yield.IntegrityRow{Start: 0, End: 300_000, Placement: "home", Kind: "orphan", Scope: "all",
		Violations: 3, Auctions: 100, CleanAuctions: 90})
	g.publish(300_000)
	expectSeries(t, "integrity rows only", gathered(t, reg), map[string]float64{
		`questline_yield_window_end_timestamp_seconds{placement="home"}`:    300,
		`questline_yield_window_integrity_ratio{placement="home"}`:          0.9,
		`questline_yield_window_violations{kind="orphan",placement="home"}`: 3,
	})
	g.offer(&yield.Row{Start: 60_000, End: 360_000, Placement: "home", Scope: "all", Counts: yield.Counts{Auctions: 100, Impressions: 80, RevenueMicros: 1000}})
	g.publish(360_000)
	expectSeries(t, "offer row only", gathered(t, reg), map[string]float64{
		`questline_yield_window_end_timestamp_seconds{placement="home"}`: 360,
		`questline_yield_window_auctions{placement="home"}`:              100,
		`questline_yield_window_impressions{placement="home"}`:           80,
		`questline_yield_window_revenue_micros{placement="home"}`:        1000,
	})
}

// TestYieldGaugesRevoke: a window not shown yet with rows merged from a
// partials partition that is revoked is forgotten — the rest of its
// partials go to the partition's new owner, so once every source is past
// its end this process would show it without them — while the window
// shown and the windows of the partitions kept stay.
func TestYieldGaugesRevoke(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := newYieldGauges()
	reg.MustRegister(g)
	const min = int64(60_000)
	row := func(placement string, start, auctions int64) *yield.Row {
		return &yield.Row{Start: start, End: start + 5*min, Placement: placement, Scope: "all",
			Counts: yield.Counts{Auctions: auctions, Impressions: auctions / 2, RevenueMicros: 10 * auctions}}
	}
	g.from = 1
	g.offer(row("home", 0, 100))
	g.publish(5 * min)              // home's window 0 is shown
	g.offer(row("home", min, 30))   // partition 1: one source's partial of window 1 so far
	g.offer(row("search", min, 50)) // partition 1
	g.from = 2
	g.offer(row("search", 2*min, 70)) // partition 2
	g.integrityRow(&yield.IntegrityRow{Start: 2 * min, End: 7 * min, Placement: "home", Kind: "orphan", Scope: "all", Auctions: 10, CleanAuctions: 9})

	g.revoke([]int32{1})
	g.publish(6 * min) // window 1 is complete: not shown, this process lacks the rest of it
	expectSeries(t, "after partition 1 is revoked", gathered(t, reg), map[string]float64{
		`questline_yield_window_end_timestamp_seconds{placement="home"}`: 300,
		`questline_yield_window_auctions{placement="home"}`:              100,
		`questline_yield_window_impressions{placement="home"}`:           50,
		`questline_yield_window_revenue_micros{placement="home"}`:        1000,
	})
	g.publish(7 * min)
	expectSeries(t, "window 2, of partition 2", gathered(t, reg), map[string]float64{
		`questline_yield_window_end_timestamp_seconds{placement="home"}`:    420,
		`questline_yield_window_integrity_ratio{placement="home"}`:          0.9,
		`questline_yield_window_violations{kind="orphan",placement="home"}`: 0,
		`questline_yield_window_end_timestamp_seconds{placement="search"}`:  420,
		`questline_yield_window_auctions{placement="search"}`:               70,
		`questline_yield_window_impressions{placement="search"}`:            35,
		`questline_yield_window_revenue_micros{placement="search"}`:         700,
	})

	// The window shown stays when its partition is revoked.
	g.from = 3
	g.offer(row("lobby", 0, 40))
	g.publish(7 * min)
	g.revoke([]int32{3})
	g.publish(8 * min)
	if got := gathered(t, reg)[`questline_yield_window_auctions{placement="lobby"}`]; got != 40 {
		t.Fatalf("lobby's window shown: %v auctions after its partition was revoked, want 40", got)
	}
}

// TestYieldGaugesScrapeReadsOneWindow: scrapes racing with publishes read
// every series of one window — never the new window's end with the old
// window's auctions (the gauges are one collector, read and published
// under one lock). Each window's figures are a function of its end here,
// so a mixed scrape shows.
func TestYieldGaugesScrapeReadsOneWindow(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := newYieldGauges()
	reg.MustRegister(g)
	const min = int64(60_000)
	placements := []string{"home", "search", "lobby", "feed"}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range int64(3000) {
			start := i * min
			for _, p := range placements {
				g.offer(&yield.Row{Start: start, End: start + 5*min, Placement: p, Scope: "all",
					Counts: yield.Counts{Auctions: i + 1, Impressions: i, RevenueMicros: 10 * (i + 1)}})
				g.integrityRow(&yield.IntegrityRow{Start: start, End: start + 5*min, Placement: p, Kind: "orphan", Scope: "all",
					Violations: i, Auctions: i + 1, CleanAuctions: 1})
			}
			g.publish(start + 5*min)
		}
	}()
	scrapes := 0
	for running := true; running; scrapes++ {
		select {
		case <-done:
			running = false
		default:
		}
		got := gathered(t, reg)
		ends := map[float64]bool{}
		for _, p := range placements {
			end, ok := got[fmt.Sprintf(`questline_yield_window_end_timestamp_seconds{placement=%q}`, p)]
			if !ok {
				continue
			}
			ends[end] = true
			i := float64(int64(end*1e3)/min - 5) // the window's number
			for name, want := range map[string]float64{"auctions": i + 1, "impressions": i, "revenue_micros": 10 * (i + 1), "integrity_ratio": 1 / (i + 1)} {
				if v := got[fmt.Sprintf(`questline_yield_window_%s{placement=%q}`, name, p)]; v != want {
					t.Fatalf("scrape %d: %s's window ending %v shows %s %v, want %v (another window's)", scrapes, p, end, name, v, want)
				}
			}
		}
		if len(ends) > 1 {
			t.Fatalf("scrape %d: the placements show different windows %v in one scrape", scrapes, ends)
		}
	}
	t.Logf("%d scrapes", scrapes)
}

// TestYieldGaugesBounded: placements are client input; past
// maxYieldPlacements the gauges show those with the most auctions and
// count the rest (helper-37: 50,000 made-up placements were 200,000
// series). A placement whose window only this process's integrity rows
// reached ranks by their auctions.
func TestYieldGaugesBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := newYieldGauges()
	reg.MustRegister(g)
	const min = int64(60_000)
	for i := range int64(maxYieldPlacements + 50) {
		g.offer(&yield.Row{Start: 0, End: 5 * min, Placement: fmt.Sprintf("junk-%03d", i), Scope: "all", Counts: yield.Counts{Auctions: 1}})
	}
	g.offer(&yield.Row{Start: 0, End: 5 * min, Placement: "home", Scope: "all", Counts: yield.Counts{Auctions: 500}})
	g.integrityRow(&yield.IntegrityRow{Start: 0, End: 5 * min, Placement: "feed", Kind: "orphan", Scope: "all", Auctions: 300, CleanAuctions: 300})
	g.publish(5 * min)
	got := gathered(t, reg)
	shown := 0
	for k := range got {
		if strings.HasPrefix(k, "questline_yield_window_end_timestamp_seconds") {
			shown++
		}
	}
	if shown != maxYieldPlacements || got["questline_yield_placements_hidden{}"] != 52 {
		t.Fatalf("%d placements shown, %v hidden; want %d and 52", shown, got["questline_yield_placements_hidden{}"], maxYieldPlacements)
	}
	for _, p := range []string{"home", "feed", "junk-000", "junk-197"} {
		if _, ok := got[`questline_yield_window_end_timestamp_seconds{placement="`+p+`"}`]; !ok {
			t.Errorf("placement %s not shown", p)
		}
	}
	if _, ok := got[`questline_yield_window_end_timestamp_seconds{placement="junk-198"}`]; ok {
		t.Error("junk-198 shown: ties go by name, and 198 are left for the junk")
	}
}
