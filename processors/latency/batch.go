package latency

import (
	"cmp"
	"slices"

	"github.com/questline/questline/event"
)

// Batch recomputes the SPEC §5 definition from a complete set of events in
// any order, without windows state or watermarks (ties between completions
// at the same millisecond go to the greater quest id): the reference the
// streaming processor is tested against. include reports whether a user's
// conversion counts in the window starting at start (nil: all users).
// It returns the window rows (versions zero) and the attributed conversions
// sorted by conversion time, then event id.
func Batch(cfg Config, scope string, events []event.Event, include func(user string, start int64) bool) ([]Row, []Conversion) {
	comps := map[string][]completion{}
	for _, e := range events {
		if e.Type == event.QuestCompleted {
			comps[e.UserID] = append(comps[e.UserID], completion{e.EventTime, e.QuestID})
		}
	}
	spec := cfg.Window
	acc := map[rowKey]*Row{}
	var convs []Conversion
	for _, e := range events {
		if e.Type != event.Conversion {
			continue
		}
		var best *completion
		for i, c := range comps[e.UserID] {
			if c.T <= e.EventTime && (best == nil || c.after(*best)) {
				best = &comps[e.UserID][i]
			}
		}
		if best == nil || e.EventTime-best.T > cfg.Attribution.Milliseconds() {
			continue
		}
		lat := e.EventTime - best.T
		convs = append(convs, Conversion{ // Version zero
			EventID: e.ID, OrderID: e.OrderID, UserID: e.UserID, QuestID: best.Quest,
			DropID: e.DropID, CreatorID: e.CreatorID, ConversionTime: e.EventTime, CompletionTime: best.T,
			LatencyMs: lat, AmountMicros: e.AmountMicros, Currency: e.Currency,
		})
		first, last := spec.Starts(e.EventTime)
		for s := first; s <= last; s += spec.Slide.Milliseconds() {
			if include != nil && !include(e.UserID, s) {
				continue
			}
			for _, q := range []string{"", best.Quest} {
				k := rowKey{s, q, scope}
				r := acc[k]
				if r == nil {
					r = &Row{Start: s, End: s + spec.Size.Milliseconds(), QuestID: q, Scope: scope}
					acc[k] = r
				}
				st := stats{N: 1, Sum: lat, Max: lat}
				st.Hist.Record(lat)
				r.add(&st)
			}
		}
	}
	rows := make([]Row, 0, len(acc))
	for _, r := range acc {
		rows = append(rows, *r)
	}
	slices.SortFunc(rows, compareRows)
	slices.SortFunc(convs, func(a, b Conversion) int {
		return cmp.Or(cmp.Compare(a.ConversionTime, b.ConversionTime), cmp.Compare(a.EventID, b.EventID))
	})
	return rows, convs
}
