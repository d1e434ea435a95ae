package catalog

import (
	"math/rand/v2"
	"testing"

	"github.com/questline/questline/event"
)

func TestFoldIsOrderIndependent(t *testing.T) {
	evs := []event.Event{
		{ID: "a", Type: event.QuestDefined, QuestID: "q1", MinDurationMs: 90_000, EventTime: 100},
		{ID: "b", Type: event.QuestDefined, QuestID: "q1", MinDurationMs: 120_000, EventTime: 200}, // newer wins
		{ID: "c", Type: event.QuestDefined, QuestID: "q2", MinDurationMs: 30_000, EventTime: 200},
		{ID: "d", Type: event.QuestDefined, QuestID: "q2", MinDurationMs: 45_000, EventTime: 200}, // tie: greater id wins
		{ID: "e", Type: event.DropScheduled, DropID: "d1", CreatorID: "cr", StartsAt: 1000, EndsAt: 5000, Inventory: 10, EventTime: 50},
		{ID: "f", Type: event.DropStarted, DropID: "d1", EventTime: 1200},
		{ID: "g", Type: event.DropEnded, DropID: "d1", EventTime: 4000},
		{ID: "h", Type: event.DropScheduled, DropID: "d2", CreatorID: "cr", StartsAt: 7000, EndsAt: 9000, EventTime: 60},
		{ID: "i", Type: event.DropStarted, DropID: "d3", CreatorID: "cr3", EndsAt: 20_000, Has: event.HasEndsAt, EventTime: 10_000},
		{ID: "j", Type: event.DropStarted, DropID: "d4", EventTime: 10_000}, // no end known
		{ID: "k", Type: event.QuestStarted, UserID: "u", QuestID: "q1", EventTime: 1},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		c := New()
		n := 0
		for i := range evs {
			if c.Apply(&evs[i]) {
				n++
			}
		}
		if n != len(evs)-1 {
			t.Fatalf("applied %d", n)
		}
		if got := c.MinDurationMs("q1"); got != 120_000 {
			t.Fatalf("q1 min %d", got)
		}
		if got := c.MinDurationMs("q2"); got != 45_000 {
			t.Fatalf("q2 min %d", got)
		}
		if got := c.MinDurationMs("nope"); got != 60_000 {
			t.Fatalf("default min %d", got)
		}
		live := func(id string) [3]int64 {
			d, _ := c.Drop(id)
			s, e, ok := d.Live()
			b := int64(0)
			if ok {
				b = 1
			}
			return [3]int64{s, e, b}
		}
		if got := live("d1"); got != [3]int64{1200, 4000, 1} {
			t.Fatalf("d1 live %v", got)
		}
		if got := live("d2"); got != [3]int64{7000, 9000, 1} { // schedule only
			t.Fatalf("d2 live %v", got)
		}
		if got := live("d3"); got != [3]int64{10_000, 20_000, 1} {
			t.Fatalf("d3 live %v", got)
		}
		if got := live("d4"); got[2] != 0 {
			t.Fatalf("d4 live without an end: %v", got)
		}
	}
}

func TestMerge(t *testing.T) {
	a, b, all := New(), New(), New()
	evs := []event.Event{
		{ID: "1", Type: event.DropScheduled, DropID: "d", CreatorID: "c", StartsAt: 10, EndsAt: 50, EventTime: 1},
		{ID: "2", Type: event.DropStarted, DropID: "d", EventTime: 12},
		{ID: "3", Type: event.DropEnded, DropID: "d", EventTime: 40},
		{ID: "4", Type: event.QuestDefined, QuestID: "q", MinDurationMs: 5, EventTime: 1},
		{ID: "5", Type: event.QuestDefined, QuestID: "q", MinDurationMs: 7, EventTime: 2},
	}
	for i := range evs {
		all.Apply(&evs[i])
		if i%2 == 0 {
			a.Apply(&evs[i])
		} else {
			b.Apply(&evs[i])
		}
	}
	a.Merge(b)
	da, _ := a.Drop("d")
	dall, _ := all.Drop("d")
	if da != dall || a.MinDurationMs("q") != 7 {
		t.Fatalf("merged %+v min %d, want %+v min 7", da, a.MinDurationMs("q"), dall)
	}
}

