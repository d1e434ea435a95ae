package bots

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/internal/streamgen"
	"github.com/questline/questline/processors/window"
)

const (
	sec = int64(1000)
	t0  = int64(1767225600000)
)

func TestHandComputed(t *testing.T) {
	cat := catalog.New()
	cat.Apply(&event.Event{ID: "qd", Type: event.QuestDefined, QuestID: "easy", MinDurationMs: 5000, EventTime: 1})
	var evs []event.Event
	add := func(e event.Event) { evs = append(evs, e) }
	for i := range int64(25) { // metronome + velocity
		add(event.Event{Type: event.DropViewed, UserID: "bot1", DeviceID: "dbot", EventTime: t0 + i*2*sec})
	}
	add(event.Event{Type: event.DropViewed, UserID: "h1", DeviceID: "dh", Country: "DE", EdgeCountry: "FR", EventTime: t0 + 5*sec})
	add(event.Event{Type: event.QuestCompleted, UserID: "q1", QuestID: "hard", DurationMs: 10_000, Has: event.HasDurationMs, EventTime: t0 + 6*sec})
	add(event.Event{Type: event.QuestCompleted, UserID: "q2", QuestID: "easy", DurationMs: 10_000, Has: event.HasDurationMs, EventTime: t0 + 6*sec})
	for i, u := range []string{"a", "b", "c", "d"} {
		add(event.Event{Type: event.DropViewed, UserID: u, DeviceID: "d0", EventTime: t0 + int64(i)*sec})
	}
	for i := range int64(5) {
		add(event.Event{Type: event.DropClaimed, UserID: "c1", DeviceID: "dc", EventTime: t0 + 30*sec + i})
	}
	slices.SortFunc(evs, func(a, b event.Event) int { return int(a.EventTime - b.EventTime) })

	run := func(entity string) map[string]string {
		cfg := DefaultConfig()
		cfg.Entity = entity
		cfg.Velocity = 20
		flags := NewFlags(cfg.Window)
		p, err := New(cfg, cat, flags)
		if err != nil {
			t.Fatal(err)
		}
		wmk := window.NewWatermark(0)
		for i := range evs {
			p.Add(&evs[i], wmk.Observe(evs[i].EventTime))
		}
		p.Advance(t0 + time.Hour.Milliseconds())
		got := map[string]string{}
		for _, r := range p.Flush(t0 + time.Hour.Milliseconds()) {
			if r.Start != t0 {
				continue
			}
			got[r.EntityID] = fmt.Sprintf("n=%d score=%.2f flagged=%v %s", r.Events, r.Score, r.Flagged, strings.Join(r.Reasons(), ","))
			if r.Flagged != flags.Flagged(r.EntityID, r.Start) {
				t.Errorf("flag store disagrees for %s", r.EntityID)
			}
		}
		return got
	}
	users := run(EntityUser)
	want := map[string]string{
		"bot1": "n=25 score=0.88 flagged=true velocity,metronome",
		"h1":   "n=1 score=0.30 flagged=false geo_mismatch",
		"q1":   "n=1 score=0.80 flagged=true impossible_quest",
		"c1":   "n=5 score=0.60 flagged=true claim_burst",
	}
	if fmt.Sprint(users) != fmt.Sprint(want) {
		t.Fatalf("users:\n%v\nwant\n%v", users, want)
	}
	devices := run(EntityDevice)
	if devices["d0"] != "n=4 score=0.40 flagged=false shared_device" {
		t.Fatalf("devices: %v", devices)
	}
	if devices["dbot"] != "n=25 score=0.88 flagged=true velocity,metronome" {
		t.Fatalf("devices: %v", devices)
	}
}

func TestFlagsFilter(t *testing.T) {
	bot := window.Spec{Size: time.Minute, Slide: 10 * time.Second}
	f := NewFlags(bot)
	// Flagged in the bot window [100 s, 160 s).
	f.set("u", 100*sec, true)
	spec := window.Spec{Size: 5 * time.Minute, Slide: time.Minute} // windows of t = 200 s start at -60 … 180 s
	r := f.Filter("u", 200*sec, spec)
	// W=[s, s+300 s) overlaps [100,160) iff -200 < s < 160: s ∈ {-60,…,120} excluded, 180 left.
	if r.Lo != 160*sec || r.Hi != 180*sec {
		t.Fatalf("range %+v", r)
	}
	if got := f.Filter("v", 200*sec, spec); got != window.Every {
		t.Fatalf("unflagged user: %+v", got)
	}
	// A flag far after t excludes the late starts only.
	f.set("w", 400*sec, true) // excludes 100 < s < 460
	if r := f.Filter("w", 200*sec, spec); r.Lo != -60*sec || r.Hi != 100*sec {
		t.Fatalf("range %+v", r)
	}
	f.set("w", 400*sec, false)
	if f.Len() != 1 {
		t.Fatalf("len %d", f.Len())
	}
	f.Prune(161 * sec)
	if f.Len() != 0 {
		t.Fatal("prune kept an old flag")
	}
}

func TestStreamingEqualsBatch(t *testing.T) {
	for _, entity := range []string{EntityUser, EntityDevice} {
		cfg := DefaultConfig()
		cfg.Entity = entity
		cfg.Velocity, cfg.ClaimBurst, cfg.MetronomeEvents, cfg.MetronomeCV = 6, 2, 4, 0.6
		for seed := range uint64(5) {
			sc := streamgen.Config{Seed: seed, Events: 3000, Disorder: 20 * sec, Gap: 300, Users: 12}
			events := streamgen.Generate(sc)
			want := Batch(cfg, nil, events)
			if len(want) < 50 {
				t.Fatalf("only %d signal rows: a weak test", len(want))
			}
			p, err := New(cfg, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			wmk := window.NewWatermark(time.Duration(sc.Disorder) * time.Millisecond)
			latest := map[[2]any]Row{}
			keep := func(rows []Row) {
				for _, r := range rows {
					latest[[2]any{r.Start, r.EntityID}] = r
				}
			}
			for i := range events {
				wm := wmk.Observe(events[i].EventTime)
				if missed := p.Add(&events[i], wm); missed != 0 {
					t.Fatal("late within bound")
				}
				if i%17 == 0 {
					keep(p.Flush(wm))
				}
			}
			p.Advance(wmk.Max() + 1e9)
			keep(p.Flush(wmk.Max() + 1e9))
			var got []Row
			for _, r := range latest {
				if r.Score > 0 {
					r.Version = 0
					got = append(got, r)
				}
			}
			slices.SortFunc(got, compareRows)
			if !slices.Equal(got, want) {
				t.Fatalf("%s seed %d: %d rows, want %d", entity, seed, len(got), len(want))
			}
		}
	}
}
