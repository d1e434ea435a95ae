package lift

import (
	"fmt"
	"math"
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
	sec    = int64(1000)
	minute = 60 * sec
	t0     = int64(1767225600000)
)

func f(p *float64) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprintf("%.4f", *p)
}

func TestComputeHandValues(t *testing.T) {
	// rE = 30/100, rC = 20/200: lift = 2; se = sqrt(1/30-1/100+1/20-1/200)
	// = sqrt(0.0683333) = 0.261406; ln 3 = 1.098612;
	// CI = exp(1.098612 ∓ 0.512356) − 1 = [0.7972, 4.0077]; Φ(4.2027) ≈ 0.99999.
	s := Counts{ExposedUsers: 100, ExposedConverters: 30, ControlUsers: 200, ControlConverters: 20}.Compute()
	if got := fmt.Sprintf("%s %s %s %s", f(s.Lift), f(s.CILow), f(s.CIHigh), f(s.ChanceToWin)); got != "2.0000 0.7972 4.0077 1.0000" {
		t.Fatalf("got %s", got)
	}
	// Equal rates: lift 0, chance 0.5.
	s = Counts{ExposedUsers: 50, ExposedConverters: 5, ControlUsers: 100, ControlConverters: 10}.Compute()
	if f(s.Lift) != "0.0000" || f(s.ChanceToWin) != "0.5000" {
		t.Fatalf("equal rates: %s %s", f(s.Lift), f(s.ChanceToWin))
	}
	cases := []struct {
		c    Counts
		want string
	}{
		{Counts{}, "NULL NULL NULL NULL"},
		{Counts{ExposedUsers: 10, ExposedConverters: 2}, "NULL NULL NULL NULL"},                                               // no control
		{Counts{ExposedUsers: 10, ExposedConverters: 2, ControlUsers: 10}, "NULL NULL NULL NULL"},                             // rC = 0
		{Counts{ExposedUsers: 10, ControlUsers: 10, ControlConverters: 5}, "-1.0000 NULL NULL NULL"},                          // rE = 0
		{Counts{ExposedUsers: 4, ExposedConverters: 4, ControlUsers: 2, ControlConverters: 2}, "0.0000 0.0000 0.0000 0.5000"}, // se = 0
		{Counts{ExposedUsers: 4, ExposedConverters: 4, ControlUsers: 4, ControlConverters: 2}, "1.0000 -0.2494 4.3289 0.9172"},
	}
	for _, c := range cases {
		s := c.c.Compute()
		got := fmt.Sprintf("%s %s %s %s", f(s.Lift), f(s.CILow), f(s.CIHigh), f(s.ChanceToWin))
		if got != c.want {
			t.Errorf("%+v: %s, want %s", c.c, got, c.want)
		}
		for _, v := range []*float64{s.Lift, s.CILow, s.CIHigh, s.ChanceToWin} {
			if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
				t.Errorf("%+v: non-finite", c.c)
			}
		}
	}
}

