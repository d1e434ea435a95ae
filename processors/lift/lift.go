// Package lift computes creator lift per live drop (SPEC §5). The live
// window runs from drop_started to drop_ended (from the catalog: the
// schedule when lifecycle events are missing). Exposed users viewed the drop
// inside the live window; control users were active in it and not exposed.
// A user converts with a conversion at or after the first exposure (control:
// first activity in the live window) and before end + attribution window.
//
// A drop has a row every 30 s of event time (updated_at, the cutoff: the
// row counts the events before it) from its start until end + attribution,
// and a final row (final = 1, updated_at = end + attribution) once the
// watermark passes end + attribution + allowed lateness. A row's counts are
// a function of the partition's events before the cutoff that arrived
// before the watermark passed it, so rows are the same at every replay and
// with any number of processes. The catalog must hold the drop's start
// before its events are processed; events before that are not counted.
package lift

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/window"
)

// Config configures the processor.
type Config struct {
	// Attribution is how long after the drop's end a conversion counts.
	// Default 30 min.
	Attribution time.Duration
	// Update is the interval of the rows while the drop is live. Default 30 s.
	Update time.Duration
	// Lateness is the allowed lateness before the final row. Default 10 min.
	Lateness time.Duration
	// MaxLive is the longest live window: a drop whose end is unknown (no
	// drop_ended, ends_at or schedule) or later ends MaxLive after its
	// start, so its row becomes final and its state is freed. Default 24 h.
	MaxLive time.Duration
}

// live returns d's live window, at most MaxLive long; ok is false while
// the start is unknown.
func (c *Config) live(d *catalog.Drop) (start, end int64, ok bool) {
	start, end, ok = d.Live()
	if m := c.MaxLive.Milliseconds(); start != 0 && m > 0 && (!ok || end-start > m) {
		end, ok = start+m, true
	}
	return start, end, ok
}

// capped reports whether a live window [start, end) is at MaxLive: its
// end comes from the cap, not from the drop.
func (c *Config) capped(start, end int64) bool {
	m := c.MaxLive.Milliseconds()
	return m > 0 && end-start >= m
}

// DefaultConfig returns the SPEC §5 defaults.
func DefaultConfig() Config {
	return Config{Attribution: 30 * time.Minute, Update: 30 * time.Second, Lateness: 10 * time.Minute, MaxLive: 24 * time.Hour}
}

// Row is one row of creator_lift: drop × updated_at × scope. Rows of one
// identity from different partitions add up (Merge).
type Row struct {
	DropID    string
	CreatorID string
	Scope     string
	UpdatedAt int64 // Unix ms: the cutoff
	Final     bool
	Counts
	Version uint64
}

const never = math.MaxInt64

// user is a user's facts in a drop: 24 bytes, its conversions apart (few
// users convert; a slice in every user was 16 bytes more per user).
type user struct {
	active, exposed int64 // first activity / first view in the live window
	convs           int32 // its latest conversion, drop.convs[convs-1] (0: none)
}

// conv is a user's conversion in a drop, and the user's one before it
// (prev, as user.convs).
type conv struct {
	t    int64
	prev int32
}

// drop is a drop's user facts: users[pos[n]-1] is the user numbered n
// (in the Processor's users; pos[n] = 0: none), whose number is uids[i],
// in a slice (a row reads every user: in order, not through a map).
type drop struct {
	pos     []int32
	uids    []int32
	users   []user
	convs   []conv
	next    int64 // the next cutoff to emit
	version uint64
}

// addConv adds a conversion at t to user u of d.
func (d *drop) addConv(u *user, t int64) {
	d.convs = append(d.convs, conv{t: t, prev: u.convs})
	u.convs = int32(len(d.convs))
}

// convTimes appends the times of u's conversions to dst, in the order
// they were added.
func (d *drop) convTimes(dst []int64, u *user) []int64 {
	n := len(dst)
	for i := u.convs; i != 0; i = d.convs[i-1].prev {
		dst = append(dst, d.convs[i-1].t)
	}
	slices.Reverse(dst[n:])
	return dst
}

// user returns the facts of the user numbered n in t, adding them.
func (d *drop) user(n int32, t *users) *user {
	if int(n) < len(d.pos) {
		if i := d.pos[n]; i != 0 {
			return &d.users[i-1]
		}
	} else {
		d.pos = append(d.pos, make([]int32, max(int(n)+1, t.count())-len(d.pos))...)
	}
	t.hold(n)
	d.users = append(d.users, user{active: never, exposed: never})
	d.uids = append(d.uids, n)
	d.pos[n] = int32(len(d.users))
	return &d.users[len(d.users)-1]
}

// find returns the facts of the user numbered n, or nil.
func (d *drop) find(n int32) *user {
	if int(n) < len(d.pos) {
		if i := d.pos[n]; i != 0 {
			return &d.users[i-1]
		}
	}
	return nil
}

func newDrop(next int64) *drop { return &drop{next: next} }

