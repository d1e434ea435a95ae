// Package catalog folds the catalog and drop lifecycle events (SPEC §1:
// quest_defined, drop_scheduled, drop_started, drop_ended) into the quest
// definitions and drop live windows the processors use.
//
// The fold is order-independent: for each quest and each drop field group
// one entry wins by its (event_time, event_id), so every process that has
// seen the same set of catalog events holds the same catalog, whatever
// order they arrived in. A quest's definition and a drop's schedule are the
// latest; a drop's start and end are the first (an end is final, a later
// start does not reopen the drop, nor does a later start move its start),
// its ends_at the latest start's that has one, its creator the latest that
// names one: the quest/drop API's claims fold keeps the same of the
// records it writes (docs/api.md). The live window (Live) is SPEC §5's,
// drop_started to drop_ended, which differs from the API's claim window
// in two ways: the API also opens a scheduled drop at its starts_at
// before any start, and closes it at ends_at when the end comes later.
package catalog

import (
	"strings"
	"time"

	"github.com/questline/questline/event"
)

// DefaultMinDuration is a quest's minimum duration when no quest_defined
// says otherwise (SPEC §5, impossible_quest).
const DefaultMinDuration = 60 * time.Second

// Quest is a quest definition.
type Quest struct {
	ID            string
	MinDurationMs int64
	MaxDurationMs int64 // 0 when not given
	Title         string
}

// Drop is what is known of a drop. Times are Unix ms, 0 when unknown.
type Drop struct {
	ID             string
	CreatorID      string
	ScheduledStart int64
	ScheduledEnd   int64
	Inventory      int64
	OfferID        string
	Started        int64 // drop_started event time
	Ended          int64 // drop_ended event time
	EndsAt         int64 // drop_started.ends_at, if given
}

// Live returns the drop's live window [start, end): from the first
// drop_started (else the schedule) to the first drop_ended (else the
// latest drop_started.ends_at, else the schedule). ok is false while the
// start or the end is unknown. A drop ended at or before its start was
// never live: [start, start).
func (d *Drop) Live() (start, end int64, ok bool) {
	start = d.Started
	if start == 0 {
		start = d.ScheduledStart
	}
	switch {
	case d.Ended != 0:
		end = d.Ended
		if start != 0 && end <= start {
			return start, start, true
		}
	case d.EndsAt != 0:
		end = d.EndsAt
	default:
		end = d.ScheduledEnd
	}
	return start, end, start != 0 && end > start
}

type stamp struct {
	t  int64
	id string
}

// none is the stamp of a field group no event has set.
var none = stamp{t: -1 << 62}

func (s stamp) after(o stamp) bool {
	return s.t > o.t || s.t == o.t && s.id > o.id
}

// first reports whether s comes before o, or o is none.
func (s stamp) first(o stamp) bool { return o == none || o.after(s) }

type questEntry struct {
	q  Quest
	at stamp
}

// dropEntry is a drop and the stamps of its field groups: the latest
// schedule, the first start and end, the latest start with ends_at, the
// latest event naming a creator.
type dropEntry struct {
	d                                      Drop
	sched, started, ended, endsAt, creator stamp
}

func newDropEntry(id string) *dropEntry {
	return &dropEntry{d: Drop{ID: id}, sched: none, started: none, ended: none, endsAt: none, creator: none}
}

// eventEntry returns the entry of a drop event alone: its field groups
// set, the others none.
func eventEntry(e *event.Event) dropEntry {
	at := stamp{e.EventTime, strings.Clone(e.ID)}
	x := *newDropEntry(e.DropID)
	switch e.Type {
	case event.DropScheduled:
		x.sched = at
		x.d.ScheduledStart, x.d.ScheduledEnd, x.d.Inventory = e.StartsAt, e.EndsAt, e.Inventory
		x.d.OfferID = strings.Clone(e.OfferID)
	case event.DropStarted:
		x.started, x.d.Started = at, e.EventTime
		if e.Has&event.HasEndsAt != 0 {
			x.endsAt, x.d.EndsAt = at, e.EndsAt
		}
	case event.DropEnded:
		x.ended, x.d.Ended = at, e.EventTime
	}
	if e.CreatorID != "" && e.Type != event.DropEnded {
		x.creator, x.d.CreatorID = at, strings.Clone(e.CreatorID)
	}
	return x
}

