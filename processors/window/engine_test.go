package window

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSpecValidate(t *testing.T) {
	good := Spec{Size: 10 * time.Minute, Slide: time.Minute, Lateness: 10 * time.Minute}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Spec{
		{Size: 0, Slide: time.Minute},
		{Size: time.Minute, Slide: 0},
		{Size: 10 * time.Minute, Slide: 3 * time.Minute},
		{Size: 1500 * time.Millisecond, Slide: 1500 * time.Millisecond},
		{Size: time.Minute, Slide: time.Minute, Lateness: -time.Second},
	} {
		if s.Validate() == nil {
			t.Errorf("%+v: want error", s)
		}
	}
}

func TestFloorAndStarts(t *testing.T) {
	s := Spec{Size: 10 * time.Second, Slide: 5 * time.Second}
	cases := []struct {
		t, pane, first, last int64
	}{
		{0, 0, -5000, 0},
		{4999, 0, -5000, 0},
		{5000, 5000, 0, 5000},
		{12345, 10000, 5000, 10000},
		{-1, -5000, -10000, -5000},
		{-5000, -5000, -10000, -5000},
		{-5001, -10000, -15000, -10000},
	}
	for _, c := range cases {
		if got := s.PaneStart(c.t); got != c.pane {
			t.Errorf("PaneStart(%d) = %d, want %d", c.t, got, c.pane)
		}
		first, last := s.Starts(c.t)
		if first != c.first || last != c.last {
			t.Errorf("Starts(%d) = %d,%d want %d,%d", c.t, first, last, c.first, c.last)
		}
		// Every start in range contains t; its neighbours do not.
		for st := first; st <= last; st += 5000 {
			if !(st <= c.t && c.t < st+10000) {
				t.Errorf("window %d does not contain %d", st, c.t)
			}
		}
		if st := first - 5000; st <= c.t && c.t < st+10000 {
			t.Errorf("window %d before first contains %d", st, c.t)
		}
	}
}

// counter is a test pane: the event times it holds.
type counter struct{ ts []int64 }

type harness struct {
	eng *Engine[counter]
	wm  Watermark
	log []string
	// latest content per window start, as the union of its panes
	last map[int64][]int64
	fin  map[int64]bool
}

func newHarness(t *testing.T, spec Spec, bound time.Duration) *harness {
	h := &harness{wm: NewWatermark(bound), last: map[int64][]int64{}, fin: map[int64]bool{}}
	eng, err := NewEngine(spec, func(int64) *counter { return &counter{} }, func(r Result, panes []*counter) {
		var ts []int64
		for _, p := range panes {
			ts = append(ts, p.ts...)
		}
		slices.Sort(ts)
		if h.fin[r.Start] {
			t.Errorf("window %d emitted after its final emission", r.Start)
		}
		h.fin[r.Start] = r.Final
		h.last[r.Start] = ts
		upd := ""
		if r.Updated {
			upd = " upd"
		}
		h.log = append(h.log, fmt.Sprintf("[%d,%d) v%d final=%v%s %v", r.Start, r.End, r.Version, r.Final, upd, ts))
	})
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	return h
}

func (h *harness) add(ts int64) int {
	wm := h.wm.Observe(ts)
	p, missed := h.eng.Pane(ts, wm)
	if p != nil {
		p.ts = append(p.ts, ts)
	}
	return missed
}

func (h *harness) flush() []string {
	h.eng.Flush(h.wm.Time())
	out := h.log
	h.log = nil
	return out
}