func TestHandComputedDrop(t *testing.T) {
	cat := catalog.New()
	cat.Apply(&event.Event{ID: "s", Type: event.DropStarted, DropID: "d1", CreatorID: "cr", EventTime: t0 + 10*minute})
	cat.Apply(&event.Event{ID: "e", Type: event.DropEnded, DropID: "d1", EventTime: t0 + 20*minute})
	cfg := DefaultConfig()
	p := New(cfg, window.ScopeAll, cat, nil)
	ev := func(typ event.Type, user string, t int64) event.Event {
		return event.Event{Type: typ, UserID: user, DropID: "d1", EventTime: t}
	}
	events := []event.Event{
		ev(event.QuestStarted, "ctl1", t0+9*minute),  // before the live window: not active
		ev(event.DropViewed, "x1", t0+11*minute),     // exposed
		ev(event.Conversion, "x1", t0+12*minute),     // converts after exposure
		ev(event.Conversion, "x2", t0+11*minute),     // converts before exposure: not counted
		ev(event.DropViewed, "x2", t0+12*minute),     // exposed
		ev(event.QuestStarted, "ctl1", t0+13*minute), // control
		ev(event.Conversion, "ctl1", t0+49*minute),   // within end + 30 min
		ev(event.QuestStarted, "ctl2", t0+14*minute), // control
		ev(event.Conversion, "ctl2", t0+50*minute),   // at end + 30 min: too late
		ev(event.DropViewed, "late", t0+20*minute),   // at the end: not in the live window
		ev(event.QuestStarted, "x3", t0+15*minute),   // active, then exposed: exposed
		ev(event.DropViewed, "x3", t0+16*minute),
	}
	wmk := window.NewWatermark(time.Minute)
	for i := range events {
		p.Add(&events[i], wmk.Observe(events[i].EventTime))
	}
	p.Advance(t0 + 61*minute)
	rows := p.Flush()
	last := rows[len(rows)-1]
	if !last.Final || last.UpdatedAt != t0+50*minute {
		t.Fatalf("last row %+v", last)
	}
	want := Counts{ExposedUsers: 3, ExposedConverters: 1, ControlUsers: 2, ControlConverters: 1}
	if last.Counts != want {
		t.Fatalf("final counts %+v, want %+v", last.Counts, want)
	}
	// The 12:30 update counts x1 (exposed at 11, converted at 12) and x2
	// (exposed at 12, its 11:00 conversion before exposure).
	for _, r := range rows {
		if r.UpdatedAt == t0+12*minute+30*sec {
			if r.Counts != (Counts{ExposedUsers: 2, ExposedConverters: 1}) {
				t.Fatalf("12:30 row %+v", r.Counts)
			}
		}
	}
	if p.Users() != 0 {
		t.Fatal("state left after final")
	}
	// An event for the finalized drop is late.
	e := ev(event.Conversion, "x1", t0+40*minute)
	if p.Add(&e, wmk.Time()) != 1 {
		t.Fatal("event of a finalized drop not late")
	}
}

func TestStreamingEqualsBatch(t *testing.T) {
	cfg := DefaultConfig()
	for seed := range uint64(5) {
		sc := streamgen.Config{Seed: seed, Events: 6000, Disorder: 30 * sec, Gap: 1000, Users: 40, Drops: 2}
		events := streamgen.Generate(sc)
		cat := catalog.New()
		cat.Apply(&event.Event{ID: "a", Type: event.DropStarted, DropID: "drop0", EventTime: t0 + 5*minute})
		cat.Apply(&event.Event{ID: "b", Type: event.DropEnded, DropID: "drop0", EventTime: t0 + 25*minute})
		cat.Apply(&event.Event{ID: "c", Type: event.DropScheduled, DropID: "drop1", StartsAt: t0 + 10*minute, EndsAt: t0 + 15*minute, EventTime: t0})
		want := Batch(cfg, window.ScopeAll, cat, events)
		if len(want) != 2 || want[0].ExposedConverters == 0 || want[0].ControlConverters == 0 {
			t.Fatalf("weak stream: %+v", want)
		}
		var updates1 []Row
		for _, n := range []int{1, 4} {
			var partials []Row
			for _, part := range streamgen.Partition(events, n) {
				p := New(cfg, window.ScopeAll, cat, nil)
				wmk := window.NewWatermark(time.Duration(sc.Disorder) * time.Millisecond)
				for i := range part {
					p.Add(&part[i], wmk.Observe(part[i].EventTime))
				}
				p.Advance(wmk.Max() + 1e9)
				partials = append(partials, p.Flush()...)
			}
			merged := Merge(partials)
			var finals []Row
			for _, r := range merged {
				if r.Final {
					r.Version = 0
					finals = append(finals, r)
				}
			}
			if fmt.Sprint(finals) != fmt.Sprint(want) {
				t.Fatalf("seed %d, %d partitions: finals\n%+v\nwant\n%+v", seed, n, finals, want)
			}
			// The updates are the same rows whatever the partitioning... of
			// the same partitions; across partition counts they can differ only
			// through lateness, which this stream has none of.
			if n == 1 {
				updates1 = merged
			} else if fmt.Sprint(stripVersions(merged)) != fmt.Sprint(stripVersions(updates1)) {
				t.Fatalf("seed %d: updates differ between 1 and 4 partitions", seed)
			}
		}
	}
}

