package bots

import (
	"slices"

	"github.com/questline/questline/processors/window"
)

// Flags holds the windows in which each entity is flagged, for the clean
// scope: a user is left out of every window (of any table) that overlaps a
// bot window in which the user is flagged. The bot processor keeps it up to
// date on every emission, so once a bot window is closed its flag is final.
//
// A user is also flagged in a bot window in which a device the user had an
// event on is flagged (SetDevice): those flags come from the device stage,
// final when they arrive, and are kept apart from the user's own, which
// the bot processor sets and clears.
type Flags struct {
	size    int64              // bot window size, ms
	flagged map[string][]int64 // entity → ascending flagged window starts
	device  map[string][]int64 // user → ascending starts of windows of a flagged device
}

// NewFlags returns an empty store for bot windows of spec.
func NewFlags(spec window.Spec) *Flags {
	return &Flags{size: spec.Size.Milliseconds(), flagged: map[string][]int64{}, device: map[string][]int64{}}
}

// SetDevice flags user in the bot window starting at start because a
// device the user had an event on in it is flagged there (final: never
// cleared but by Prune). Setting it again changes nothing.
func (f *Flags) SetDevice(user string, start int64) { insertStart(f.device, user, start) }

// insertStart adds start to id's ascending starts in m, if not there.
func insertStart(m map[string][]int64, id string, start int64) {
	starts := m[id]
	i, found := slices.BinarySearch(starts, start)
	if found {
		return
	}
	if starts == nil {
		id = string([]byte(id)) // the key outlives the event or record
	}
	m[id] = slices.Insert(starts, i, start)
}

func (f *Flags) set(id string, start int64, flagged bool) {
	if flagged {
		insertStart(f.flagged, id, start)
		return
	}
	starts := f.flagged[id]
	if i, found := slices.BinarySearch(starts, start); found {
		starts = slices.Delete(starts, i, i+1)
		if len(starts) == 0 {
			delete(f.flagged, id)
		} else {
			f.flagged[id] = starts
		}
	}
}

// Flagged reports whether the entity is flagged in the bot window starting
// at start.
func (f *Flags) Flagged(id string, start int64) bool {
	_, found := slices.BinarySearch(f.flagged[id], start)
	return found
}

// Len returns the number of flagged entities, a user flagged both on its
// own and through a device counted twice.
func (f *Flags) Len() int { return len(f.flagged) + len(f.device) }

// Prune forgets flags of bot windows ending before t.
func (f *Flags) Prune(t int64) {
	for _, m := range [2]map[string][]int64{f.flagged, f.device} {
		for id, starts := range m {
			i := 0
			for i < len(starts) && starts[i]+f.size < t {
				i++
			}
			if i == len(starts) {
				delete(m, id)
			} else if i > 0 {
				m[id] = slices.Delete(starts, 0, i)
			}
		}
	}
}

// Filter is a window.Filter for the clean scope: the windows of spec holding
// t that overlap no bot window in which user is flagged. The windows left
// form one range, because a bot flag excludes an interval of window starts
// longer than the span of the windows holding t.
func (f *Flags) Filter(user string, t int64, spec window.Spec) window.Range {
	own, dev := f.flagged[user], f.device[user]
	if len(own) == 0 && len(dev) == 0 {
		return window.Every
	}
	lo, hi := spec.Starts(t)
	size := spec.Size.Milliseconds()
	for _, starts := range [2][]int64{own, dev} {
		for _, b := range starts {
			// W=[s,s+size) overlaps B=[b,b+f.size) iff b-size < s < b+f.size.
			exLo, exHi := b-size+1, b+f.size-1
			if exHi < lo || exLo > hi {
				continue
			}
			if exLo <= lo {
				lo = max(lo, b+f.size)
			} else {
				hi = min(hi, b-size)
			}
		}
	}
	return window.Range{Lo: lo, Hi: hi}
}

// EachOverlapping calls fn for every user flagged in a bot window
// overlapping [from, to) (the users Overlaps reports), once each.
func (f *Flags) EachOverlapping(from, to int64, fn func(user string)) {
	for user, starts := range f.flagged {
		if f.any(starts, from, to) {
			fn(user)
		}
	}
	for user, starts := range f.device {
		if !f.any(starts, from, to) || f.any(f.flagged[user], from, to) {
			continue // not flagged there, or already called for
		}
		fn(user)
	}
}

// any reports whether a bot window of starts overlaps [from, to).
func (f *Flags) any(starts []int64, from, to int64) bool {
	for _, b := range starts {
		if b < to && from < b+f.size {
			return true
		}
	}
	return false
}

// Overlaps reports whether user is flagged in a bot window overlapping
// [from, to) (Unix ms): the clean scope of creator lift leaves such users out
// of a drop whose live and attribution window is [from, to).
func (f *Flags) Overlaps(user string, from, to int64) bool {
	return f.any(f.flagged[user], from, to) || f.any(f.device[user], from, to)
}
