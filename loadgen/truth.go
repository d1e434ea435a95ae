package loadgen

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"slices"
	"strings"

	"github.com/questline/questline/event"
)

// Truth is the ground truth of a run, written as JSON (docs/loadgen.md).
type Truth struct {
	Run      RunInfo  `json:"run"`
	Planted  Planted  `json:"planted"`
	Expected Expected `json:"expected"`

	// The on-time records and the windows the expected values came from,
	// kept (not in the file) for Clean.
	onTime  []rec
	windows Windows
}

// RunInfo describes the run.
type RunInfo struct {
	Seed   uint64  `json:"seed"`
	Tag    string  `json:"tag"` // in every id of the run
	Rate   float64 `json:"rate"`
	Origin Millis  `json:"origin"`
	// End is the latest true time of a sent event; windows ending after
	// End − allowed lateness may still be open in the pipeline.
	End        Millis      `json:"end"`
	Batches    int         `json:"batches"`
	Events     int         `json:"events"`
	SendErrors int         `json:"send_errors"` // batches that could not be delivered: the truth does not hold if > 0
	Rejected   int         `json:"rejected"`    // events the ingest rejected: the truth does not hold if > 0
	Windows    WindowsInfo `json:"windows"`
}

// WindowsInfo is Windows in milliseconds.
type WindowsInfo struct {
	QuestSizeMs         int64 `json:"quest_size_ms"`
	QuestSlideMs        int64 `json:"quest_slide_ms"`
	YieldSizeMs         int64 `json:"yield_size_ms"`
	YieldSlideMs        int64 `json:"yield_slide_ms"`
	AttributionWindowMs int64 `json:"attribution_window_ms"`
	AllowedLatenessMs   int64 `json:"allowed_lateness_ms"`
	// LateAfterMs: an event sent this long or more after it happened is
	// late for every window; every other event is on time for all of them.
	LateAfterMs int64 `json:"late_after_ms"`
}

// rec is the truth's compact record of one sent event.
type rec struct {
	id                                  string
	t                                   int64 // true event time
	typ                                 event.Type
	late                                bool
	user, device                        string
	quest, drop, creator                string
	auction, placement, bidder, outcome string
	order                               string
	price, floor, clearing, amount, lat int64
	has                                 uint32
}

// truthBuilder records the sent events: counters and the bots' and
// injected auctions' bookkeeping always, and a compact record per event
// (about 300 bytes with the model's state) unless the expected values are
// skipped.
type truthBuilder struct {
	cfg       *Config
	planted   *Planted
	lateAfter int64
	skip      bool
	recs      []rec

	total, late int
	byType      map[string]int
	end         int64
	botSent     map[string]int  // bot user → events sent
	botLate     map[string]bool // bot user → some sent late
	injSeen     map[string]bool // injected auctions with a sent event
}

func newTruthBuilder(cfg *Config, planted *Planted) *truthBuilder {
	return &truthBuilder{cfg: cfg, planted: planted, lateAfter: ms(cfg.LongHoldMin), skip: cfg.SkipExpected,
		byType: map[string]int{}, botSent: map[string]int{}, botLate: map[string]bool{}, injSeen: map[string]bool{}}
}

// add records the first n events of b as sent.
func (tb *truthBuilder) add(b *Batch, n int) {
	for i := range b.Events[:n] {
		e := &b.Events[i]
		t := e.TS - b.Skew
		late := b.SendAt-t >= tb.lateAfter
		tb.total++
		tb.byType[e.Type.String()]++
		tb.end = max(tb.end, t)
		if late {
			tb.late++
		}
		if tb.planted.botSteps[e.UserID] > 0 {
			tb.botSent[e.UserID]++
			if late {
				tb.botLate[e.UserID] = true
			}
		}
		if e.AuctionID != "" {
			if _, ok := tb.planted.injected[e.AuctionID]; ok {
				tb.injSeen[e.AuctionID] = true
			}
		}
		if tb.skip {
			continue
		}
		tb.recs = append(tb.recs, rec{
			id: e.ID, t: t, typ: e.Type, late: late,
			user: e.UserID, device: e.DeviceID, quest: e.QuestID, drop: e.DropID, creator: e.CreatorID,
			auction: e.AuctionID, placement: e.Placement, bidder: e.BidderID, outcome: e.Outcome, order: e.OrderID,
			price: e.PriceMicros, floor: e.FloorMicros, clearing: e.ClearingMicros, amount: e.AmountMicros,
			lat: e.LatencyMs, has: e.Has,
		})
	}
}

