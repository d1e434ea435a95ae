package window

import (
	"cmp"
	"slices"
)

// EngineState is the serializable state of an Engine (encoding/gob: P's
// fields must be exported).
type EngineState[P any] struct {
	WM, Next, EmitWM int64
	Panes            []PaneState[P]
	// With Spec.UpdateEvery: the open windows' last emissions and the
	// windows whose changes wait (since session 6; absent before, when
	// no spec had it).
	Emitted []Emission
	Pending []int64
}

// Emission is a window's last emission: the emission watermark then.
type Emission struct {
	Start, At int64
}

// PaneState is one pane of an EngineState.
type PaneState[P any] struct {
	Start   int64
	Version uint64
	Dirty   bool
	Agg     *P
	Parts   []PartState[P]
}

// PartState is a range-restricted part of a pane (see PaneRange).
type PartState[P any] struct {
	Lo, Hi int64
	Agg    *P
}

// Snapshot returns the engine's state. It shares the aggregates: encode it
// before the engine changes, or use SnapshotCopy.
func (e *Engine[P]) Snapshot() EngineState[P] {
	s := EngineState[P]{WM: e.wm, Next: e.next, EmitWM: e.emitWM}
	for start, at := range e.emittedAt {
		s.Emitted = append(s.Emitted, Emission{Start: start, At: at})
	}
	slices.SortFunc(s.Emitted, func(a, b Emission) int { return cmp.Compare(a.Start, b.Start) })
	for start := range e.pending {
		s.Pending = append(s.Pending, start)
	}
	slices.Sort(s.Pending)
	for _, p := range e.sortedPanes() {
		ps := PaneState[P]{Start: p.start, Version: p.version, Dirty: p.dirty, Agg: p.agg}
		for _, pt := range p.parts {
			ps.Parts = append(ps.Parts, PartState[P]{Lo: pt.lo, Hi: pt.hi, Agg: pt.agg})
		}
		s.Panes = append(s.Panes, ps)
	}
	return s
}

// SnapshotCopy returns the engine's state with every aggregate copied by
// copyAgg, so that it may be encoded while the engine goes on.
func (e *Engine[P]) SnapshotCopy(copyAgg func(*P) *P) EngineState[P] {
	s := e.Snapshot()
	for i := range s.Panes {
		pn := &s.Panes[i]
		pn.Agg = copyAgg(pn.Agg) // Snapshot made Panes and Parts: only the aggregates are shared
		for j := range pn.Parts {
			pn.Parts[j].Agg = copyAgg(pn.Parts[j].Agg)
		}
	}
	return s
}

// Restore replaces the engine's state with s.
func (e *Engine[P]) Restore(s EngineState[P]) {
	e.wm, e.next, e.emitWM = s.WM, s.Next, s.EmitWM
	e.emittedAt, e.pending = map[int64]int64{}, map[int64]bool{}
	for _, em := range s.Emitted {
		e.emittedAt[em.Start] = em.At
	}
	for _, start := range s.Pending {
		e.pending[start] = true
	}
	e.panes = make(map[int64]*pane[P], len(s.Panes))
	e.last = nil
	for _, ps := range s.Panes {
		p := &pane[P]{start: ps.Start, version: ps.Version, dirty: ps.Dirty, agg: ps.Agg}
		if p.agg == nil {
			p.agg = e.newPane(ps.Start)
		}
		for _, pt := range ps.Parts {
			p.parts = append(p.parts, part[P]{lo: pt.Lo, hi: pt.Hi, agg: pt.Agg})
		}
		e.panes[ps.Start] = p
	}
}

func (e *Engine[P]) sortedPanes() []*pane[P] {
	out := make([]*pane[P], 0, len(e.panes))
	e.Each(func(start int64, _ uint64, _ *P) { out = append(out, e.panes[start]) })
	return out
}

// ConvertState returns s with every aggregate (of panes and their parts)
// converted by conv, which gets the pane's start too; everything else is
// carried over as is. Processors whose snapshot form of a pane differs
// from the pane itself convert through it, so that no field of the
// engine's state is left behind (Emitted and Pending once were).
func ConvertState[P, Q any](s EngineState[P], conv func(start int64, agg *P) *Q) EngineState[Q] {
	out := EngineState[Q]{WM: s.WM, Next: s.Next, EmitWM: s.EmitWM, Emitted: s.Emitted, Pending: s.Pending}
	if s.Panes != nil {
		out.Panes = make([]PaneState[Q], len(s.Panes))
	}
	for i, ps := range s.Panes {
		q := PaneState[Q]{Start: ps.Start, Version: ps.Version, Dirty: ps.Dirty, Agg: conv(ps.Start, ps.Agg)}
		for _, pt := range ps.Parts {
			q.Parts = append(q.Parts, PartState[Q]{Lo: pt.Lo, Hi: pt.Hi, Agg: conv(ps.Start, pt.Agg)})
		}
		out.Panes[i] = q
	}
	return out
}
