package processors

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/histogram"
	"github.com/questline/questline/processors/internal/streamgen"
	"github.com/questline/questline/processors/latency"
	"github.com/questline/questline/processors/pipeline"
	"github.com/questline/questline/processors/window"
	"github.com/questline/questline/processors/yield"
)

// TestPartialEncoding: a partial survives the binary envelope, and a
// partial written as JSON (the envelope before it, still on compacted
// topics) is read the same way.
func TestPartialEncoding(t *testing.T) {
	for _, p := range []partial{
		{Table: tQuest, Identity: "1700000000000|all|q1", Source: 7, Version: 42, Until: 1700000660000, Row: json.RawMessage(`{"Start":1}`)},
		{Table: "unknown_table", Identity: "", Source: 0, Version: 0, Row: json.RawMessage(`{}`)},
		{Source: 3, Watermark: -5},
		{Source: 2147483647, Watermark: 1 << 62},
	} {
		var bin, js partial
		if err := decodePartial(p.appendBinary(nil), &bin); err != nil {
			t.Fatalf("%+v: binary: %v", p, err)
		}
		v, err := json.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		if err := decodePartial(v, &js); err != nil {
			t.Fatalf("%+v: json: %v", p, err)
		}
		for name, got := range map[string]partial{"binary": bin, "json": js} {
			if !reflect.DeepEqual(got, p) {
				t.Errorf("%s: got %+v, want %+v", name, got, p)
			}
		}
	}
	full := (&partial{Table: tYield, Identity: "x", Source: 1, Version: 2, Row: json.RawMessage(`{}`)}).appendBinary(nil)
	for n := 1; n < len(full)-len(`{}`); n++ {
		var p partial
		if err := decodePartial(full[:n], &p); err == nil {
			t.Errorf("a partial cut at %d of %d bytes decoded as %+v", n, len(full), p)
		}
	}
}

// TestMergeStateDecodesOnce: a partial's row is decoded the first time its
// identity is merged, not again when another source's partial of the same
// identity arrives; a newer partial of a source is decoded anew.
func TestMergeStateDecodesOnce(t *testing.T) {
	m := &countingMerger{}
	ms := map[string]merger{tQuest: m}
	st := newMergeState(2)
	st.add(partial{Table: tQuest, Identity: "x", Source: 0, Version: 1, Row: json.RawMessage(`a`)})
	if err := st.emit(ms); err != nil {
		t.Fatal(err)
	}
	st.add(partial{Table: tQuest, Identity: "x", Source: 1, Version: 1, Row: json.RawMessage(`b`)})
	if err := st.emit(ms); err != nil {
		t.Fatal(err)
	}
	st.add(partial{Table: tQuest, Identity: "x", Source: 0, Version: 2, Row: json.RawMessage(`c`)})
	if err := st.emit(ms); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(m.decoded, want) {
		t.Fatalf("decoded %v, want %v", m.decoded, want)
	}
}

// TestMergeLeavesPartialsIntact: the merge stage keeps decoded partials and
// merges them again whenever their identity changes, so a Merge must not
// change the rows it is given (histograms included).
func TestMergeLeavesPartialsIntact(t *testing.T) {
	hist := func(vs ...int64) histogram.Sparse {
		var h histogram.Sparse
		for _, v := range vs {
			h.Record(v)
		}
		return h
	}
	lat := []latency.Row{
		{Start: 1, QuestID: "q", Scope: "all", Conversions: 2, SumMs: 30, MaxMs: 20, Hist: hist(10, 20), Version: 2},
		{Start: 1, QuestID: "q", Scope: "all", Conversions: 1, SumMs: 15, MaxMs: 15, Hist: hist(15), Version: 1},
	}
	yl := []yield.Row{
		{Start: 1, Placement: "p", BidderID: "b", Scope: "all", Hist: hist(100, 200), Version: 2},
		{Start: 1, Placement: "p", BidderID: "b", Scope: "all", Hist: hist(150, 200), Version: 1},
	}
	check := func(name string, rows any, merge func()) {
		before, _ := json.Marshal(rows)
		merge()
		merge()
		if after, _ := json.Marshal(rows); string(after) != string(before) {
			t.Errorf("%s: Merge changed its input:\n%s\n%s", name, before, after)
		}
	}
	check("latency", lat, func() { latency.Merge(lat) })
	check("yield", yl, func() { yield.Merge(yl) })
}