func expect(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("emissions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEngineEmitOnWatermarkAndLateness(t *testing.T) {
	// S=10s H=5s lateness 5s, out-of-orderness 2s.
	h := newHarness(t, Spec{Size: 10 * time.Second, Slide: 5 * time.Second, Lateness: 5 * time.Second}, 2*time.Second)

	h.add(7000) // panes: 5000; windows [0,10) and [5,15); wm 5000
	expect(t, h.flush())
	h.add(11999) // wm 9999: [0,10) not yet passed
	expect(t, h.flush())
	h.add(12000) // wm 10000 = end of [0,10): first result
	expect(t, h.flush(), "[0,10000) v1 final=false [7000]")

	// A late event inside allowed lateness updates the emitted window.
	if missed := h.add(9000); missed != 0 {
		t.Fatalf("missed %d", missed)
	}
	expect(t, h.flush(), "[0,10000) v2 final=false upd [7000 9000]")
	expect(t, h.flush()) // nothing changed

	h.add(16000) // wm 14000: [5,15) not ended yet; [0,10) closes at 15000
	if missed := h.add(8000); missed != 0 {
		t.Fatalf("missed %d", missed)
	}
	// wm 15000 closes [0,10) with its unflushed change: final emission.
	h.add(17000)
	expect(t, h.log, "[0,10000) v3 final=true upd [7000 8000 9000]")
	h.log = nil
	expect(t, h.flush(), "[5000,15000) v5 final=false [7000 8000 9000 11999 12000]")

	// 8500 now misses [0,10) (closed) but still lands in [5,15).
	if missed := h.add(8500); missed != 1 {
		t.Fatalf("missed %d, want 1", missed)
	}
	expect(t, h.flush(), "[5000,15000) v6 final=false upd [7000 8000 8500 9000 11999 12000]")

	// wm 20000 closes [5,15) (no change since flush: no final re-emission).
	h.add(22000)
	h.flush()
	if missed := h.add(9999); missed != 2 {
		t.Fatalf("event in fully closed windows: missed %d, want 2", missed)
	}
	// Pane 5000 evicted once its last window closed; pane 0 never existed.
	h.eng.Each(func(start int64, _ uint64, _ *counter) {
		if start < 10000 {
			t.Errorf("pane %d still live at wm %d", start, h.eng.Watermark())
		}
	})
}

// TestEngineEarlyEmission: an emission watermark ahead of the event-time
// watermark emits windows early without closing them.
func TestEngineEarlyEmission(t *testing.T) {
	spec := Spec{Size: 10 * time.Second, Slide: 5 * time.Second, Lateness: 5 * time.Second}
	h := newHarness(t, spec, 2*time.Second)
	h.add(7000) // wm 5000
	h.eng.Flush(h.wm.Time())
	expect(t, h.log)
	// Emission watermark 11000 emits [0,10) provisionally.
	h.eng.Flush(11000)
	expect(t, h.log, "[0,10000) v1 final=false [7000]")
	h.log = nil
	// A later event is not late (event time decides), and the window is
	// updated.
	if missed := h.add(6000); missed != 0 {
		t.Fatalf("missed %d after early emission", missed)
	}
	h.eng.Flush(16000)
	expect(t, h.log,
		"[0,10000) v2 final=false upd [6000 7000]",
		"[5000,15000) v2 final=false [6000 7000]")
}

// TestEngineMatchesBatch: random streams with disorder up to the bound give,
// whatever the flush cadence, final window contents equal to a batch
// assignment of every event to every window holding it, and no late event.
func TestEngineMatchesBatch(t *testing.T) {
	spec := Spec{Size: 60 * time.Second, Slide: 10 * time.Second, Lateness: 30 * time.Second}
	const bound = 20_000
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 7))
		n := 200 + rng.IntN(800)
		ts := make([]int64, n)
		clock := int64(rng.IntN(1e6)) - 5e5 // also negative times
		for i := range ts {
			clock += int64(rng.IntN(2000))
			ts[i] = clock - int64(rng.IntN(bound+1)) // disorder ≤ bound
		}
		want := map[int64][]int64{}
		for _, x := range ts {
			first, last := spec.Starts(x)
			for s := first; s <= last; s += 10_000 {
				want[s] = append(want[s], x)
			}
		}
		for _, cadence := range []int{1, 7, 1000} {
			h := newHarness(t, spec, bound*time.Millisecond)
			for i, x := range ts {
				if missed := h.add(x); missed != 0 {
					t.Fatalf("seed %d: event %d late with disorder within bound", seed, i)
				}
				if rng.IntN(cadence) == 0 {
					h.flush()
				}
			}
			// Close everything: a far-future watermark.
			h.eng.Advance(ts[n-1] + 1e9)
			h.flush()
			if len(h.last) != len(want) {
				t.Fatalf("seed %d cadence %d: %d windows, want %d", seed, cadence, len(h.last), len(want))
			}
			for s, w := range want {
				slices.Sort(w)
				if !slices.Equal(h.last[s], w) {
					t.Fatalf("seed %d cadence %d window %d: %v want %v", seed, cadence, s, h.last[s], w)
				}
			}
			if h.eng.Len() != 0 {
				t.Fatalf("%d panes left after closing everything", h.eng.Len())
			}
		}
	}
}

