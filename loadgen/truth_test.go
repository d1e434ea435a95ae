package loadgen

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/loadgen/truthtest"
)

// The truth self-consistency test: decode what was sent from the request
// bodies with encoding/json (not the event package), derive event times
// by SPEC §2, and recompute the expected values with straightforward,
// slow implementations of SPEC §5, independent of truth*.go.

type wireEvent struct {
	ID      string         `json:"event_id"`
	Type    string         `json:"type"`
	TS      string         `json:"ts"`
	UserID  string         `json:"user_id"`
	Device  string         `json:"device_id"`
	Country string         `json:"country"`
	Props   map[string]any `json:"props"`

	t    int64 // derived event time
	late bool
}

func (e *wireEvent) s(k string) string {
	v, _ := e.Props[k].(string)
	return v
}

func (e *wireEvent) n(k string) (int64, bool) {
	v, ok := e.Props[k].(float64)
	return int64(v), ok
}

type wireBatch struct {
	SentAt      string      `json:"sent_at"`
	ClockOffset *int64      `json:"clock_offset_ms"`
	Events      []wireEvent `json:"events"`
}

func parseMs(t *testing.T, s string) int64 {
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixMilli()
}

// decodeSent decodes every body; the receiver's clock is the batch's
// simulated send time (a perfect network).
func decodeSent(t *testing.T, ss []sent, lateAfter int64) []*wireEvent {
	var out []*wireEvent
	for _, s := range ss {
		var wb wireBatch
		if err := json.Unmarshal(s.body, &wb); err != nil {
			t.Fatal(err)
		}
		recv := s.b.SendAt
		sentAt := parseMs(t, wb.SentAt)
		for i := range wb.Events {
			e := &wb.Events[i]
			ts := parseMs(t, e.TS)
			switch d := recv - sentAt; {
			case s.b.Server:
				e.t = ts
			case wb.ClockOffset != nil:
				e.t = ts + *wb.ClockOffset
			case d >= 1000 || d <= -1000:
				e.t = ts + d
			default:
				e.t = ts
			}
			e.late = recv-e.t >= lateAfter
			out = append(out, e)
		}
	}
	return out
}

func onTime(evs []*wireEvent) []*wireEvent {
	var out []*wireEvent
	for _, e := range evs {
		if !e.late {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].t < out[j].t })
	return out
}

// windowsOf lists the starts of the windows holding t, the slow way.
func windowsOf(t, size, slide int64) []int64 {
	var out []int64
	for s := (t/slide - size/slide - 1) * slide; s <= t; s += slide {
		if s <= t && t < s+size {
			out = append(out, s)
		}
	}
	return out
}

func ms2s(m int64) string { return time.UnixMilli(m).UTC().Format("15:04:05.000") }