// Excluder decides which users are left out of a drop's row because of a
// bot flag overlapping [from, to): the live and attribution window up to
// the row's cutoff. nil keeps every user (the all scope). (*bots.Flags is
// one.)
type Excluder interface {
	// EachOverlapping calls fn once for every user left out.
	EachOverlapping(from, to int64, fn func(user string))
}

// Processor computes the rows of one partition and scope.
type Processor struct {
	cfg     Config
	scope   string
	exclude Excluder
	cat     *catalog.Catalog
	drops   map[string]*drop
	users   users            // of the drops
	done    map[string]int64 // finalized drops → end + attribution
	wm      int64
	rows    []Row

	candVersion uint64
	cands       []catalog.Drop // drops with a start, by start
}

// New returns a processor over the drops of cat.
func New(cfg Config, scope string, cat *catalog.Catalog, exclude Excluder) *Processor {
	return &Processor{cfg: cfg, scope: scope, exclude: exclude, cat: cat,
		drops: map[string]*drop{}, done: map[string]int64{}, wm: window.None, candVersion: math.MaxUint64}
}

func (p *Processor) candidates() []catalog.Drop {
	if p.candVersion != p.cat.Version {
		p.cands = p.cands[:0]
		p.cat.Each(func(d *catalog.Drop) {
			if s, _, _ := d.Live(); s != 0 {
				p.cands = append(p.cands, *d)
			}
		})
		slices.SortFunc(p.cands, func(a, b catalog.Drop) int { return cmp.Compare(a.ID, b.ID) })
		p.candVersion = p.cat.Version
	}
	return p.cands
}

// Add folds e in given the watermark wm (after e); it returns 1 when e
// belonged to a drop already finalized (late), else 0.
func (p *Processor) Add(e *event.Event, wm int64) (late int) {
	p.advance(wm)
	if e.UserID == "" {
		return 0
	}
	attr := p.cfg.Attribution.Milliseconds()
	t := e.EventTime
	n := int32(-1) // e's user, numbered once a drop needs it
	for i := range p.candidates() {
		cd := &p.cands[i]
		start, end, ended := p.cfg.live(cd)
		if t < start || ended && t >= end+attr {
			continue
		}
		if _, fin := p.done[cd.ID]; fin {
			late = 1
			continue
		}
		inLive := !ended || t < end
		// Until its drop_ended, a drop's end is the one announced (ends_at,
		// the schedule): a drop that runs longer moves it later when the
		// drop_ended comes. Activity after the announced end is kept until
		// then (to end + attribution, as conversions are), and classify
		// counts it if the end moved past it.
		firm := cd.Ended != 0 || p.cfg.capped(start, end)
		if !inLive && firm && e.Type != event.Conversion {
			continue
		}
		d := p.drops[cd.ID]
		if d == nil {
			// The partition's first event of the drop may come after the
			// watermark passed some of its cutoffs (a watermark record, an
			// out-of-order event, a drop_started that came late), or its
			// end + attribution + lateness: those rows are made, and the
			// merge stage forgotten, without it (see Row and the package
			// comment: a row counts the events that arrived before the
			// watermark passed its cutoff). Its first cutoff is the next
			// one; past the final row, the event is late.
			if ended && p.wm != window.None && end+attr+p.cfg.Lateness.Milliseconds() <= p.wm {
				late = 1
				continue
			}
			step := p.cfg.Update.Milliseconds()
			next := window.Floor(start, step) + step
			if p.wm != window.None {
				next = max(next, window.Floor(p.wm, step)+step)
			}
			d = newDrop(next)
			p.drops[cd.ID] = d
		}
		if n < 0 {
			n = p.users.number(e.UserID)
		}
		u := d.user(n, &p.users)
		d.version++
		if inLive || !firm {
			u.active = min(u.active, t)
			if e.Type == event.DropViewed && e.DropID == cd.ID {
				u.exposed = min(u.exposed, t)
			}
		}
		if e.Type == event.Conversion {
			d.addConv(u, t)
		}
	}
	return late
}

// EndPassed reports whether the drop holds state here and its end, as the
// catalog now has it, put its final row at or before the watermark: a
// catalog event that moved the end there came too late for this partition
// to take part in that row. due is the watermark the final row was due at
// (end + attribution + lateness): the same in every partition, unlike the
// watermark each has when the catalog event's copy reaches it.
func (p *Processor) EndPassed(dropID string) (due int64, passed bool) {
	if p.drops[dropID] == nil || p.wm == window.None {
		return 0, false
	}
	cd, ok := p.cat.Drop(dropID)
	if !ok {
		return 0, false
	}
	_, end, ended := p.cfg.live(&cd)
	due = end + p.cfg.Attribution.Milliseconds() + p.cfg.Lateness.Milliseconds()
	return due, ended && due <= p.wm
}

// Advance moves the watermark to wm without an event.
func (p *Processor) Advance(wm int64) { p.advance(wm) }