func TestEnginePaneRange(t *testing.T) {
	h := newHarness(t, Spec{Size: 10 * time.Second, Slide: 5 * time.Second, Lateness: 5 * time.Second}, 0)
	add := func(ts, lo, hi int64) int {
		wm := h.wm.Observe(ts)
		p, missed := h.eng.PaneRange(ts, wm, Range{lo, hi})
		if p != nil {
			p.ts = append(p.ts, ts)
		}
		return missed
	}
	add(6000, None+1, 1<<62) // every window: same as Pane
	add(7000, 5000, 5000)    // only [5,15)
	add(8000, -1<<62, 0)     // only [0,10)
	add(9000, 20000, 30000)  // no window of 9000: dropped
	add(25000, 0, 0)         // wm 25000 closes [0,10) (at 15000) and [5,15) (at 20000)
	expect(t, h.log,
		"[0,10000) v3 final=true [6000 8000]",
		"[5000,15000) v3 final=true [6000 7000]")
	if missed := add(9500, 5000, 5000); missed != 2 {
		t.Fatalf("missed %d", missed)
	}
}

// TestEngineUpdateAfterIdleEmission: a window emitted early by an idle
// emission watermark and changed afterwards is emitted again at the next
// Flush, even though the event-time watermark is still before its end.
func TestEngineUpdateAfterIdleEmission(t *testing.T) {
	h := newHarness(t, Spec{Size: 10 * time.Second, Slide: 5 * time.Second, Lateness: 5 * time.Second}, 0)
	h.add(7000)
	h.eng.Flush(30_000) // idle: emits [0,10) and [5,15)
	h.log = nil
	h.add(8000) // wm 8000 < 10000
	expect(t, h.flush(),
		"[0,10000) v2 final=false upd [7000 8000]",
		"[5000,15000) v2 final=false upd [7000 8000]")
}

// TestEngineUpdateEvery: with Spec.UpdateEvery, a window's updates come
// at least that far apart in emission watermark, fewer than without, the
// changes in between wait for the next update or the final emission, and
// every window ends with the same content as without it — also across a
// snapshot and restore in the middle, which keeps the waiting changes.
func TestEngineUpdateEvery(t *testing.T) {
	base := Spec{Size: 60 * time.Second, Slide: 10 * time.Second, Lateness: 5 * time.Minute}
	const bound, every = 5_000, 30_000
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 11))
		n := 2000 + rng.IntN(2000)
		ts := make([]int64, n)
		clock := int64(0)
		for i := range ts {
			clock += int64(rng.IntN(400))
			ts[i] = clock - int64(rng.IntN(bound+1))
			if rng.IntN(20) == 0 { // late for the bound, within the lateness
				ts[i] -= int64(rng.IntN(4 * 60_000))
			}
		}
		spaced := base
		spaced.UpdateEvery = every * time.Millisecond
		plain, coal := newHarness(t, base, bound*time.Millisecond), newHarness(t, spaced, bound*time.Millisecond)
		// emission watermark of each update of the coalescing engine, by window
		updates := map[int64][]int64{}
		coalEmit := coal.eng.emit
		coal.eng.emit = func(r Result, panes []*counter) {
			if r.Updated && !r.Final {
				updates[r.Start] = append(updates[r.Start], max(coal.wm.Time(), coal.eng.emitWM))
			}
			coalEmit(r, panes)
		}
		emissions := [2]int{}
		restoreAt := n / 2
		for i, x := range ts {
			plain.add(x)
			coal.add(x)
			emissions[0] += len(plain.flush())
			emissions[1] += len(coal.flush())
			if i == restoreAt {
				st := coal.eng.Snapshot()
				if len(st.Pending) == 0 {
					t.Fatalf("seed %d: no change waiting at the snapshot: the restore would test nothing", seed)
				}
				eng, err := NewEngine(spaced, func(int64) *counter { return &counter{} }, coal.eng.emit)
				if err != nil {
					t.Fatal(err)
				}
				eng.Restore(st)
				coal.eng = eng
			}
		}
		for _, h := range []*harness{plain, coal} {
			h.eng.Advance(ts[n-1] + 1e9)
			h.flush()
		}
		if len(coal.last) != len(plain.last) {
			t.Fatalf("seed %d: %d windows with UpdateEvery, %d without", seed, len(coal.last), len(plain.last))
		}
		for s, want := range plain.last {
			if !slices.Equal(coal.last[s], want) {
				t.Fatalf("seed %d window %d: %v with UpdateEvery, %v without", seed, s, coal.last[s], want)
			}
		}
		for s, at := range updates {
			for i := 1; i < len(at); i++ {
				if at[i]-at[i-1] < every {
					t.Fatalf("seed %d window %d: updates at %d and %d, under %d apart", seed, s, at[i-1], at[i], every)
				}
			}
		}
		if emissions[1] >= emissions[0] {
			t.Fatalf("seed %d: %d emissions with UpdateEvery, %d without", seed, emissions[1], emissions[0])
		}
		if seed == 0 {
			t.Logf("emissions: %d without, %d with UpdateEvery %v", emissions[0], emissions[1], spaced.UpdateEvery)
		}
	}
}

