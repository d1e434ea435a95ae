package quest

import (
	"cmp"
	"slices"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/window"
)

type rowKey struct {
	start int64
	quest string
	scope string
}

// Merge adds up partial rows of the same identity (window, quest, scope),
// typically the latest row of each source partition, and returns the merged
// rows sorted by window, scope and quest. Versions add up too, so a merged row
// built from more information has a higher version.
func Merge(partials []Row) []Row {
	idx := make(map[rowKey]int)
	var out []Row
	for _, r := range partials {
		k := rowKey{r.Start, r.QuestID, r.Scope}
		i, ok := idx[k]
		if !ok {
			idx[k] = len(out)
			out = append(out, r)
			continue
		}
		out[i].Counts.add(&r.Counts)
		out[i].Version += r.Version
	}
	slices.SortFunc(out, compareRows)
	return out
}

func compareRows(a, b Row) int {
	return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.Scope, b.Scope), cmp.Compare(a.QuestID, b.QuestID))
}

// Batch recomputes the rows of the SPEC §5 definition from a complete set
// of events, without windows state or watermarks: the reference the streaming
// processor is tested against. include reports whether the user's events
// count in the window starting at start (nil: every user, the all scope).
// Versions are zero.
func Batch(spec window.Spec, scope string, events []event.Event, include func(user string, start int64) bool) []Row {
	slide := spec.Slide.Milliseconds()
	acc := map[rowKey]*Row{}
	for i := range events {
		e := &events[i]
		switch e.Type {
		case event.QuestStarted, event.QuestCompleted, event.QuestAbandoned:
		default:
			continue
		}
		first, last := spec.Starts(e.EventTime)
		for s := first; s <= last; s += slide {
			if include != nil && !include(e.UserID, s) {
				continue
			}
			for _, q := range []string{"", e.QuestID} {
				k := rowKey{s, q, scope}
				r := acc[k]
				if r == nil {
					r = &Row{Start: s, End: s + spec.Size.Milliseconds(), QuestID: q, Scope: scope}
					acc[k] = r
				}
				switch e.Type {
				case event.QuestStarted:
					r.Starts++
				case event.QuestCompleted:
					r.Completions++
				case event.QuestAbandoned:
					r.Abandons++
				}
			}
		}
	}
	out := make([]Row, 0, len(acc))
	for _, r := range acc {
		out = append(out, *r)
	}
	slices.SortFunc(out, compareRows)
	return out
}