// TestLifecycleRules: a drop's first start and first end win (an end is
// final), its ends_at is the latest start's that has one, its creator the
// latest event's that names one; in every arrival order, through Merge of
// any split, and through a snapshot (the claims fold's rules, docs/api.md).
func TestLifecycleRules(t *testing.T) {
	evs := []event.Event{
		{ID: "s1", Type: event.DropScheduled, DropID: "d", CreatorID: "c0", StartsAt: 1000, EndsAt: 9000, Inventory: 5, EventTime: 10},
		{ID: "a1", Type: event.DropStarted, DropID: "d", CreatorID: "c1", EventTime: 1200},
		{ID: "a2", Type: event.DropStarted, DropID: "d", EndsAt: 12_000, Has: event.HasEndsAt, EventTime: 1500}, // extends
		{ID: "a3", Type: event.DropStarted, DropID: "d", CreatorID: "c3", EventTime: 1800},                      // no ends_at: keeps a2's
		{ID: "e1", Type: event.DropEnded, DropID: "d", EventTime: 8000},
		{ID: "e2", Type: event.DropEnded, DropID: "d", EventTime: 8500},                                         // a second end
		{ID: "a4", Type: event.DropStarted, DropID: "d", EndsAt: 20_000, Has: event.HasEndsAt, EventTime: 8600}, // after the end
		// A drop ended before its only start was never live.
		{ID: "x1", Type: event.DropEnded, DropID: "x", EventTime: 500},
		{ID: "x2", Type: event.DropStarted, DropID: "x", CreatorID: "cx", EventTime: 700},
	}
	want := Drop{ID: "d", CreatorID: "c3", ScheduledStart: 1000, ScheduledEnd: 9000, Inventory: 5, Started: 1200, Ended: 8000, EndsAt: 20_000}
	check := func(how string, c *Catalog) {
		t.Helper()
		if d, _ := c.Drop("d"); d != want {
			t.Fatalf("%s: %+v, want %+v", how, d, want)
		}
		d, _ := c.Drop("d")
		if s, e, ok := d.Live(); s != 1200 || e != 8000 || !ok {
			t.Fatalf("%s: live [%d, %d) %v, want [1200, 8000)", how, s, e, ok)
		}
		x, _ := c.Drop("x")
		if s, e, ok := x.Live(); s != 700 || e != 700 || !ok {
			t.Fatalf("%s: x live [%d, %d) %v, want the empty [700, 700)", how, s, e, ok)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		a, b, all := New(), New(), New()
		for i := range evs {
			all.Apply(&evs[i])
			if rng.IntN(2) == 0 {
				a.Apply(&evs[i])
			} else {
				b.Apply(&evs[i])
			}
		}
		check("applied", all)
		a.Merge(b)
		check("merged", a)
		r := New()
		r.Restore(all.Snapshot())
		check("restored", r)
	}
}

// TestRestoreOlderSnapshot: a snapshot from before the lifecycle rules has
// no ends_at or creator stamps; they are taken from the start's and the
// later of schedule and start, so a later event still wins as it should.
func TestRestoreOlderSnapshot(t *testing.T) {
	old := &State{Drops: []DropState{{
		Drop:   Drop{ID: "d", CreatorID: "c1", ScheduledStart: 1000, ScheduledEnd: 9000, Started: 1200, EndsAt: 12_000},
		SchedT: 10, SchedID: "s1", StartedT: 1200, StartedID: "a1", EndedT: none.t,
	}}}
	c := New()
	c.Restore(old)
	for _, e := range []event.Event{
		{ID: "a0", Type: event.DropStarted, DropID: "d", EndsAt: 11_000, Has: event.HasEndsAt, EventTime: 1100}, // older ends_at: loses
		{ID: "e1", Type: event.DropEnded, DropID: "d", EventTime: 8000},
	} {
		c.Apply(&e)
	}
	d, _ := c.Drop("d")
	if want := (Drop{ID: "d", CreatorID: "c1", ScheduledStart: 1000, ScheduledEnd: 9000, Started: 1100, Ended: 8000, EndsAt: 12_000}); d != want {
		t.Fatalf("%+v, want %+v", d, want)
	}
}
