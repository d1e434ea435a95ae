package window

import (
	"maps"
	"slices"
)

// Result describes one emitted window of a partition.
type Result struct {
	Start, End int64 // Unix ms; [Start, End)
	// Final is set on the emission made when the watermark reached
	// End + Lateness: no later event can change the window.
	Final bool
	// Updated is set when the window was emitted before: this emission
	// replaces an earlier one.
	Updated bool
	// Version grows with every update folded into the window's panes; an
	// emission with a higher version carries at least as much information.
	Version uint64
}

// Emit receives an emitted window and its non-empty panes, oldest first.
// The panes are owned by the engine: read them, do not keep them.
type Emit[P any] func(r Result, panes []*P)

// Engine keeps the panes of one partition for one window Spec and decides
// which windows to emit. P is the metric's pane aggregate.
//
// The caller drives it with the partition's watermark: Pane for each event
// (which also finalizes windows the watermark has closed), and Flush
// whenever it wants rows out (per batch or tick). Final contents do not
// depend on how often Flush is called.
type Engine[P any] struct {
	size, slide, late int64
	newPane           func(start int64) *P
	emit              Emit[P]

	wm     int64 // event-time watermark
	next   int64 // the next watermark at which some window closes
	emitWM int64 // windows ending at or before it have been emitted once
	panes  map[int64]*pane[P]

	last    *pane[P] // cache: the pane of the previous event
	scratch []*P

	// With Spec.UpdateEvery: every emitted, open window's last emission
	// (the emission watermark then), and the windows with changes not
	// emitted yet. Both keyed by window start.
	every     int64
	emittedAt map[int64]int64
	pending   map[int64]bool

	starts   []int64
	finalSeq []int64
}

type pane[P any] struct {
	start   int64
	version uint64
	dirty   bool // changed since the last Flush
	agg     *P   // contributions to every window holding the pane
	parts   []part[P]
}

// part holds contributions to only some windows of a pane: those starting
// in [lo, hi] (see PaneRange).
type part[P any] struct {
	lo, hi int64
	agg    *P
}

// NewEngine returns an engine for spec. newPane makes the empty aggregate
// of the pane starting at start; emit receives the windows.
func NewEngine[P any](spec Spec, newPane func(start int64) *P, emit Emit[P]) (*Engine[P], error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	size, slide, late := spec.ms()
	return &Engine[P]{
		size: size, slide: slide, late: late,
		newPane: newPane, emit: emit,
		wm: None, emitWM: None, next: None,
		panes:     make(map[int64]*pane[P]),
		every:     spec.UpdateEvery.Milliseconds(),
		emittedAt: map[int64]int64{},
		pending:   map[int64]bool{},
	}, nil
}

// closed reports whether the window starting at s takes no more updates.
func (e *Engine[P]) closed(s int64) bool {
	return e.wm != None && s+e.size+e.late <= e.wm
}

// Pane returns the aggregate that an event with event time t updates, given
// the partition watermark wm (after observing t), and how many of the event's
// Size/Slide windows had already closed (late for those windows). It returns
// nil when every window of t has closed: the event is late for all of them.
//
// Windows that wm closes are finalized (emitted with Final if changed since
// their last emission) before the event is applied, so a window's final
// content is a function of the records before the watermark reached its
// end + Lateness, whatever the Flush cadence.
func (e *Engine[P]) Pane(t, wm int64) (agg *P, missed int) {
	if wm > e.wm {
		e.advance(wm)
	}
	// Windows holding pane p start at p-size+slide … p; the oldest close first.
	p, missed := e.peekMissed(t)
	if missed == int(e.size/e.slide) {
		return nil, missed
	}
	pn := e.last
	if pn == nil || pn.start != p {
		pn = e.panes[p]
		if pn == nil {
			pn = &pane[P]{start: p, agg: e.newPane(p)}
			e.panes[p] = pn
		}
		e.last = pn
	}
	pn.version++
	pn.dirty = true
	return pn.agg, missed
}

// PaneRange is Pane for a contribution that belongs only to the windows
// of t starting in r: the clean scope uses it to
// leave a user out of the windows that overlap a bot flag. A range covering
// every window of t is the same as Pane. It returns nil when no window in
// the range is open; missed counts the event's closed windows as for Pane.
func (e *Engine[P]) PaneRange(t, wm int64, r Range) (agg *P, missed int) {
	first, last := Spec{}.startsMs(t, e.size, e.slide)
	if r.Lo <= first && r.Hi >= last {
		return e.Pane(t, wm)
	}
	lo, hi := max(r.Lo, first), min(r.Hi, last)
	if wm > e.wm {
		e.advance(wm)
	}
	if lo > hi || e.closed(hi) {
		_, missed = e.peekMissed(t)
		return nil, missed
	}
	whole, missed := e.Pane(t, wm)
	if whole == nil {
		return nil, missed
	}
	pn := e.last
	for i := range pn.parts {
		if pn.parts[i].lo == lo && pn.parts[i].hi == hi {
			return pn.parts[i].agg, missed
		}
	}
	pn.parts = append(pn.parts, part[P]{lo: lo, hi: hi, agg: e.newPane(pn.start)})
	return pn.parts[len(pn.parts)-1].agg, missed
}

// Missed returns how many of the windows of an event at t are closed
// under the engine's watermark, without changing state: for an event
// that updates no pane, late or not (latency's unattributed conversion).
func (e *Engine[P]) Missed(t int64) int {
	_, missed := e.peekMissed(t)
	return missed
}