func stripVersions(rows []Row) []Row {
	out := make([]Row, len(rows))
	for i, r := range rows {
		r.Version = 0
		out[i] = r
	}
	return out
}

// TestDropWithoutEndEndsAfterMaxLive: a drop that started and never ended
// (no drop_ended, ends_at or schedule) is live for MaxLive: its final row
// is made and its state freed, and streaming still equals the batch
// definition over that window.
func TestDropWithoutEndEndsAfterMaxLive(t *testing.T) {
	cat := catalog.New()
	cat.Apply(&event.Event{ID: "s", Type: event.DropStarted, DropID: "d1", CreatorID: "cr", EventTime: t0 + 10*minute})
	cfg := DefaultConfig()
	cfg.MaxLive = time.Hour
	p := New(cfg, window.ScopeAll, cat, nil)
	events := []event.Event{
		{Type: event.DropViewed, UserID: "x1", DropID: "d1", EventTime: t0 + 11*minute},
		{Type: event.Conversion, UserID: "x1", EventTime: t0 + 12*minute},
		{Type: event.QuestStarted, UserID: "c1", EventTime: t0 + 69*minute},   // live: the hour ends at 70
		{Type: event.QuestStarted, UserID: "late", EventTime: t0 + 71*minute}, // after it: not active
	}
	wmk := window.NewWatermark(time.Minute)
	for i := range events {
		p.Add(&events[i], wmk.Observe(events[i].EventTime))
	}
	if p.Users() == 0 {
		t.Fatal("no state while live")
	}
	p.Advance(t0 + 10*minute + time.Hour.Milliseconds() + 30*minute + 10*minute) // end + attribution + lateness
	rows := p.Flush()
	last := rows[len(rows)-1]
	if !last.Final || last.UpdatedAt != t0+100*minute {
		t.Fatalf("last row %+v, want final at start + 1 h + 30 min", last)
	}
	if want := (Counts{ExposedUsers: 1, ExposedConverters: 1, ControlUsers: 1}); last.Counts != want {
		t.Fatalf("final counts %+v, want %+v", last.Counts, want)
	}
	if p.Users() != 0 {
		t.Fatal("state left after the capped drop's final row")
	}
	batch := Batch(cfg, window.ScopeAll, cat, events)
	if len(batch) != 1 || batch[0].Counts != last.Counts || batch[0].UpdatedAt != last.UpdatedAt {
		t.Fatalf("batch %+v, streaming %+v", batch, last)
	}
}

// TestUserNumbersOutliveAFinalDrop: a user's number stays with it while
// any live drop holds it. A short drop finalizes (releasing its users)
// while a long one still holds the same users, new users arrive after
// (taking any freed numbers), and the old users go on converting in the
// long drop: its rows equal the batch definition's.
func TestUserNumbersOutliveAFinalDrop(t *testing.T) {
	cat := catalog.New()
	cat.Apply(&event.Event{ID: "s1", Type: event.DropScheduled, DropID: "short", CreatorID: "c", StartsAt: t0 + minute, EndsAt: t0 + 3*minute, EventTime: t0})
	cat.Apply(&event.Event{ID: "s2", Type: event.DropScheduled, DropID: "long", CreatorID: "c", StartsAt: t0 + 2*minute, EndsAt: t0 + 90*minute, EventTime: t0})
	var events []event.Event
	add := func(e event.Event) {
		e.ID = fmt.Sprint("e", len(events))
		events = append(events, e)
	}
	for i := range 20 { // in both drops
		u := fmt.Sprint("old", i)
		add(event.Event{Type: event.QuestStarted, UserID: u, EventTime: t0 + 150*sec + int64(i)})
		if i%2 == 0 {
			add(event.Event{Type: event.DropViewed, UserID: u, DropID: "short", EventTime: t0 + 160*sec + int64(i)})
		}
	}
	// Past the short drop's end + attribution + lateness (43 min).
	for i := range 20 {
		add(event.Event{Type: event.QuestStarted, UserID: fmt.Sprint("new", i), EventTime: t0 + 50*minute + int64(i)})
	}
	for i := range 20 {
		u := fmt.Sprint("old", i)
		if i%3 == 0 {
			add(event.Event{Type: event.DropViewed, UserID: u, DropID: "long", EventTime: t0 + 55*minute + int64(i)})
		}
		if i%2 == 0 {
			add(event.Event{Type: event.Conversion, UserID: u, EventTime: t0 + 56*minute + int64(i)})
		}
	}
	cfg := DefaultConfig()
	p := New(cfg, window.ScopeAll, cat, nil)
	wmk := window.NewWatermark(time.Minute)
	for i := range events {
		p.Add(&events[i], wmk.Observe(events[i].EventTime))
	}
	p.Advance(wmk.Max() + 1e9)
	var finals []Row
	for _, r := range p.Flush() {
		if r.Final {
			r.Version = 0
			finals = append(finals, r)
		}
	}
	slices.SortFunc(finals, func(a, b Row) int { return strings.Compare(a.DropID, b.DropID) })
	want := Batch(cfg, window.ScopeAll, cat, events) // by drop: long, short
	if len(want) != 2 || want[0].ExposedConverters == 0 || want[0].ControlConverters == 0 {
		t.Fatalf("weak stream: %+v", want)
	}
	if fmt.Sprint(finals) != fmt.Sprint(want) {
		t.Fatalf("finals\n%+v\nwant\n%+v", finals, want)
	}
}

