// Package catalog folds the catalog and drop lifecycle events (SPEC §1:
// quest_defined, drop_scheduled, drop_started, drop_ended) into the quest
// definitions and drop live windows the processors use.
//
// The fold is order-independent: for each quest and each drop field group
// the entry with the greatest (event_time, event_id) wins, so every process
// that has seen the same set of catalog events holds the same catalog,
// whatever order they arrived in.
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

// Live returns the drop's live window [start, end): from drop_started (else
// the schedule) to drop_ended (else drop_started.ends_at, else the
// schedule). ok is false while the start or the end is unknown.
func (d *Drop) Live() (start, end int64, ok bool) {
	start = d.Started
	if start == 0 {
		start = d.ScheduledStart
	}
	switch {
	case d.Ended != 0:
		end = d.Ended
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

func (s stamp) after(o stamp) bool {
	return s.t > o.t || s.t == o.t && s.id > o.id
}

type questEntry struct {
	q  Quest
	at stamp
}

type dropEntry struct {
	d                     Drop
	sched, started, ended stamp
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
			d = &dropEntry{d: Drop{ID: strings.Clone(e.DropID)}}
			never := stamp{t: -1 << 62}
			d.sched, d.started, d.ended = never, never, never
			c.drops[d.d.ID] = d
		}
		at.id = strings.Clone(at.id)
		switch e.Type {
		case event.DropScheduled:
			if at.after(d.sched) {
				d.sched = at
				d.d.ScheduledStart, d.d.ScheduledEnd, d.d.Inventory = e.StartsAt, e.EndsAt, e.Inventory
				d.d.OfferID = strings.Clone(e.OfferID)
				if d.d.CreatorID == "" || e.CreatorID != "" {
					d.d.CreatorID = strings.Clone(e.CreatorID)
				}
			}
		case event.DropStarted:
			if at.after(d.started) {
				d.started = at
				d.d.Started = e.EventTime
				d.d.EndsAt = 0
				if e.Has&event.HasEndsAt != 0 {
					d.d.EndsAt = e.EndsAt
				}
				if e.CreatorID != "" {
					d.d.CreatorID = strings.Clone(e.CreatorID)
				}
			}
		case event.DropEnded:
			if at.after(d.ended) {
				d.ended = at
				d.d.Ended = e.EventTime
			}
		}
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
		if d.sched.after(mine.sched) {
			mine.sched = d.sched
			mine.d.ScheduledStart, mine.d.ScheduledEnd, mine.d.Inventory, mine.d.OfferID = d.d.ScheduledStart, d.d.ScheduledEnd, d.d.Inventory, d.d.OfferID
			if d.d.CreatorID != "" {
				mine.d.CreatorID = d.d.CreatorID
			}
			changed = true
		}
		if d.started.after(mine.started) {
			mine.started = d.started
			mine.d.Started, mine.d.EndsAt = d.d.Started, d.d.EndsAt
			if d.d.CreatorID != "" {
				mine.d.CreatorID = d.d.CreatorID
			}
			changed = true
		}
		if d.ended.after(mine.ended) {
			mine.ended = d.ended
			mine.d.Ended = d.d.Ended
			changed = true
		}
	}
	if changed {
		c.Version++
	}
}