// peekMissed returns how many windows of t are closed, without changing
// state.
func (e *Engine[P]) peekMissed(t int64) (p int64, missed int) {
	p = Floor(t, e.slide)
	first := p - e.size + e.slide
	if !e.closed(first) {
		return p, 0
	}
	lastClosed := Floor(e.wm-e.size-e.late, e.slide)
	if lastClosed >= p {
		return p, int(e.size / e.slide)
	}
	return p, int((lastClosed-first)/e.slide) + 1
}

// Watermark returns the event-time watermark the engine last saw.
func (e *Engine[P]) Watermark() int64 { return e.wm }

// Advance moves the event-time watermark to wm without an event (for example
// to the watermark of a restored snapshot), finalizing closed windows.
func (e *Engine[P]) Advance(wm int64) {
	if wm > e.wm {
		e.advance(wm)
	}
}

func (e *Engine[P]) advance(wm int64) {
	old := e.wm
	e.wm = wm
	if wm < e.next {
		return // no window boundary crossed
	}
	// Windows close at s+size+late for s a multiple of slide.
	e.next = Floor(wm-e.size-e.late, e.slide) + e.slide + e.size + e.late
	// Finalize windows closing in (old, wm] that changed since their last
	// emission (or were never emitted), in start order.
	e.finalSeq = e.finalSeq[:0]
	for _, s := range e.candidateStarts() {
		closesAt := s + e.size + e.late
		if closesAt > wm || (old != None && closesAt <= old) {
			continue
		}
		if s+e.size > e.emitWM || e.anyDirty(s) || e.pending[s] {
			e.finalSeq = append(e.finalSeq, s)
		}
	}
	for _, s := range e.finalSeq {
		e.emitWindow(s, true, s+e.size <= e.emitWM)
	}
	// Whatever the spec: a restored snapshot may hold entries made with
	// another UpdateEvery.
	maps.DeleteFunc(e.emittedAt, func(s, _ int64) bool { return s+e.size+e.late <= wm })
	maps.DeleteFunc(e.pending, func(s int64, _ bool) bool { return s+e.size+e.late <= wm })
	// Evict panes whose last window (the one starting at the pane) closed.
	for p, pn := range e.panes {
		if p+e.size+e.late <= wm {
			delete(e.panes, p)
			if e.last == pn {
				e.last = nil
			}
		}
	}
}

// Flush emits every open window that ends at or before the emission
// watermark emitWM (at least the event-time watermark; see Idle) and either
// was never emitted or changed since its last emission. With
// Spec.UpdateEvery, a changed window whose last emission is less than that
// behind the emission watermark waits (pending) for a later Flush or its
// final emission.
func (e *Engine[P]) Flush(emitWM int64) {
	if emitWM < e.wm {
		emitWM = e.wm
	}
	if emitWM == None {
		return
	}
	// A window emitted before (by an earlier, higher early-emission
	// watermark) is re-emitted when it changed, even if emitWM is lower now:
	// the dirty marks are cleared below for every window.
	hw := max(emitWM, e.emitWM)
	for _, s := range e.candidateStarts() {
		end := s + e.size
		if e.closed(s) || end > hw {
			continue
		}
		first := end > e.emitWM
		if !first && !e.anyDirty(s) && !e.pending[s] {
			continue
		}
		if e.every > 0 {
			if !first && hw-e.emittedAt[s] < e.every {
				e.pending[s] = true // the dirty marks are cleared below
				continue
			}
			e.emittedAt[s] = hw
		}
		delete(e.pending, s) // also without UpdateEvery (a snapshot made with it)
		e.emitWindow(s, false, !first)
	}
	if emitWM > e.emitWM {
		e.emitWM = emitWM
	}
	for _, pn := range e.panes {
		pn.dirty = false
	}
}

// candidateStarts returns, ascending, the starts of all windows that hold
// at least one live pane.
func (e *Engine[P]) candidateStarts() []int64 {
	e.starts = e.starts[:0]
	for p := range e.panes {
		for s := p - e.size + e.slide; s <= p; s += e.slide {
			e.starts = append(e.starts, s)
		}
	}
	slices.Sort(e.starts)
	return slices.Compact(e.starts)
}

func (e *Engine[P]) anyDirty(s int64) bool {
	for p := s; p < s+e.size; p += e.slide {
		if pn := e.panes[p]; pn != nil && pn.dirty {
			return true
		}
	}
	return false
}

func (e *Engine[P]) emitWindow(s int64, final, updated bool) {
	e.scratch = e.scratch[:0]
	var version uint64
	for p := s; p < s+e.size; p += e.slide {
		if pn := e.panes[p]; pn != nil {
			e.scratch = append(e.scratch, pn.agg)
			version += pn.version
			for i := range pn.parts {
				if pt := &pn.parts[i]; pt.lo <= s && s <= pt.hi {
					e.scratch = append(e.scratch, pt.agg)
				}
			}
		}
	}
	if len(e.scratch) == 0 {
		return
	}
	e.emit(Result{Start: s, End: s + e.size, Final: final, Updated: updated, Version: version}, e.scratch)
}

// Len returns the number of live panes (state size).
func (e *Engine[P]) Len() int { return len(e.panes) }

// Each calls fn for every live pane, oldest first (for snapshots).
func (e *Engine[P]) Each(fn func(start int64, version uint64, agg *P)) {
	starts := make([]int64, 0, len(e.panes))
	for p := range e.panes {
		starts = append(starts, p)
	}
	slices.Sort(starts)
	for _, p := range starts {
		pn := e.panes[p]
		fn(p, pn.version, pn.agg)
	}
}
