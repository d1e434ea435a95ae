package processors

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/questline/questline/processors/window"
	"github.com/questline/questline/processors/yield"
)

// yieldGauges shows on-call engineers the offer yield in Prometheus, where
// the alert rules of alerts/ read it: per placement, the figures of the
// latest offer_yield and bidstream_integrity window (scope all, every
// bidder) that is complete — every source partition's watermark has passed
// its end, so every partition's partial is merged — as this process
// merged and wrote it to ClickHouse. The values are the rows' own: a late
// event that updates the window shown updates them too.
//
// The sources' watermarks are their markers' Done watermarks (see
// pipeline.Partition.Done), which in a steady state are their event-time
// watermarks; after a cold start (no snapshot) they wait for the clean
// pass's first events, its lag (21 minutes of event time by default,
// pipeline.Config.Lag, then a slide: about 21.5), so the gauges appear
// that late.
//
// Each row's identity is merged by one partials partition: a window's
// offer_yield row and each of its bidstream_integrity rows (one per kind)
// may be merged by different processes. So with several processes each
// shows the latest complete window of those it merged, with the offer
// figures only if it merged the window's offer_yield row and the
// integrity ratio only if it merged one of its integrity rows, and
// questline_yield_window_end_timestamp_seconds tells which is newest (the
// recording rules in alerts/ pick, for the offer figures and for the
// integrity ratio apart, the process showing the newest window that has
// them). A window not shown yet that a revoked partials partition
// contributed to is forgotten (revoke): its partition's next owner merges
// the rest of it, and this process would show it incomplete.
//
// A placement whose last window shown is more than staleAfter of event
// time older than the newest window shown by this process is dropped: a
// retired placement does not stay on a dashboard or keep an alert firing.
//
// It is a prometheus.Collector of its own that keeps a copy of the
// figures shown (showing), changed by publish and read by Collect under
// mu: a scrape reads every series of one publish. (Gauges set one after
// another could be scraped half-way, and even a lock around a GaugeVec's
// Collect does not help: the registry reads a gauge's value after Collect
// has handed it over, while the next publish may be setting it.)
type yieldGauges struct {
	end, auctions, impressions, revenue, integrity, violations *prometheus.Desc
	hidden                                                     *prometheus.Desc

	windows map[string]map[int64]*yieldWindow // placement → window start → figures
	shown   map[string]int64                  // placement → start of the window shown
	// from is the partials partition whose rows are being merged (set
	// by the merge stage before each partition's emit).
	from int32

	mu      sync.Mutex
	showing map[string]yieldWindow // placement → a copy of the figures shown
}

// maxYieldPlacements bounds the placements shown. A placement is any
// string a client key sends in a bid_request, and each one shown is six
// series or more: 50,000 made-up placements were 200,000 series on
// /metrics (helper-37, session 14). Past the bound the placements with
// the most auctions in the window shown are shown (ties by name), and
// questline_yield_placements_hidden counts the rest. A deployment's
// placements are a few dozen.
const maxYieldPlacements = 200

// yieldStaleAfter is how far (event time, ms) a placement's last window
// shown may trail the newest before its series are dropped.
const yieldStaleAfter = int64(60 * 60 * 1000)

// yieldWindow is what the gauges show of one placement's window.
type yieldWindow struct {
	end            int64
	yield          yield.Counts
	haveYield      bool
	integrityRatio *float64 // nil: no integrity row, or no auctions
	auctionsSeen   int64    // of the offer_yield or integrity rows, whichever came: the rank past maxYieldPlacements
	violations     map[string]int64
	changed        bool    // since it was last shown
	parts          []int32 // partials partitions its rows came from
}

// gaugeDesc returns the description of the gauge opts declares, with
// labels. (The declarations are GaugeOpts literals, as every other metric's,
// which dashboards/ reads to know the metrics that exist.)
func gaugeDesc(opts prometheus.GaugeOpts, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(opts.Name, opts.Help, labels, nil)
}

func newYieldGauges() *yieldGauges {
	return &yieldGauges{
		end: gaugeDesc(prometheus.GaugeOpts{
			Name: "questline_yield_window_end_timestamp_seconds",
			Help: "End (event time) of the latest complete offer_yield window this process merged, by placement (scope all).",
		}, "placement"),
		auctions: gaugeDesc(prometheus.GaugeOpts{
			Name: "questline_yield_window_auctions",
			Help: "Auctions of that window (offer_yield.auctions, every bidder); absent if this process did not merge its offer_yield row.",
		}, "placement"),
		impressions: gaugeDesc(prometheus.GaugeOpts{
			Name: "questline_yield_window_impressions",
			Help: "Impressions of that window (offer_yield.impressions).",
		}, "placement"),
		revenue: gaugeDesc(prometheus.GaugeOpts{
			Name: "questline_yield_window_revenue_micros",
			Help: "Revenue of that window in micros (offer_yield.revenue_micros); rpm = revenue_micros / 1e3 / auctions.",
		}, "placement"),
		integrity: gaugeDesc(prometheus.GaugeOpts{
			Name: "questline_yield_window_integrity_ratio",
			Help: "Auctions without violation / auctions of that window (bidstream_integrity.integrity_ratio); absent without auctions.",
		}, "placement"),
		violations: gaugeDesc(prometheus.GaugeOpts{
			Name: "questline_yield_window_violations",
			Help: "Auctions of that window with a violation of the kind (bidstream_integrity.violations).",
		}, "placement", "kind"),
		hidden: gaugeDesc(prometheus.GaugeOpts{
			Name: "questline_yield_placements_hidden",
			Help: "Placements with a complete window not shown by the questline_yield_window_* gauges: past the 200 with the most auctions (placements are client input); absent when none is hidden.",
		}),
		windows: map[string]map[int64]*yieldWindow{},
		shown:   map[string]int64{},
		showing: map[string]yieldWindow{},
	}
}