// Expected are the exact values the pipeline must reproduce, computed by
// applying the SPEC §5 definitions to the sent events at their true times
// (which are the event times ingest derives; see docs/loadgen.md). Late
// events are in the raw table but in no window.
type Expected struct {
	Events            EventsTruth      `json:"events"`
	QuestCompletion   []QuestRow       `json:"quest_completion"`
	ConversionLatency []LatencyRow     `json:"conversion_latency"`
	QuestConversions  ConversionsTotal `json:"quest_conversions"`
	CreatorLift       []LiftRow        `json:"creator_lift"`
	OfferYield        []YieldRow       `json:"offer_yield"`
	Integrity         []IntegrityRow   `json:"bidstream_integrity"`
	RevenueMicros     int64            `json:"revenue_micros"`
	ViolationsByKind  map[string]int   `json:"violations_by_kind"`
}

// EventsTruth is what the raw events table must hold: each sent event once.
type EventsTruth struct {
	Total  int            `json:"total"`
	ByType map[string]int `json:"by_type"`
	Late   int            `json:"late"`
	// IDsSHA256 is the SHA-256 of the sorted event ids joined by "\n"
	// ("" with Config.SkipExpected).
	IDsSHA256 string `json:"ids_sha256"`
}

// QuestRow is a quest_completion row (scope all).
type QuestRow struct {
	WindowStart Millis `json:"window_start"`
	WindowEnd   Millis `json:"window_end"`
	QuestID     string `json:"quest_id"`
	Starts      int    `json:"starts"`
	Completions int    `json:"completions"`
	Abandons    int    `json:"abandons"`
}

// LatencyRow is a conversion_latency row (scope all); quantiles are exact
// values of the attributed latencies at hdrhistogram-go's ranks
// (max(1, ⌊q·n + 0.5⌋)).
type LatencyRow struct {
	WindowStart Millis  `json:"window_start"`
	WindowEnd   Millis  `json:"window_end"`
	QuestID     string  `json:"quest_id"`
	Conversions int     `json:"conversions"`
	P50Ms       int64   `json:"p50_ms"`
	P90Ms       int64   `json:"p90_ms"`
	P99Ms       int64   `json:"p99_ms"`
	MaxMs       int64   `json:"max_ms"`
	MeanMs      float64 `json:"mean_ms"`
}

// ConversionsTotal summarises the quest_conversions table.
type ConversionsTotal struct {
	Attributed   int   `json:"attributed"`
	Unattributed int   `json:"unattributed"`
	AmountMicros int64 `json:"amount_micros"` // of the attributed ones
	LatencySumMs int64 `json:"latency_sum_ms"`
}

// LiftRow is a drop's final creator_lift row for a scope: "all", or
// "humans" (all users but the planted bots: the clean scope when the bot
// processor flags exactly the bots). Lift, its interval and chance_to_win
// are null when a cell is empty or the standard error is zero.
type LiftRow struct {
	DropID            string   `json:"drop_id"`
	CreatorID         string   `json:"creator_id"`
	Scope             string   `json:"scope"`
	LiveFrom          Millis   `json:"live_from"`
	LiveTo            Millis   `json:"live_to"`
	Complete          bool     `json:"complete"` // the horizon and lateness ended before the run did
	ExposedUsers      int      `json:"exposed_users"`
	ExposedConverters int      `json:"exposed_converters"`
	ControlUsers      int      `json:"control_users"`
	ControlConverters int      `json:"control_converters"`
	Lift              *float64 `json:"lift"`
	LiftCILow         *float64 `json:"lift_ci_low"`
	LiftCIHigh        *float64 `json:"lift_ci_high"`
	ChanceToWin       *float64 `json:"chance_to_win"`
}

// YieldRow is an offer_yield row (scope all) for a placement ("" for all)
// and a bidder ("" for all; bidder rows count the auctions the bidder
// answered in (or won without answering), its own answers, and the wins,
// impressions, clicks and revenue of the auctions it won).
type YieldRow struct {
	WindowStart       Millis `json:"window_start"`
	WindowEnd         Millis `json:"window_end"`
	Placement         string `json:"placement"`
	BidderID          string `json:"bidder_id"`
	Auctions          int    `json:"auctions"`
	Bids              int    `json:"bids"`
	NoBids            int    `json:"no_bids"`
	Timeouts          int    `json:"timeouts"`
	Wins              int    `json:"wins"`
	Impressions       int    `json:"impressions"`
	Clicks            int    `json:"clicks"`
	RevenueMicros     int64  `json:"revenue_micros"`
	BidLatencyP50Ms   int64  `json:"bid_latency_p50_ms"`
	BidLatencyP99Ms   int64  `json:"bid_latency_p99_ms"`
	ViolatingAuctions int    `json:"violating_auctions"` // placement rows only
}