// TestNoPartialAfterItsMarker: once a source has sent the merge stage a
// watermark (Partition.Done) at or past a row's Until, it never emits that
// row again — in both scopes, whatever the flush points and with
// watermark records (idle partitions) at random places. The merge stage
// forgets an identity on that promise; a row emitted after it would
// replace the row of every source with a row of some of them.
func TestNoPartialAfterItsMarker(t *testing.T) {
	for seed := range uint64(6) {
		cfg := pipeline.DefaultConfig()
		cfg.OutOfOrder = 20 * time.Second
		m := newMarkerCheck(t, cfg, append(slices.Clone(drop0),
			event.Event{ID: "c3", Type: event.DropStarted, DropID: "drop1", CreatorID: "cr1", EventTime: t0 + 30*60_000},
			event.Event{ID: "c4", Type: event.DropEnded, DropID: "drop1", EventTime: t0 + 50*60_000})...)
		what := fmt.Sprint("seed ", seed)
		rng := rand.New(rand.NewPCG(seed, 7))
		next := 1 + rng.IntN(3000)
		streamgen.Each(streamgen.Config{Seed: seed, Events: 40_000, Users: 300, Start: t0, Gap: 400, Disorder: 20_000}, func(e *event.Event) {
			m.p.Add(e)
			if next--; next > 0 {
				return
			}
			next = 1 + rng.IntN(3000)
			if rng.IntN(4) == 0 && m.p.Watermark() != window.None {
				// A watermark record, up to ten minutes ahead of the events.
				m.p.Advance(m.p.Watermark() + rng.Int64N(600_000))
			}
			m.flush(what)
		})
		m.p.Advance(m.p.Watermark() + 24*3600_000)
		m.flush(what)
		if m.checked < 1000 {
			t.Fatalf("seed %d: only %d partials checked", seed, m.checked)
		}
	}
}

// TestNoLiftRowAfterItsMarker: a partition's first event of a drop can
// come when the watermark has already passed some of the drop's cutoffs,
// or all of them and its end + attribution + lateness (an out-of-order
// event, in a partition that had no user of the drop before). The drop's
// rows for those cutoffs, and its final row, must not follow the marker
// that passed their Until: the merge stage has forgotten the identity, and
// the partial would start a row of its own.
func TestNoLiftRowAfterItsMarker(t *testing.T) {
	for _, c := range []struct {
		clean         bool
		horizon, view int64
	}{
		// Within the disorder bound; cutoffs 5:30 … 7:30 passed, the drop live.
		{false, t0 + 8*60_000, t0 + 7*60_000},
		// Late: every cutoff and the final row passed, in both scopes.
		{false, t0 + 3*3600_000, t0 + 10*60_000},
		{true, t0 + 6*3600_000, t0 + 10*60_000},
	} {
		cfg := pipeline.DefaultConfig()
		cfg.Clean = c.clean
		m := newMarkerCheck(t, cfg, drop0...)
		what := fmt.Sprint("view at ", c.view-t0)
		p := m.p
		// Another user's events move the watermark on, a minute at a time,
		// outside the drop's live window (where they would start the drop),
		// and a watermark record (an idle partition) to the horizon.
		for tm := t0; tm <= c.horizon; tm += 60_000 {
			if tm < t0+5*60_000 || tm > t0+20*60_000 {
				p.Add(&event.Event{ID: fmt.Sprint("q", tm), Type: event.QuestStarted, UserID: "u1", QuestID: "q0", EventTime: tm})
				m.flush(what)
			}
		}
		p.Advance(c.horizon)
		m.flush(what)
		horizon := c.horizon
		// The partition's first event of the drop, out of order.
		p.Add(&event.Event{ID: "v1", Type: event.DropViewed, UserID: "u2", DropID: "drop0", EventTime: c.view})
		for tm := horizon + 60_000; tm <= horizon+3*3600_000; tm += 60_000 {
			p.Add(&event.Event{ID: fmt.Sprint("q", tm), Type: event.QuestStarted, UserID: "u1", QuestID: "q0", EventTime: tm})
			m.flush(what)
		}
	}
}

