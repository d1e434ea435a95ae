package bots

import (
	"cmp"
	"math"
	"slices"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/internal/intern"
)

// Batch recomputes the rows with a score above zero from a complete set of
// events, entity by entity and window by window: the reference the
// streaming processor is tested against. Versions are zero.
func Batch(cfg Config, cat *catalog.Catalog, events []event.Event) []Row {
	p := &Processor{cfg: cfg, catalog: cat}
	spec := cfg.Window
	slide, size := spec.Slide.Milliseconds(), spec.Size.Milliseconds()
	type wk struct {
		id    string
		start int64
	}
	type win struct {
		accum
		times []int64
		users []string
	}
	acc := map[wk]*win{}
	marks := map[string][]geoMark{}
	cs := intern.New()
	for i := range events {
		e := &events[i]
		id := e.UserID
		if cfg.Entity == EntityDevice {
			id = e.DeviceID
		}
		if id == "" || !Counted(e.Type) {
			continue
		}
		if geoMismatch(e) {
			marks[id] = append(marks[id], geoMark{T: e.EventTime, Lo: math.MinInt64, Country: cs.ID(e.Country)})
		}
		first, last := spec.Starts(e.EventTime)
		for s := first; s <= last; s += slide {
			a := acc[wk{id, s}]
			if a == nil {
				a = &win{}
				acc[wk{id, s}] = a
			}
			a.times = append(a.times, e.EventTime)
			switch {
			case claim(e):
				a.claims++
			case e.Type == event.QuestCompleted:
				minMs := catalog.DefaultMinDuration.Milliseconds()
				if cat != nil {
					minMs = cat.MinDurationMs(e.QuestID)
				}
				if e.Has&event.HasDurationMs != 0 && e.DurationMs < minMs {
					a.impossible++
				}
			}
			if geoMismatch(e) {
				a.geo++
			}
			if e.UserID != "" && !slices.Contains(a.users, e.UserID) {
				a.users = append(a.users, e.UserID)
			}
		}
	}
	for _, m := range marks {
		slices.SortFunc(m, func(a, b geoMark) int { return cmpInt(a.T, b.T) })
	}
	var rows []Row
	for k, a := range acc {
		a.hop = a.geo > 0 && hopping(marks[k.id], k.start, k.start+size, hopMs(cfg))
		sig := p.signals(&a.accum, a.times, len(a.users))
		if sig == 0 {
			continue
		}
		score := Score(sig)
		r := Row{Start: k.start, End: k.start + size, EntityType: cfg.Entity, EntityID: k.id,
			Events: len(a.times), Signals: sig, Score: score, Flagged: score >= cfg.Threshold}
		if r.Flagged && cfg.Entity == EntityDevice {
			users := slices.Sorted(slices.Values(a.users))
			r.Users = &users
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, compareRows)
	return rows
}

func compareRows(a, b Row) int {
	return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.EntityID, b.EntityID))
}
