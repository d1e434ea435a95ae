package bots

import (
	"maps"
	"math"
	"slices"

	"github.com/questline/questline/processors/internal/pool"
	"github.com/questline/questline/processors/window"
)

// State is the serializable state of a Processor (encoding/gob).
type State struct {
	Engine window.EngineState[PaneState]
	Geo    map[string][]GeoMark // entity → geo-mismatched events, by time
}

// GeoMark is a geo-mismatched event of an entity: its time, the first
// window it reaches (since session 14; 0 in older snapshots, which reads
// as every window, as then) and declared country.
type GeoMark struct {
	T       int64
	Lo      int64
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
func (p *Processor) Snapshot() *State { return p.Freeze().State() }

// Frozen is a Processor's state as of Freeze, which State converts into a
// snapshot's State on any goroutine while the processor goes on. Freeze
// does the least it can, since the source stage waits for it: the panes'
// events, which are only ever appended, are viewed (a block's slices cut
// at their length), as are the devices' users lists and the names; the
// entity records and geo marks, which are pointer-free, are copied a chunk
// at a time (numbers are reused once an entity is swept). Grouping the
// events by entity, most of the work, is left to State.
type Frozen struct {
	engine    window.EngineState[pane]
	ents      entities // records and names: no index
	geo       map[string]uint32
	geoMarks  pool.Pool[geoMark]
	countries []string
}

// Freeze returns the processor's state as of now, sharing no memory the
// processor writes again.
func (p *Processor) Freeze() *Frozen {
	return &Frozen{
		engine:    p.eng.SnapshotCopy((*pane).view),
		ents:      entities{names: p.ents.names.Frozen(), recs: p.ents.recs.Copy(), n: p.ents.n},
		geo:       maps.Clone(p.geo),
		geoMarks:  p.geoMarks.Copy(),
		countries: p.countries.Names(),
	}
}

// view returns a pane that reads pn's events and users as they are now,
// while pn takes more: the pane's blocks and users lists are only appended
// to, past the view's ends.
func (pn *pane) view() *pane {
	if pn == nil {
		return nil
	}
	v := &pane{start: pn.start, serial: pn.serial, evs: events{blocks: make([]evBlock, len(pn.evs.blocks))}}
	for i, b := range pn.evs.blocks {
		v.evs.blocks[i] = evBlock{ids: b.ids[:len(b.ids):len(b.ids)], offs: b.offs[:len(b.offs):len(b.offs)]}
	}
	if pn.users != nil {
		v.users = make(map[uint32][]string, len(pn.users))
		for id, us := range pn.users {
			v.users[id] = us[:len(us):len(us)]
		}
	}
	return v
}

// State returns the frozen state as a snapshot holds it.
func (f *Frozen) State() *State {
	s := &State{Engine: window.ConvertState(f.engine, func(_ int64, pn *pane) *PaneState {
		out := &PaneState{Start: pn.start}
		at := map[uint32]int{} // entity → index in out.Entities
		for bi := range pn.evs.blocks {
			blk := &pn.evs.blocks[bi]
			for j := range blk.ids {
				ev := blk.at(j)
				i, ok := at[ev.id]
				if !ok {
					i = len(out.Entities)
					at[ev.id] = i
					out.Entities = append(out.Entities, EntityState{ID: f.ents.name(ev.id), Users: pn.users[ev.id]})
				}
				es := &out.Entities[i]
				es.Offsets = append(es.Offsets, ev.off&offMask)
				c, i, g := ev.marks()
				es.Claims, es.Impossible, es.Geo = es.Claims+uint16(c), es.Impossible+uint16(i), es.Geo+uint16(g)
			}
		}
		return out
	})}
	if len(f.geo) > 0 {
		s.Geo = make(map[string][]GeoMark, len(f.geo))
		for id, first := range f.geo {
			var out []GeoMark
			for i := first; i != 0; i = f.geoMarks.At(i).next {
				m := f.geoMarks.At(i)
				out = append(out, GeoMark{m.T, m.Lo, f.countries[m.Country]})
			}
			s.Geo[id] = out
		}
	}
	return s
}

// Restore replaces the processor's state with s.
func (p *Processor) Restore(s *State) {
	p.ents = newEntities()
	p.swept = window.None
	p.eng.Restore(window.ConvertState(s.Engine, func(start int64, ps *PaneState) *pane {
		pn := p.newPane(start)
		if ps != nil {
			for _, e := range ps.Entities {
				id := p.ents.id(e.ID)
				if e := p.ents.rec(id); start > e.last {
					e.last = start
				}
				// Each count of marks goes on that many of the entity's
				// events here (a window sums them per entity).
				for j, o := range e.Offsets {
					if j < int(e.Claims) {
						o |= markClaim
					}
					if j < int(e.Impossible) {
						o |= markImpossible
					}
					if j < int(e.Geo) {
						o |= markGeo
					}
					pn.evs.add(evt{id, o})
				}
				if len(e.Users) > 0 {
					if pn.users == nil {
						pn.users = map[uint32][]string{}
					}
					pn.users[id] = e.Users
				}
				if len(e.Offsets) >= p.heavy {
					pn.heavy = append(pn.heavy, id)
				}
				if e.Claims > 0 || e.Impossible > 0 || e.Geo > 0 || len(e.Users) > 0 {
					pn.notable = append(pn.notable, id)
				}
			}
		}
		return pn
	}))
	p.geo, p.geoMarks = make(map[string]uint32, len(s.Geo)), pool.New[geoMark](geoChunk)
	p.geoMin = math.MinInt64 // the next Flush finds the oldest
	for id, marks := range s.Geo {
		var head, last uint32
		for _, m := range marks { // by time, as Snapshot lists them
			n := p.geoMarks.Alloc()
			*p.geoMarks.At(n) = geoMark{T: m.T, Lo: m.Lo, Country: p.countries.ID(m.Country)}
			if last == 0 {
				head = n
			} else {
				p.geoMarks.At(last).next = n
			}
			last = n
		}
		if head != 0 {
			p.geo[id] = head
		}
	}
}

// FlagsState is the serializable state of Flags.
type FlagsState struct {
	Flagged map[string][]int64
	Device  map[string][]int64 // since pipeline snapshot version 6
}

// Snapshot returns a copy of the flags.
func (f *Flags) Snapshot() *FlagsState {
	clone := func(in map[string][]int64) map[string][]int64 {
		m := make(map[string][]int64, len(in))
		for id, starts := range in {
			m[id] = slices.Clone(starts)
		}
		return m
	}
	return &FlagsState{Flagged: clone(f.flagged), Device: clone(f.device)}
}

// Restore replaces the flags with s.
func (f *Flags) Restore(s *FlagsState) {
	f.flagged, f.device = s.Flagged, s.Device
	if f.flagged == nil {
		f.flagged = map[string][]int64{}
	}
	if f.device == nil {
		f.device = map[string][]int64{}
	}
}