func TestTruthSelfConsistency(t *testing.T) {
	tr, ss := mainRun(t)
	w := tr.Run.Windows
	all := decodeSent(t, ss, w.LateAfterMs)
	evs := onTime(all)

	t.Run("events", func(t *testing.T) {
		ids := make([]string, 0, len(all))
		byType := map[string]int{}
		late := 0
		for _, e := range all {
			ids = append(ids, e.ID)
			byType[e.Type]++
			if e.late {
				late++
			}
		}
		sort.Strings(ids)
		for i := 1; i < len(ids); i++ {
			if ids[i] == ids[i-1] {
				t.Fatalf("event id %s sent twice", ids[i])
			}
		}
		sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
		got := tr.Expected.Events
		if got.Total != len(all) || got.Late != late || got.IDsSHA256 != fmt.Sprintf("%x", sum) {
			t.Fatalf("events: truth %d/%d late/%s, recomputed %d/%d/%x", got.Total, got.Late, got.IDsSHA256, len(all), late, sum)
		}
		if late == 0 {
			t.Fatal("no late events: the offline population is missing")
		}
		for k, v := range byType {
			if got.ByType[k] != v {
				t.Errorf("%s: truth %d, recomputed %d", k, got.ByType[k], v)
			}
		}
	})

	t.Run("quest_completion", func(t *testing.T) {
		want := map[string][3]int{}
		for _, e := range evs {
			col := map[string]int{"quest_started": 0, "quest_completed": 1, "quest_abandoned": 2}
			c, ok := col[e.Type]
			if !ok {
				continue
			}
			for _, s := range windowsOf(e.t, w.QuestSizeMs, w.QuestSlideMs) {
				for _, q := range []string{"", e.s("quest_id")} {
					k := ms2s(s) + "/" + q
					v := want[k]
					v[c]++
					want[k] = v
				}
			}
		}
		got := map[string][3]int{}
		for _, r := range tr.Expected.QuestCompletion {
			got[ms2s(int64(r.WindowStart))+"/"+r.QuestID] = [3]int{r.Starts, r.Completions, r.Abandons}
			if int64(r.WindowEnd-r.WindowStart) != w.QuestSizeMs {
				t.Fatalf("window %v–%v", r.WindowStart, r.WindowEnd)
			}
		}
		truthtest.CompareMaps(t, got, want)
	})

	t.Run("conversion_latency", func(t *testing.T) {
		comps := map[string][]*wireEvent{}
		for _, e := range evs {
			if e.Type == "quest_completed" {
				comps[e.UserID] = append(comps[e.UserID], e)
			}
		}
		lat := map[string][]int64{}
		attributed := 0
		for _, c := range evs {
			if c.Type != "conversion" {
				continue
			}
			var best *wireEvent
			for _, q := range comps[c.UserID] {
				if q.t <= c.t && c.t-q.t <= w.AttributionWindowMs && (best == nil || q.t >= best.t) {
					best = q
				}
			}
			if best == nil {
				continue
			}
			attributed++
			for _, s := range windowsOf(c.t, w.QuestSizeMs, w.QuestSlideMs) {
				for _, q := range []string{"", best.s("quest_id")} {
					k := ms2s(s) + "/" + q
					lat[k] = append(lat[k], c.t-best.t)
				}
			}
		}
		if attributed == 0 || attributed != tr.Expected.QuestConversions.Attributed {
			t.Fatalf("attributed: truth %d, recomputed %d", tr.Expected.QuestConversions.Attributed, attributed)
		}
		want := map[string]string{}
		for k, v := range lat {
			sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
			rank := func(p float64) int64 { return v[max(int(math.Floor(p*float64(len(v))+0.5)), 1)-1] }
			var sum int64
			for _, x := range v {
				sum += x
			}
			want[k] = fmt.Sprintf("n=%d p50=%d p90=%d p99=%d max=%d mean=%.3f", len(v), rank(0.5), rank(0.9), rank(0.99), v[len(v)-1], float64(sum)/float64(len(v)))
		}
		got := map[string]string{}
		for _, r := range tr.Expected.ConversionLatency {
			got[ms2s(int64(r.WindowStart))+"/"+r.QuestID] = fmt.Sprintf("n=%d p50=%d p90=%d p99=%d max=%d mean=%.3f", r.Conversions, r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs, r.MeanMs)
		}
		truthtest.CompareMaps(t, got, want)
	})

	t.Run("creator_lift", func(t *testing.T) {
		bots := map[string]bool{}
		for _, b := range tr.Planted.Bots {
			for _, u := range append(b.Users, b.Partial...) {
				bots[u] = true
			}
		}
		convs := map[string][]int64{}
		for _, e := range evs {
			if e.Type == "conversion" {
				convs[e.UserID] = append(convs[e.UserID], e.t)
			}
		}
		want := map[string]string{}
		complete := 0
		for _, d := range evs {
			if d.Type != "drop_started" {
				continue
			}
			from, to := d.t, int64(math.MaxInt64)
			for _, x := range evs {
				if x.Type == "drop_ended" && x.s("drop_id") == d.s("drop_id") {
					to = x.t
				}
			}
			for _, scope := range []string{"all", "humans"} {
				first, exposed := map[string]int64{}, map[string]int64{}
				for _, e := range evs {
					if e.UserID == "" || e.t < from || e.t >= to || scope == "humans" && bots[e.UserID] {
						continue
					}
					if _, ok := first[e.UserID]; !ok {
						first[e.UserID] = e.t
					}
					if _, ok := exposed[e.UserID]; !ok && e.Type == "drop_viewed" && e.s("drop_id") == d.s("drop_id") {
						exposed[e.UserID] = e.t
					}
				}
				var nE, xE, nC, xC int
				for u, f := range first {
					since := f
					if x, ok := exposed[u]; ok {
						since = x
					}
					conv := false
					for _, ct := range convs[u] {
						if ct >= since && (to == math.MaxInt64 || ct < to+w.AttributionWindowMs) {
							conv = true
						}
					}
					if _, ok := exposed[u]; ok {
						nE++
						if conv {
							xE++
						}
					} else {
						nC++
						if conv {
							xC++
						}
					}
				}
				if to != math.MaxInt64 && to+w.AttributionWindowMs+w.AllowedLatenessMs <= int64(tr.Run.End) {
					complete++
				}
				want[d.s("drop_id")+"/"+scope] = fmt.Sprintf("E %d/%d C %d/%d", xE, nE, xC, nC)
			}
		}
		if complete < 2 {
			t.Fatalf("only %d complete drop rows: the run is too short for this test", complete)
		}
		got := map[string]string{}
		for _, r := range tr.Expected.CreatorLift {
			got[r.DropID+"/"+r.Scope] = fmt.Sprintf("E %d/%d C %d/%d", r.ExposedConverters, r.ExposedUsers, r.ControlConverters, r.ControlUsers)
			if r.Lift != nil {
				rE := float64(r.ExposedConverters) / float64(r.ExposedUsers)
				rC := float64(r.ControlConverters) / float64(r.ControlUsers)
				if math.Abs(*r.Lift-(rE/rC-1)) > 1e-12 || r.LiftCILow == nil || !(*r.LiftCILow < *r.Lift && *r.Lift < *r.LiftCIHigh) {
					t.Errorf("%s: lift %v in [%v, %v]", r.DropID, *r.Lift, r.LiftCILow, r.LiftCIHigh)
				}
			}
		}
		truthtest.CompareMaps(t, got, want)
	})

	t.Run("offer_yield_and_integrity", func(t *testing.T) {
		type auc struct {
			req   *wireEvent
			first int64
			rest  []*wireEvent
		}
		aucs := map[string]*auc{}
		for _, e := range evs {
			id := e.s("auction_id")
			if id == "" {
				continue
			}
			a := aucs[id]
			if a == nil {
				a = &auc{first: e.t}
				aucs[id] = a
			}
			if e.Type == "bid_request" {
				a.req = e
			} else {
				a.rest = append(a.rest, e)
			}
		}
		yield := map[string]string{}
		integ := map[string]int{}
		kinds := map[string]int{}
		var revenue int64
		type acc struct {
			auctions, bids, nobids, timeouts, wins, shown, clicks, viol int
			rev                                                         int64
		}
		rows := map[string]*acc{}
		get := func(k string) *acc {
			if rows[k] == nil {
				rows[k] = &acc{}
			}
			return rows[k]
		}
		for _, a := range aucs {
			var v []string
			var wins, billed []*wireEvent
			shown, clicks := 0, 0
			prices := map[string]int64{}
			for _, e := range a.rest {
				switch e.Type {
				case "bid":
					if e.s("outcome") == "bid" {
						prices[e.s("bidder_id")], _ = e.n("price_micros")
					}
				case "auction_won":
					wins = append(wins, e)
				case "billed":
					billed = append(billed, e)
					amt, _ := e.n("amount_micros")
					revenue += amt
				case "offer_shown":
					shown++
				case "offer_clicked":
					clicks++
				}
			}
			if a.req == nil {
				v = append(v, "orphan")
			} else {
				if len(wins) > 0 {
					clr, _ := wins[0].n("clearing_micros")
					p, ok := prices[wins[0].s("bidder_id")]
					if !ok {
						v = append(v, "win_without_bid")
					} else if clr > p {
						v = append(v, "clearing_above_bid")
					}
					if f, ok := a.req.n("floor_micros"); ok && clr < f {
						v = append(v, "clearing_below_floor")
					}
					if len(wins) > 1 {
						v = append(v, "duplicate_win")
					}
					for _, b := range billed {
						if amt, _ := b.n("amount_micros"); amt != clr {
							v = append(v, "billing_mismatch")
							break
						}
					}
				} else {
					if len(billed) > 0 {
						v = append(v, "billed_without_win")
					}
					if shown > 0 {
						v = append(v, "impression_without_win")
					}
				}
				if len(billed) > 1 {
					v = append(v, "duplicate_billing")
				}
			}
			for _, k := range v {
				kinds[k]++
			}
			anchor, placement := a.first, ""
			if a.req != nil {
				anchor, placement = a.req.t, a.req.s("placement")
			}
			for _, s := range windowsOf(anchor, w.YieldSizeMs, w.YieldSlideMs) {
				pls := []string{""}
				if a.req != nil {
					pls = append(pls, placement)
				}
				for _, pl := range pls {
					for _, k := range v {
						integ[fmt.Sprintf("%s/%s/%s", ms2s(s), pl, k)]++
					}
					if a.req == nil {
						continue
					}
					r := get(ms2s(s) + "/" + pl + "/")
					r.auctions++
					if len(v) > 0 {
						r.viol++
					}
					if len(wins) > 0 {
						r.wins++
					}
					r.shown += shown
					r.clicks += clicks
					for _, b := range billed {
						amt, _ := b.n("amount_micros")
						r.rev += amt
					}
					for _, e := range a.rest {
						if e.Type != "bid" {
							continue
						}
						switch e.s("outcome") {
						case "bid":
							r.bids++
						case "no_bid":
							r.nobids++
						case "timeout":
							r.timeouts++
						}
					}
				}
			}
		}
		for k, r := range rows {
			yield[k] = fmt.Sprintf("a=%d b=%d nb=%d to=%d w=%d i=%d c=%d rev=%d v=%d", r.auctions, r.bids, r.nobids, r.timeouts, r.wins, r.shown, r.clicks, r.rev, r.viol)
		}
		gotY := map[string]string{}
		for _, r := range tr.Expected.OfferYield {
			if r.BidderID != "" {
				continue // bidder rows: covered by the processor's own tests' semantics
			}
			gotY[ms2s(int64(r.WindowStart))+"/"+r.Placement+"/"] = fmt.Sprintf("a=%d b=%d nb=%d to=%d w=%d i=%d c=%d rev=%d v=%d",
				r.Auctions, r.Bids, r.NoBids, r.Timeouts, r.Wins, r.Impressions, r.Clicks, r.RevenueMicros, r.ViolatingAuctions)
		}
		truthtest.CompareMaps(t, gotY, yield)
		gotI := map[string]int{}
		for _, r := range tr.Expected.Integrity {
			gotI[fmt.Sprintf("%s/%s/%s", ms2s(int64(r.WindowStart)), r.Placement, r.Kind)] = r.Violations
		}
		truthtest.CompareMaps(t, gotI, integ)
		for k, n := range kinds {
			if tr.Expected.ViolationsByKind[k] != n {
				t.Errorf("%s: truth %d, recomputed %d", k, tr.Expected.ViolationsByKind[k], n)
			}
		}
		if revenue != tr.Expected.RevenueMicros || revenue == 0 {
			t.Errorf("revenue: truth %d, recomputed %d", tr.Expected.RevenueMicros, revenue)
		}
	})
}
