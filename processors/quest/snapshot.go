package quest

import "github.com/questline/questline/processors/window"

// State is the serializable state of a Processor (encoding/gob).
type State struct {
	Engine window.EngineState[pane]
}

// Snapshot returns a copy of the processor's state (it may be encoded
// while the processor goes on).
func (p *Processor) Snapshot() *State {
	return &State{Engine: p.eng.SnapshotCopy((*pane).clone)}
}

func (pn *pane) clone() *pane {
	if pn == nil {
		return nil
	}
	out := &pane{ByQuest: make(map[string]*Counts, len(pn.ByQuest))}
	for q, c := range pn.ByQuest {
		cc := *c
		out.ByQuest[q] = &cc
	}
	return out
}

// Restore replaces the processor's state with s.
func (p *Processor) Restore(s *State) {
	for i := range s.Engine.Panes {
		fix(s.Engine.Panes[i].Agg)
		for j := range s.Engine.Panes[i].Parts {
			fix(s.Engine.Panes[i].Parts[j].Agg)
		}
	}
	p.eng.Restore(s.Engine)
}

func fix(pn *pane) {
	if pn != nil && pn.ByQuest == nil { // gob drops empty maps
		pn.ByQuest = map[string]*Counts{}
	}
}
