package lift

import (
	"slices"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/catalog"
)

// Batch computes the final row of every ended drop of cat straight from
// the definition over a complete set of events (drops nobody was active
// in have no row): the reference the
// streaming processor is tested against. Versions are zero.
func Batch(cfg Config, scope string, cat *catalog.Catalog, events []event.Event) []Row {
	attr := cfg.Attribution.Milliseconds()
	var rows []Row
	cat.Each(func(d *catalog.Drop) {
		start, end, ok := cfg.live(d)
		if !ok {
			return
		}
		firstView, firstActive := map[string]int64{}, map[string]int64{}
		for _, e := range events {
			if e.UserID == "" || e.EventTime < start || e.EventTime >= end {
				continue
			}
			if v, ok := firstActive[e.UserID]; !ok || e.EventTime < v {
				firstActive[e.UserID] = e.EventTime
			}
			if e.Type == event.DropViewed && e.DropID == d.ID {
				if v, ok := firstView[e.UserID]; !ok || e.EventTime < v {
					firstView[e.UserID] = e.EventTime
				}
			}
		}
		r := Row{DropID: d.ID, CreatorID: d.CreatorID, Scope: scope, UpdatedAt: end + attr, Final: true}
		for u, active := range firstActive {
			anchor, exposed := active, false
			if v, ok := firstView[u]; ok {
				anchor, exposed = v, true
			}
			converted := false
			for _, e := range events {
				if e.Type == event.Conversion && e.UserID == u && e.EventTime >= anchor && e.EventTime < end+attr {
					converted = true
				}
			}
			switch {
			case exposed && converted:
				r.ExposedUsers++
				r.ExposedConverters++
			case exposed:
				r.ExposedUsers++
			case converted:
				r.ControlUsers++
				r.ControlConverters++
			default:
				r.ControlUsers++
			}
		}
		if len(firstActive) > 0 {
			rows = append(rows, r)
		}
	})
	slices.SortFunc(rows, compareRows)
	return rows
}