// advance emits the rows whose cutoff the watermark passed and finalizes
// drops past end + attribution + lateness.
func (p *Processor) advance(wm int64) {
	if wm <= p.wm {
		return
	}
	prev := p.wm
	p.wm = wm
	attr, late, step := p.cfg.Attribution.Milliseconds(), p.cfg.Lateness.Milliseconds(), p.cfg.Update.Milliseconds()
	for i := range p.candidates() {
		cd := &p.cands[i]
		d := p.drops[cd.ID]
		if d == nil {
			continue
		}
		_, end, ended := p.cfg.live(cd)
		if prev != window.None && d.next <= prev {
			// The end moved later (a drop_ended after the announced
			// end) once the watermark had passed cutoffs the old end
			// gave no rows: their time is gone (a merge marker may be
			// past them, and a row emitted now would be merged from
			// some partitions only). Go on from the next cutoff, as a
			// drop first seen late does.
			d.next = window.Floor(prev, step) + step
		}
		for d.next <= wm && (!ended || d.next < end+attr) {
			p.rows = append(p.rows, p.row(cd, d, d.next, false))
			d.next += step
		}
		if ended && end+attr+late <= wm {
			// The final row is due when the watermark passes end +
			// attribution + lateness. If it passed before (prev) the
			// partition knew this end — its drop_ended came late — the
			// row's time is gone: emitted now, it could follow a merge
			// marker past it. The partition's share of it is late
			// (EndPassed, counted by the pipeline).
			if prev == window.None || end+attr+late > prev {
				p.rows = append(p.rows, p.row(cd, d, end+attr, true))
			}
			for _, n := range d.uids {
				p.users.release(n)
			}
			delete(p.drops, cd.ID)
			p.done[cd.ID] = end + attr
		}
	}
}

// Flush returns the rows produced since the last call (reused by the next
// call).
func (p *Processor) Flush() []Row {
	rows := p.rows
	p.rows = p.rows[:0]
	return rows
}

// Users returns the number of (drop, user) states.
func (p *Processor) Users() int {
	n := 0
	for _, d := range p.drops {
		n += len(d.users)
	}
	return n
}

func (p *Processor) row(cd *catalog.Drop, d *drop, cutoff int64, final bool) Row {
	start, end, ended := p.cfg.live(cd)
	attr := p.cfg.Attribution.Milliseconds()
	liveEnd, convEnd := cutoff, cutoff
	if ended {
		liveEnd, convEnd = min(cutoff, end), min(cutoff, end+attr)
	}
	r := Row{DropID: cd.ID, CreatorID: cd.CreatorID, Scope: p.scope, UpdatedAt: cutoff, Final: final, Version: d.version}
	if final {
		r.Version++ // the final row replaces a same-cutoff update
	}
	// Only the flags of bot windows before the cutoff are consulted: those
	// are final when the row is made (see pipeline), later ones may not be.
	to := convEnd
	for i := range d.users {
		r.Counts.add(d.classify(&d.users[i], liveEnd, convEnd))
	}
	if p.exclude != nil {
		// The users left out are few (flagged): take them back out.
		p.exclude.EachOverlapping(start, to, func(id string) {
			n, ok := p.users.lookup(id)
			if u := d.find(n); ok && u != nil {
				c := d.classify(u, liveEnd, convEnd)
				r.Counts.add(Counts{-c.ExposedUsers, -c.ExposedConverters, -c.ControlUsers, -c.ControlConverters})
			}
		})
	}
	return r
}

// classify returns the contribution of user u of d given the end of the
// live window and of the conversions counted.
func (d *drop) classify(u *user, liveEnd, convEnd int64) Counts {
	var c Counts
	var anchor int64
	switch {
	case u.exposed < liveEnd:
		c.ExposedUsers, anchor = 1, u.exposed
	case u.active < liveEnd:
		c.ControlUsers, anchor = 1, u.active
	default:
		return c
	}
	for i := u.convs; i != 0; i = d.convs[i-1].prev {
		if t := d.convs[i-1].t; t >= anchor && t < convEnd {
			if c.ExposedUsers == 1 {
				c.ExposedConverters = 1
			} else {
				c.ControlConverters = 1
			}
			break
		}
	}
	return c
}

// Merge adds up partial rows of the same identity (drop, updated_at, scope,
// final), returning them sorted.
func Merge(partials []Row) []Row {
	type id struct {
		drop, scope string
		at          int64
		final       bool
	}
	idx := map[id]int{}
	var out []Row
	for _, r := range partials {
		k := id{r.DropID, r.Scope, r.UpdatedAt, r.Final}
		if i, ok := idx[k]; ok {
			out[i].Counts.add(r.Counts)
			out[i].Version += r.Version
			continue
		}
		idx[k] = len(out)
		out = append(out, r)
	}
	slices.SortFunc(out, compareRows)
	return out
}

func compareRows(a, b Row) int {
	fa, fb := 0, 0
	if a.Final {
		fa = 1
	}
	if b.Final {
		fb = 1
	}
	return cmp.Or(cmp.Compare(a.DropID, b.DropID), cmp.Compare(a.Scope, b.Scope), cmp.Compare(a.UpdatedAt, b.UpdatedAt), cmp.Compare(fa, fb))
}