// IntegrityRow is a bidstream_integrity row: auctions with a violation of
// kind in the window (by bid_request time; orphans by their first event,
// under placement "" only).
type IntegrityRow struct {
	WindowStart Millis `json:"window_start"`
	WindowEnd   Millis `json:"window_end"`
	Placement   string `json:"placement"`
	Kind        string `json:"kind"`
	Violations  int    `json:"violations"`
}

// windowStarts returns the first and last start of the hopping windows
// [start, start+size) containing t, starts multiples of slide.
func windowStarts(t, size, slide int64) (first, last int64) {
	last = t - t%slide
	first = last - size + slide
	return first, last
}

// build computes the truth.
func (tb *truthBuilder) build(g *gen, info RunInfo, bots map[string]bool) *Truth {
	g.planted.finish(g)
	c := tb.cfg
	info.Windows = WindowsInfo{
		QuestSizeMs: ms(c.Windows.QuestSize), QuestSlideMs: ms(c.Windows.QuestSlide),
		YieldSizeMs: ms(c.Windows.YieldSize), YieldSlideMs: ms(c.Windows.YieldSlide),
		AttributionWindowMs: ms(c.Windows.AttributionWindow), AllowedLatenessMs: ms(c.Windows.AllowedLateness),
		LateAfterMs: tb.lateAfter,
	}
	info.Events, info.End = tb.total, Millis(tb.end)
	tr := &Truth{Run: info, Planted: g.planted}
	tr.Planted.Bots = tb.sentBots()
	tr.Planted.Violations = tb.sentViolations()
	ex := &tr.Expected
	ex.Events = tb.events()
	if tb.skip {
		return tr
	}
	// Only the on-time events are in windows; filter in place (the
	// records are not needed any more) and order by time.
	onTime := tb.recs[:0]
	for _, r := range tb.recs {
		if !r.late {
			onTime = append(onTime, r)
		}
	}
	tb.recs = nil
	slices.SortStableFunc(onTime, func(a, b rec) int {
		switch {
		case a.t < b.t:
			return -1
		case a.t > b.t:
			return 1
		}
		return strings.Compare(a.id, b.id)
	})
	ex.QuestCompletion = questCompletion(onTime, c.Windows, nil)
	ex.ConversionLatency, ex.QuestConversions = conversionLatency(onTime, c.Windows, nil, nil)
	ex.CreatorLift = creatorLift(onTime, c.Windows, int64(info.End), "humans", func(user string, _, _ int64) bool { return bots[user] })
	ex.OfferYield, ex.Integrity, ex.RevenueMicros, ex.ViolationsByKind = offerYield(onTime, c.Windows, nil)
	tr.onTime, tr.windows = onTime, c.Windows
	return tr
}

// ConversionRow is a quest_conversions row: an attributed conversion.
type ConversionRow struct {
	EventID, OrderID, UserID, QuestID, DropID, CreatorID string
	LatencyMs, AmountMicros                              int64
}

// Conversions returns the quest_conversions rows of the run's on-time
// events, by conversion event id (nil unless the run computed its
// expected values; not in the truth file).
func (t *Truth) Conversions() map[string]ConversionRow {
	if t.onTime == nil {
		return nil
	}
	rows := map[string]ConversionRow{}
	conversionLatency(t.onTime, t.windows, nil, rows)
	return rows
}

// DeviceEvent is an on-time event of a device: its user, type and true
// time.
type DeviceEvent struct {
	Device, User string
	Type         event.Type
	Time         int64 // Unix ms
}

// DeviceEvents returns the run's on-time events that name a device, in
// time order (nil unless the run computed its expected values): with
// bot_signals' device rows they say which users a flagged device takes
// out of the clean scope.
func (t *Truth) DeviceEvents() []DeviceEvent {
	var out []DeviceEvent
	for _, r := range t.onTime {
		if r.device != "" {
			out = append(out, DeviceEvent{Device: r.device, User: r.user, Type: r.typ, Time: r.t})
		}
	}
	return out
}

