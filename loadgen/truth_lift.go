package loadgen

import (
	"math"
	"slices"

	"github.com/questline/questline/event"
)

// creatorLift applies SPEC §5's creator lift to the on-time events (in
// time order), for the scope "all" and the scope named second, which
// leaves out the users leftOut reports for a drop's live and attribution
// window [from, to): "humans" (the bots) or "clean" (the flagged).
func creatorLift(recs []rec, w Windows, end int64, second string, leftOut func(user string, from, to int64) bool) []LiftRow {
	attr, lateness := ms(w.AttributionWindow), ms(w.AllowedLateness)
	type live struct {
		id, creator string
		from, to    int64
		ended       bool
	}
	var drops []*live
	byID := map[string]*live{}
	for _, r := range recs {
		switch r.typ {
		case event.DropStarted:
			l := &live{id: r.drop, creator: r.creator, from: r.t}
			drops, byID[r.drop] = append(drops, l), l
		case event.DropEnded:
			if l := byID[r.drop]; l != nil {
				l.to, l.ended = r.t, true
			}
		}
	}
	var out []LiftRow
	for _, d := range drops {
		to := d.to
		if !d.ended {
			to = math.MaxInt64
		}
		exposed := map[string]int64{} // first exposure
		active := map[string]int64{}  // first activity in the live window
		var convs []rec
		for _, r := range recs {
			if r.user == "" {
				continue
			}
			if r.t >= d.from && r.t < to {
				if _, ok := active[r.user]; !ok {
					active[r.user] = r.t
				}
				if r.typ == event.DropViewed && r.drop == d.id {
					if _, ok := exposed[r.user]; !ok {
						exposed[r.user] = r.t
					}
				}
			}
			if r.typ == event.Conversion && r.t >= d.from && (!d.ended || r.t < d.to+attr) {
				convs = append(convs, r)
			}
		}
		span := d.to + attr
		if !d.ended {
			span = math.MaxInt64
		}
		for _, scope := range []string{"all", second} {
			row := LiftRow{DropID: d.id, CreatorID: d.creator, Scope: scope, LiveFrom: Millis(d.from),
				Complete: d.ended && d.to+attr+lateness <= end}
			if d.ended {
				row.LiveTo = Millis(d.to)
			}
			converted := map[string]bool{}
			for _, c := range convs {
				if scope != "all" && leftOut(c.user, d.from, span) {
					continue
				}
				// At or after (as processors/lift reads SPEC's "after"): the
				// model never puts a conversion at the same instant as an
				// exposure, but a conversion can be a user's first on-time
				// activity in the window when their earlier events are late.
				if f, ok := exposed[c.user]; ok {
					if c.t >= f {
						converted[c.user] = true
					}
				} else if f, ok := active[c.user]; ok && c.t >= f {
					converted[c.user] = true
				}
			}
			users := make([]string, 0, len(active))
			for u := range active {
				users = append(users, u)
			}
			slices.Sort(users)
			for _, u := range users {
				if scope != "all" && leftOut(u, d.from, span) {
					continue
				}
				if _, ok := exposed[u]; ok {
					row.ExposedUsers++
					if converted[u] {
						row.ExposedConverters++
					}
				} else {
					row.ControlUsers++
					if converted[u] {
						row.ControlConverters++
					}
				}
			}
			row.Lift, row.LiftCILow, row.LiftCIHigh, row.ChanceToWin = LiftStats(
				row.ExposedConverters, row.ExposedUsers, row.ControlConverters, row.ControlUsers)
			out = append(out, row)
		}
	}
	return out
}

// LiftStats computes SPEC §5's lift, its 95 % interval from the log
// relative risk and chance_to_win = Φ(ln(rE/rC)/se). Lift is nil when a
// group is empty or rC is 0; the interval and chance_to_win are nil when
// any cell is 0 or se is 0.
func LiftStats(xE, nE, xC, nC int) (lift, lo, hi, ctw *float64) {
	if nE == 0 || nC == 0 || xC == 0 {
		return nil, nil, nil, nil
	}
	rE, rC := float64(xE)/float64(nE), float64(xC)/float64(nC)
	l := rE/rC - 1
	lift = &l
	if xE == 0 {
		return lift, nil, nil, nil
	}
	se := math.Sqrt(1/float64(xE) - 1/float64(nE) + 1/float64(xC) - 1/float64(nC))
	if se == 0 || math.IsNaN(se) {
		return lift, nil, nil, nil
	}
	lrr := math.Log(rE / rC)
	a, b := math.Exp(lrr-1.96*se)-1, math.Exp(lrr+1.96*se)-1
	p := 0.5 * math.Erfc(-lrr/se/math.Sqrt2)
	return lift, &a, &b, &p
}