// TestLateDropEndedAfterItsMarker: a drop's end that reaches a partition
// after the watermark passed end + attribution + lateness (its final row's
// Until) adds no row below the partition's marker: the final row would
// have been due before the partition knew it, so the partition's share of
// it is late, and the drop_ended is recorded as a late event of lift. An
// end that comes before that emits the final row as usual.
func TestLateDropEndedAfterItsMarker(t *testing.T) {
	for _, c := range []struct {
		clean bool
		at    int64 // the watermark when drop_ended arrives
		late  bool
	}{
		{false, t0 + 3*3600_000, true},
		{true, t0 + 6*3600_000, true},
		{false, t0 + 55*60_000, false}, // before 20 + 30 + 10 min
	} {
		cfg := pipeline.DefaultConfig()
		cfg.Clean = c.clean
		m := newMarkerCheck(t, cfg, drop0[0]) // started; the end unknown
		what := fmt.Sprint("drop_ended at ", (c.at-t0)/60_000, " min")
		p := m.p
		p.Add(&event.Event{ID: "v1", Type: event.DropViewed, UserID: "u2", DropID: "drop0", EventTime: t0 + 7*60_000})
		tm := t0 + 8*60_000
		for ; tm <= c.at; tm += 60_000 {
			p.Add(&event.Event{ID: fmt.Sprint("q", tm), Type: event.QuestStarted, UserID: "u1", QuestID: "q0", EventTime: tm})
			m.flush(what)
		}
		late := p.Stats().Late[3]
		p.Add(&drop0[1])
		for end := tm + 8*3600_000; tm <= end; tm += 60_000 {
			p.Add(&event.Event{ID: fmt.Sprint("q", tm), Type: event.QuestStarted, UserID: "u1", QuestID: "q0", EventTime: tm})
			m.flush(what)
		}
		if got := p.Stats().Late[3] - late; c.late != (got == 1) {
			t.Errorf("%s: %d late lift events, late %v", what, got, c.late)
		}
		if m.finals != map[bool]int{true: 0, false: 1 + b2i(c.clean)}[c.late] {
			t.Errorf("%s: %d final rows of drop0", what, m.finals)
		}
	}
}

