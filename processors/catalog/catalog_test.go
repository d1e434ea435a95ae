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
