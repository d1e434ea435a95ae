package bots

import "github.com/questline/questline/processors/window"

// State is the serializable state of a Processor (encoding/gob).
type State struct {
	Engine window.EngineState[PaneState]
	Geo    map[string][]GeoMark // entity → geo-mismatched events, by time
}

// GeoMark is a geo-mismatched event of an entity.
type GeoMark struct {
	T       int64
	Country string
}

// PaneState is one pane's entities.
type PaneState struct {
	Start    int64
	Entities []EntityState
}

// EntityState is one entity's share of a pane.
type EntityState struct {
	ID                      string
	Offsets                 []uint32
	Claims, Impossible, Geo uint16
	Users                   []string
}

// Snapshot returns a copy of the processor's state.
func (p *Processor) Snapshot() *State {
	es := p.eng.Snapshot()
	s := &State{Engine: window.EngineState[PaneState]{WM: es.WM, Next: es.Next, EmitWM: es.EmitWM}}
	for _, ps := range es.Panes {
		out := &PaneState{Start: ps.Agg.start}
		for id, en := range ps.Agg.ents {
			out.Entities = append(out.Entities, EntityState{ID: id, Offsets: en.offs, Claims: en.claims, Impossible: en.impossible, Geo: en.geo, Users: en.users})
		}
		s.Engine.Panes = append(s.Engine.Panes, window.PaneState[PaneState]{Start: ps.Start, Version: ps.Version, Dirty: ps.Dirty, Agg: out})
	}
	if len(p.geo) > 0 {
		s.Geo = make(map[string][]GeoMark, len(p.geo))
		for id, marks := range p.geo {
			out := make([]GeoMark, len(marks))
			for i, m := range marks {
				out[i] = GeoMark(m)
			}
			s.Geo[id] = out
		}
	}
	return s
}

// Restore replaces the processor's state with s.
func (p *Processor) Restore(s *State) {
	es := window.EngineState[pane]{WM: s.Engine.WM, Next: s.Engine.Next, EmitWM: s.Engine.EmitWM}
	for _, ps := range s.Engine.Panes {
		pn := &pane{start: ps.Start, ents: map[string]*ent{}}
		if ps.Agg != nil {
			for _, e := range ps.Agg.Entities {
				en := &ent{offs: e.Offsets, claims: e.Claims, impossible: e.Impossible, geo: e.Geo, users: e.Users}
				pn.ents[e.ID] = en
				if len(en.offs) >= p.heavy {
					pn.heavy = append(pn.heavy, e.ID)
				}
				if en.notable() {
					pn.notable = append(pn.notable, e.ID)
				}
			}
		}
		es.Panes = append(es.Panes, window.PaneState[pane]{Start: ps.Start, Version: ps.Version, Dirty: ps.Dirty, Agg: pn})
	}
	p.eng.Restore(es)
	p.geo = make(map[string][]geoMark, len(s.Geo))
	for id, marks := range s.Geo {
		out := make([]geoMark, len(marks))
		for i, m := range marks {
			out[i] = geoMark{m.T, p.intern(m.Country)}
		}
		p.geo[id] = out
	}
}

// FlagsState is the serializable state of Flags.
type FlagsState struct {
	Flagged map[string][]int64
}

// Snapshot returns the flags (shared: encode before they change).
func (f *Flags) Snapshot() *FlagsState { return &FlagsState{Flagged: f.flagged} }

// Restore replaces the flags with s.
func (f *Flags) Restore(s *FlagsState) {
	f.flagged = s.Flagged
	if f.flagged == nil {
		f.flagged = map[string][]int64{}
	}
}