// TestDropEndedPastItsAnnouncedEnd: a drop announced to end at +20 min
// (drop_started with ends_at) runs until +55; its drop_ended reaches the
// partition with the watermark past ends_at + attribution (+50), before
// + lateness. The update rows the later end allows for cutoffs the
// watermark had passed (50:00 to 55:30) must not be emitted after the
// markers that passed them: the merge stage would write them from some
// partitions only. The final row still comes, on time.
func TestDropEndedPastItsAnnouncedEnd(t *testing.T) {
	for _, clean := range []bool{false, true} {
		cfg := pipeline.DefaultConfig()
		cfg.Clean = clean
		started := event.Event{ID: "c1", Type: event.DropStarted, DropID: "drop0", CreatorID: "cr0", EventTime: t0 + 5*60_000,
			EndsAt: t0 + 20*60_000, Has: event.HasEndsAt}
		m := newMarkerCheck(t, cfg, started)
		what := fmt.Sprint("clean ", clean)
		p := m.p
		p.Add(&event.Event{ID: "v1", Type: event.DropViewed, UserID: "u2", DropID: "drop0", EventTime: t0 + 7*60_000})
		tm := t0 + 8*60_000
		for ; tm <= t0+56*60_000; tm += 60_000 {
			p.Add(&event.Event{ID: fmt.Sprint("q", tm), Type: event.QuestStarted, UserID: "u1", QuestID: "q0", EventTime: tm})
			m.flush(what)
		}
		late := p.Stats().Late[3]
		p.Add(&event.Event{ID: "c2", Type: event.DropEnded, DropID: "drop0", EventTime: t0 + 55*60_000})
		for end := tm + 8*3600_000; tm <= end; tm += 60_000 {
			p.Add(&event.Event{ID: fmt.Sprint("q", tm), Type: event.QuestStarted, UserID: "u1", QuestID: "q0", EventTime: tm})
			m.flush(what)
		}
		if got := p.Stats().Late[3] - late; got != 0 {
			t.Errorf("%s: %d late lift events", what, got)
		}
		if m.finals != 1+b2i(clean) {
			t.Errorf("%s: %d final rows of drop0", what, m.finals)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// markerCheck flushes a partition as the source does and fails the test
// for every partial emitted with its Until at or below a marker (Done)
// the partition sent before.
type markerCheck struct {
	t       *testing.T
	s       *source
	p       *pipeline.Partition
	marker  int64
	checked int // partials checked
	finals  int // final creator_lift partials
}

func newMarkerCheck(t *testing.T, cfg pipeline.Config, catalogEvents ...event.Event) *markerCheck {
	p, err := pipeline.New(cfg, catalog.New())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range catalogEvents {
		p.Catalog().Apply(&e)
	}
	return &markerCheck{t: t, s: &source{cfg: &Config{Pipeline: &cfg}}, p: p, marker: window.None}
}

func (m *markerCheck) flush(what string) {
	err := m.s.rowPartials(0, m.p.Flush(m.p.Watermark()), func(pt partial, err error) error {
		if err != nil {
			return err
		}
		if pt.Table == "creator_lift" && strings.HasSuffix(pt.Identity, "|true") {
			m.finals++
		}
		if pt.Until <= m.marker {
			m.t.Errorf("%s: %s %s emitted with Until %d after the marker %d", what, pt.Table, pt.Identity, pt.Until, m.marker)
		}
		m.checked++
		return nil
	})
	if err != nil {
		m.t.Fatal(err)
	}
	m.p.Reset()
	m.marker = max(m.marker, m.p.Done())
}

// drop0 is a drop live from t0 + 5 min to t0 + 20 min.
var drop0 = []event.Event{
	{ID: "c1", Type: event.DropStarted, DropID: "drop0", CreatorID: "cr0", EventTime: t0 + 5*60_000},
	{ID: "c2", Type: event.DropEnded, DropID: "drop0", EventTime: t0 + 20*60_000},
}

// TestLateDropEndedRowIsTheSameInEveryPartition: a late drop_ended reaches
// every partition (a copy in each), each at its own watermark; the late
// event's rows must agree, since window_late_events keeps one row per
// (processor, event_time, event_id) and which partition's row survives
// depends on the order of the inserts (1 or 4 processes, restarts).
func TestLateDropEndedRowIsTheSameInEveryPartition(t *testing.T) {
	var rows []pipeline.Late
	for i, at := range []int64{t0 + 3*3600_000, t0 + 5*3600_000} {
		p, err := pipeline.New(pipeline.DefaultConfig(), catalog.New())
		if err != nil {
			t.Fatal(err)
		}
		p.Add(&drop0[0])
		p.Add(&event.Event{ID: fmt.Sprint("v", i), Type: event.DropViewed, UserID: fmt.Sprint("u", i), DropID: "drop0", EventTime: t0 + 7*60_000})
		for tm := t0 + 8*60_000; tm <= at; tm += 60_000 {
			p.Add(&event.Event{ID: fmt.Sprint("q", i, tm), Type: event.QuestStarted, UserID: fmt.Sprint("u", i), QuestID: "q0", EventTime: tm})
		}
		p.Flush(p.Watermark())
		p.Reset()
		p.Add(&drop0[1])
		late := p.Flush(p.Watermark()).Late
		if len(late) != 1 {
			t.Fatalf("partition %d: %d late rows, want 1", i, len(late))
		}
		rows = append(rows, late[0])
		p.Reset()
	}
	if rows[0] != rows[1] {
		t.Errorf("the late drop_ended's rows differ between partitions:\n%+v\n%+v", rows[0], rows[1])
	}
}