// Describe implements prometheus.Collector.
func (g *yieldGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.end, g.auctions, g.impressions, g.revenue, g.integrity, g.violations, g.hidden} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the series of every placement
// as the last publish left them. A window without its offer_yield row
// (another process merged it, or it has only orphans) has no offer
// figures, not 0 auctions: the recording rules take them from the process
// that has them.
func (g *yieldGauges) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	placements := slices.Collect(maps.Keys(g.showing))
	if len(placements) > maxYieldPlacements {
		slices.SortFunc(placements, func(a, b string) int {
			return cmp.Or(cmp.Compare(g.showing[b].auctionsSeen, g.showing[a].auctionsSeen), strings.Compare(a, b))
		})
		placements = placements[:maxYieldPlacements]
	}
	if n := len(g.showing) - len(placements); n > 0 {
		gauge(g.hidden, float64(n))
	}
	for _, placement := range placements {
		w := g.showing[placement]
		gauge(g.end, float64(w.end)/1e3, placement)
		if w.haveYield {
			gauge(g.auctions, float64(w.yield.Auctions), placement)
			gauge(g.impressions, float64(w.yield.Impressions), placement)
			gauge(g.revenue, float64(w.yield.RevenueMicros), placement)
		}
		if w.integrityRatio != nil {
			gauge(g.integrity, *w.integrityRatio, placement)
		}
		for kind, n := range w.violations {
			gauge(g.violations, float64(n), placement, kind)
		}
	}
}

// window returns the figures of placement's window starting at start,
// unless that window is older than the one shown (a late row of a window
// no longer shown: ClickHouse has it, the gauges do not go back).
func (g *yieldGauges) window(placement string, start, end int64) *yieldWindow {
	if s, ok := g.shown[placement]; ok && start < s {
		return nil
	}
	ws := g.windows[placement]
	if ws == nil {
		ws = map[int64]*yieldWindow{}
		g.windows[placement] = ws
	}
	w := ws[start]
	if w == nil {
		w = &yieldWindow{end: end}
		ws[start] = w
	}
	w.changed = true
	if !slices.Contains(w.parts, g.from) {
		w.parts = append(w.parts, g.from)
	}
	return w
}

// revoke forgets the windows not shown yet that a revoked partials
// partition contributed rows to: the rows their sources send next go to
// the partition's new owner, so this process would show them incomplete
// once the watermarks pass their end. The windows shown are complete and
// stay (only their late updates go elsewhere).
func (g *yieldGauges) revoke(partitions []int32) {
	for placement, ws := range g.windows {
		shown, ok := g.shown[placement]
		for start, w := range ws {
			if ok && start == shown {
				continue
			}
			for _, p := range partitions {
				if slices.Contains(w.parts, p) {
					delete(ws, start)
					break
				}
			}
		}
	}
}

// offer takes a merged offer_yield row.
func (g *yieldGauges) offer(r *yield.Row) {
	if r.Scope != window.ScopeAll || r.BidderID != "" || r.Placement == "" {
		return
	}
	if w := g.window(r.Placement, r.Start, r.End); w != nil {
		w.yield, w.haveYield = r.Counts, true
		w.auctionsSeen = max(w.auctionsSeen, int64(r.Auctions))
	}
}

// integrityRow takes a merged bidstream_integrity row (one per kind; each
// carries the window's auctions and clean auctions).
func (g *yieldGauges) integrityRow(r *yield.IntegrityRow) {
	if r.Scope != window.ScopeAll || r.Placement == "" {
		return
	}
	w := g.window(r.Placement, r.Start, r.End)
	if w == nil {
		return
	}
	w.integrityRatio = r.IntegrityRatio()
	w.auctionsSeen = max(w.auctionsSeen, r.Auctions)
	if w.violations == nil {
		w.violations = map[string]int64{}
	}
	w.violations[r.Kind] = r.Violations
}

// publish shows, per placement, the newest window whose end is at or below
// low (the lowest watermark of every source partition; window.None: not
// known yet), and forgets the windows before it.
func (g *yieldGauges) publish(low int64) {
	if low == window.None {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	newest := int64(window.None)
	for placement, ws := range g.windows {
		best, ok := int64(0), false
		for start, w := range ws {
			if w.end <= low && (!ok || start > best) {
				best, ok = start, true
			}
		}
		if !ok {
			continue
		}
		for start := range ws {
			if start < best {
				delete(ws, start)
			}
		}
		if w := ws[best]; w.changed || g.shown[placement] != best {
			g.show(placement, w)
		}
		g.shown[placement] = best
	}
	for _, start := range g.shown {
		newest = max(newest, start)
	}
	for placement, start := range g.shown {
		if start < newest-yieldStaleAfter {
			g.drop(placement)
		}
	}
}

// show makes w the window shown for placement, with mu held.
func (g *yieldGauges) show(placement string, w *yieldWindow) {
	w.changed = false
	c := *w // later rows change w; a scrape reads the copy
	c.violations = maps.Clone(w.violations)
	c.parts = nil
	g.showing[placement] = c
}

// drop forgets placement, with mu held.
func (g *yieldGauges) drop(placement string) {
	delete(g.windows, placement)
	delete(g.shown, placement)
	delete(g.showing, placement)
}