// TestDropEndedAfterItsEndsAt: a drop announced to end at +20 min runs
// until its drop_ended at +25, which a partition sees after the users'
// events in between (as the catalog copies reach it). Those users were
// skipped as outside the live window; the live window is drop_started to
// drop_ended (SPEC §5), and the final row must equal the definition over
// the final catalog. A drop that ends as announced keeps its row.
func TestDropEndedAfterItsEndsAt(t *testing.T) {
	ev := func(typ event.Type, user string, ts int64) event.Event {
		return event.Event{ID: user + typ.String(), Type: typ, UserID: user, DropID: "d1", EventTime: ts}
	}
	started := event.Event{ID: "s", Type: event.DropStarted, DropID: "d1", CreatorID: "cr", EventTime: t0 + 10*minute,
		EndsAt: t0 + 20*minute, Has: event.HasEndsAt}
	users := []event.Event{
		ev(event.DropViewed, "a", t0+12*minute),
		ev(event.DropViewed, "b", t0+22*minute), // after ends_at, before drop_ended
		ev(event.Conversion, "b", t0+23*minute),
		ev(event.QuestStarted, "c", t0+21*minute), // control: active only after ends_at
		ev(event.QuestStarted, "d", t0+27*minute), // after the drop_ended: no one
	}
	for _, endAt := range []int64{t0 + 25*minute, t0 + 20*minute} {
		cat := catalog.New()
		cfg := DefaultConfig()
		p := New(cfg, window.ScopeAll, cat, nil)
		wmk := window.NewWatermark(30 * time.Second)
		stream := append([]event.Event{started}, users[:4]...)
		stream = append(stream, event.Event{ID: "e", Type: event.DropEnded, DropID: "d1", EventTime: endAt}, users[4])
		for i := range stream {
			if e := &stream[i]; !cat.Apply(e) {
				p.Add(e, wmk.Observe(e.EventTime))
			}
		}
		p.Advance(t0 + 200*minute)
		rows := p.Flush()
		got := rows[len(rows)-1]
		want := Batch(cfg, window.ScopeAll, cat, users)
		if !got.Final || len(want) != 1 || got.Counts != want[0].Counts {
			t.Fatalf("ended at +%d min: final row %+v, want %+v", (endAt-t0)/minute, got, want)
		}
		wantE := map[int64]Counts{t0 + 25*minute: {ExposedUsers: 2, ExposedConverters: 1, ControlUsers: 1}, t0 + 20*minute: {ExposedUsers: 1}}[endAt]
		if got.Counts != wantE {
			t.Fatalf("ended at +%d min: %+v, want %+v", (endAt-t0)/minute, got.Counts, wantE)
		}
	}
}