// TestEngineRestorePendingWithoutUpdateEvery: a snapshot made with
// UpdateEvery, restored into an engine without it (the spec changed across a
// restart), emits the waiting change once, at the next Flush, not at every
// Flush until the window closes, and forgets the restored entries once
// their windows close.
func TestEngineRestorePendingWithoutUpdateEvery(t *testing.T) {
	spaced := Spec{Size: 10 * time.Second, Slide: 5 * time.Second, Lateness: time.Minute, UpdateEvery: 30 * time.Second}
	plain := spaced
	plain.UpdateEvery = 0
	const b = 1_000_000
	h := newHarness(t, spaced, 0)
	h.add(b + 1000)
	h.add(b + 10_000)
	h.flush() // [b, b+10s) emitted
	h.add(b + 2000)
	if got := h.flush(); len(got) != 0 {
		t.Fatalf("update before UpdateEvery: %v", got)
	}
	st := h.eng.Snapshot()
	if !slices.Equal(st.Pending, []int64{b - 5000, b}) {
		t.Fatalf("pending %v, want [%d %d]", st.Pending, b-5000, b)
	}

	h2 := newHarness(t, plain, 0)
	h2.wm = h.wm
	h2.eng.Restore(st)
	expect(t, h2.flush(),
		"[995000,1005000) v2 final=false upd [1001000 1002000]",
		"[1000000,1010000) v2 final=false upd [1001000 1002000]")
	expect(t, h2.flush())
	expect(t, h2.flush())
	h2.add(b + 10*60_000) // closes every window
	h2.flush()
	if st := h2.eng.Snapshot(); len(st.Pending) != 0 || len(st.Emitted) != 0 {
		t.Fatalf("after every window closed: pending %v, emitted %v", st.Pending, st.Emitted)
	}
}

// TestConvertStateCarriesEverything: converting a state's aggregates
// keeps every other field, so a field added to EngineState is not lost by
// a processor that converts its panes for its snapshot (the input sets
// every field: a new one fails the test until it is set here and carried).
func TestConvertStateCarriesEverything(t *testing.T) {
	in := EngineState[counter]{WM: 1, Next: 2, EmitWM: 3, Emitted: []Emission{{4, 5}}, Pending: []int64{6},
		Panes: []PaneState[counter]{{Start: 7, Version: 8, Dirty: true, Agg: &counter{ts: []int64{9}},
			Parts: []PartState[counter]{{Lo: 10, Hi: 11, Agg: &counter{ts: []int64{12}}}}}}}
	for _, v := range []reflect.Value{reflect.ValueOf(in), reflect.ValueOf(in.Panes[0]), reflect.ValueOf(in.Panes[0].Parts[0])} {
		for i := range v.NumField() {
			if v.Field(i).IsZero() {
				t.Fatalf("%s.%s is not set in the test's input", v.Type().Name(), v.Type().Field(i).Name)
			}
		}
	}
	type box struct{ ts []int64 }
	out := ConvertState(in, func(start int64, c *counter) *box { return &box{append([]int64{start}, c.ts...)} })
	if p := out.Panes[0]; p.Agg.ts[0] != 7 || p.Parts[0].Agg.ts[0] != 7 {
		t.Fatalf("conv did not get the pane's start: %v %v", p.Agg.ts, p.Parts[0].Agg.ts)
	}
	back := ConvertState(out, func(_ int64, b *box) *counter { return &counter{ts: b.ts[1:]} })
	if !reflect.DeepEqual(back, in) {
		t.Fatalf("round trip:\n%+v\nwant\n%+v", back, in)
	}
}