// merge folds o's field groups into d by the package's rules (the latest
// schedule, ends_at and creator; the first start and end) and reports
// whether d changed. Apply and Merge both fold through it.
func (d *dropEntry) merge(o *dropEntry) (changed bool) {
	if o.sched.after(d.sched) {
		d.sched = o.sched
		d.d.ScheduledStart, d.d.ScheduledEnd, d.d.Inventory, d.d.OfferID = o.d.ScheduledStart, o.d.ScheduledEnd, o.d.Inventory, o.d.OfferID
		changed = true
	}
	if o.started != none && o.started.first(d.started) {
		d.started, d.d.Started = o.started, o.d.Started
		changed = true
	}
	if o.endsAt.after(d.endsAt) {
		d.endsAt, d.d.EndsAt = o.endsAt, o.d.EndsAt
		changed = true
	}
	if o.ended != none && o.ended.first(d.ended) {
		d.ended, d.d.Ended = o.ended, o.d.Ended
		changed = true
	}
	if o.creator.after(d.creator) {
		d.creator, d.d.CreatorID = o.creator, o.d.CreatorID
		changed = true
	}
	return changed
}

// Catalog is the folded catalog. The zero value is not usable; call New.
type Catalog struct {
	quests map[string]*questEntry
	drops  map[string]*dropEntry
	// Version counts the changes; caches of anything derived from the
	// catalog are valid while it is unchanged.
	Version uint64
}

// New returns an empty catalog.
func New() *Catalog {
	return &Catalog{quests: map[string]*questEntry{}, drops: map[string]*dropEntry{}}
}

// Apply folds e in and reports whether it was a catalog or lifecycle event.
func (c *Catalog) Apply(e *event.Event) bool {
	at := stamp{e.EventTime, e.ID}
	switch e.Type {
	case event.QuestDefined:
		q := c.quests[e.QuestID]
		if q == nil {
			q = &questEntry{at: stamp{t: -1 << 62}}
			c.quests[strings.Clone(e.QuestID)] = q
		}
		if at.after(q.at) {
			q.at = stamp{at.t, strings.Clone(at.id)}
			q.q = Quest{ID: strings.Clone(e.QuestID), MinDurationMs: e.MinDurationMs, Title: strings.Clone(e.Title)}
			if e.Has&event.HasMaxDurationMs != 0 {
				q.q.MaxDurationMs = e.MaxDurationMs
			}
		}
	case event.DropScheduled, event.DropStarted, event.DropEnded:
		d := c.drops[e.DropID]
		if d == nil {
			d = newDropEntry(strings.Clone(e.DropID))
			c.drops[d.d.ID] = d
		}
		x := eventEntry(e)
		d.merge(&x)
	default:
		return false
	}
	c.Version++
	return true
}

// MinDurationMs returns the quest's minimum duration, DefaultMinDuration
// when it was never defined.
func (c *Catalog) MinDurationMs(quest string) int64 {
	if q := c.quests[quest]; q != nil {
		return q.q.MinDurationMs
	}
	return DefaultMinDuration.Milliseconds()
}

// Quest returns the quest's definition.
func (c *Catalog) Quest(id string) (Quest, bool) {
	q := c.quests[id]
	if q == nil {
		return Quest{}, false
	}
	return q.q, true
}

// Drop returns what is known of the drop.
func (c *Catalog) Drop(id string) (Drop, bool) {
	d := c.drops[id]
	if d == nil {
		return Drop{}, false
	}
	return d.d, true
}

// Each calls fn for every drop (any order).
func (c *Catalog) Each(fn func(d *Drop)) {
	for _, d := range c.drops {
		fn(&d.d)
	}
}

// Merge folds every entry of o into c, as if c had applied o's events:
// the result does not depend on which catalog saw which event first.
func (c *Catalog) Merge(o *Catalog) {
	changed := false
	for id, q := range o.quests {
		mine := c.quests[id]
		if mine == nil || q.at.after(mine.at) {
			cp := *q
			c.quests[id] = &cp
			changed = true
		}
	}
	for id, d := range o.drops {
		mine := c.drops[id]
		if mine == nil {
			cp := *d
			c.drops[id] = &cp
			changed = true
			continue
		}
		changed = mine.merge(d) || changed
	}
	if changed {
		c.Version++
	}
}