// CleanExpected are the rows of the clean scope (SPEC §5: without the
// users the bot processor flagged in an overlapping window).
type CleanExpected struct {
	QuestCompletion   []QuestRow
	ConversionLatency []LatencyRow
	OfferYield        []YieldRow
	Integrity         []IntegrityRow
	CreatorLift       []LiftRow // scope "clean", the final rows' cells
}

// Clean applies SPEC §5's definitions to the run's on-time events leaving
// out, of each window, the events of the users flagged reports flagged in
// a bot window overlapping [from, to): the metric window; for a drop, its
// live and attribution window (flags come from the pipeline's bot_signals:
// the truth knows the bots, not which windows flag them). An auction
// belongs to the user of its events; a conversion's latency counts in the
// windows of the conversion (its attribution is made over all of the
// user's completions, as the processors' batch definitions make it). nil
// unless the run computed its expected values.
func (t *Truth) Clean(flagged func(user string, from, to int64) bool) *CleanExpected {
	if t.onTime == nil {
		return nil
	}
	w := t.windows
	quest := func(user string, s int64) bool { return !flagged(user, s, s+ms(w.QuestSize)) }
	yld := func(user string, s int64) bool { return !flagged(user, s, s+ms(w.YieldSize)) }
	ce := &CleanExpected{QuestCompletion: questCompletion(t.onTime, w, quest)}
	ce.ConversionLatency, _ = conversionLatency(t.onTime, w, quest, nil)
	ce.OfferYield, ce.Integrity, _, _ = offerYield(t.onTime, w, yld)
	for _, r := range creatorLift(t.onTime, w, int64(t.Run.End), "clean", flagged) {
		if r.Scope == "clean" {
			ce.CreatorLift = append(ce.CreatorLift, r)
		}
	}
	return ce
}

// sentBots sorts the bots into those whose whole script was sent on time
// (with their devices) and those the run's start or end cut or whose
// device sent late; bots with nothing sent are left out.
func (tb *truthBuilder) sentBots() map[string]*BotIDs {
	p := tb.planted
	complete := map[string]bool{}
	out := make(map[string]*BotIDs, len(p.Bots))
	for k, b := range p.Bots {
		nb := &BotIDs{Entity: b.Entity, Signals: b.Signals, Users: []string{}, Devices: []string{}, Partial: []string{}}
		for _, u := range b.Users {
			switch n := tb.botSent[u]; {
			case n == 0:
			case n == p.botSteps[u] && !tb.botLate[u]:
				nb.Users = append(nb.Users, u)
				complete[u] = true
			default:
				nb.Partial = append(nb.Partial, u)
			}
		}
		out[k] = nb
	}
	// A device is listed when every bot on it is complete.
	devOK := map[string]bool{}
	for u, d := range p.botDevice {
		if ok, seen := devOK[d]; !seen || ok {
			devOK[d] = complete[u]
		}
	}
	for k, b := range p.Bots {
		for _, d := range b.Devices {
			if devOK[d] {
				out[k].Devices = append(out[k].Devices, d)
			}
		}
	}
	return out
}

// sentViolations counts the injections in auctions with a sent event.
func (tb *truthBuilder) sentViolations() map[string]int {
	out := map[string]int{}
	for _, k := range ViolationKinds {
		out[k] = 0
	}
	for a := range tb.injSeen {
		out[tb.planted.injected[a]]++
	}
	return out
}

func (tb *truthBuilder) events() EventsTruth {
	et := EventsTruth{Total: tb.total, ByType: tb.byType, Late: tb.late}
	if !tb.skip {
		ids := make([]string, len(tb.recs))
		for i := range tb.recs {
			ids[i] = tb.recs[i].id
		}
		et.IDsSHA256 = IDsDigest(ids)
	}
	return et
}

// IDsDigest is the SHA-256 (hex) of the sorted ids joined by "\n"; it
// sorts ids in place.
func IDsDigest(ids []string) string {
	slices.Sort(ids)
	h := sha256.New()
	for i, id := range ids {
		if i > 0 {
			h.Write([]byte{'\n'})
		}
		h.Write([]byte(id))
	}
	return hex.EncodeToString(h.Sum(nil))
}

type wkey struct {
	start int64
	a, b  string
}

func sortedKeys[V any](m map[wkey]V) []wkey {
	keys := make([]wkey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y wkey) int {
		switch {
		case x.start < y.start:
			return -1
		case x.start > y.start:
			return 1
		}
		if c := strings.Compare(x.a, y.a); c != 0 {
			return c
		}
		return strings.Compare(x.b, y.b)
	})
	return keys
}

// questCompletion computes quest_completion's rows; include, if not nil,
// reports whether a user's events count in the window starting at s.
func questCompletion(recs []rec, w Windows, include func(user string, s int64) bool) []QuestRow {
	size, slide := ms(w.QuestSize), ms(w.QuestSlide)
	rows := map[wkey]*QuestRow{}
	for _, r := range recs {
		if r.typ != event.QuestStarted && r.typ != event.QuestCompleted && r.typ != event.QuestAbandoned {
			continue
		}
		first, last := windowStarts(r.t, size, slide)
		for s := first; s <= last; s += slide {
			if include != nil && !include(r.user, s) {
				continue
			}
			for _, q := range [2]string{"", r.quest} {
				k := wkey{start: s, a: q}
				row := rows[k]
				if row == nil {
					row = &QuestRow{WindowStart: Millis(s), WindowEnd: Millis(s + size), QuestID: q}
					rows[k] = row
				}
				switch r.typ {
				case event.QuestStarted:
					row.Starts++
				case event.QuestCompleted:
					row.Completions++
				default:
					row.Abandons++
				}
			}
		}
	}
	out := make([]QuestRow, 0, len(rows))
	for _, k := range sortedKeys(rows) {
		out = append(out, *rows[k])
	}
	return out
}

// nearestRank returns the p-quantile of sorted v: the value of rank
// max(1, ⌊p·n + 0.5⌋), the rank hdrhistogram-go's ValueAtQuantile uses, so
// a histogram's answer is this value within its precision.
func nearestRank(v []int64, p float64) int64 {
	if len(v) == 0 {
		return 0
	}
	i := max(int(p*float64(len(v))+0.5), 1) - 1
	return v[min(i, len(v)-1)]
}

// conversionLatency computes conversion_latency's rows and the totals of
// quest_conversions; include as questCompletion's (the totals count every
// attributed conversion); convs, if not nil, receives each attributed
// conversion's row by event id.
func conversionLatency(recs []rec, w Windows, include func(user string, s int64) bool, convs map[string]ConversionRow) ([]LatencyRow, ConversionsTotal) {
	size, slide, attr := ms(w.QuestSize), ms(w.QuestSlide), ms(w.AttributionWindow)
	type comp struct {
		t     int64
		quest string
	}
	last := map[string]comp{} // user → latest completion so far (recs are in time order)
	lat := map[wkey][]int64{}
	var tot ConversionsTotal
	for _, r := range recs {
		switch r.typ {
		case event.QuestCompleted:
			last[r.user] = comp{r.t, r.quest}
		case event.Conversion:
			c, ok := last[r.user]
			if !ok || r.t-c.t > attr {
				tot.Unattributed++
				continue
			}
			l := r.t - c.t
			if convs != nil {
				convs[r.id] = ConversionRow{EventID: r.id, OrderID: r.order, UserID: r.user, QuestID: c.quest,
					DropID: r.drop, CreatorID: r.creator, LatencyMs: l, AmountMicros: r.amount}
			}
			tot.Attributed++
			tot.AmountMicros += r.amount
			tot.LatencySumMs += l
			first, lastS := windowStarts(r.t, size, slide)
			for s := first; s <= lastS; s += slide {
				if include != nil && !include(r.user, s) {
					continue
				}
				for _, q := range [2]string{"", c.quest} {
					k := wkey{start: s, a: q}
					lat[k] = append(lat[k], l)
				}
			}
		}
	}
	out := make([]LatencyRow, 0, len(lat))
	for _, k := range sortedKeys(lat) {
		v := lat[k]
		slices.Sort(v)
		var sum int64
		for _, x := range v {
			sum += x
		}
		out = append(out, LatencyRow{
			WindowStart: Millis(k.start), WindowEnd: Millis(k.start + size), QuestID: k.a,
			Conversions: len(v), P50Ms: nearestRank(v, 0.5), P90Ms: nearestRank(v, 0.9), P99Ms: nearestRank(v, 0.99),
			MaxMs: v[len(v)-1], MeanMs: float64(sum) / float64(len(v)),
		})
	}
	return out, tot
}

// WriteJSON writes t as indented JSON, the ground-truth file of a run.
func (t *Truth) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(t)
}
