package latency

import (
	"math"

	"github.com/questline/questline/processors/window"
)

// State is the serializable state of a Processor (encoding/gob).
type State struct {
	Engine window.EngineState[pane]
	Users  map[string]*user
	Queue  []pending
	Seq    uint64
}

// Snapshot returns the processor's state, sharing its memory: encode it
// before the processor changes.
func (p *Processor) Snapshot() *State {
	return &State{Engine: p.eng.Snapshot(), Users: p.users, Queue: p.queue.S, Seq: p.seq}
}

// Restore replaces the processor's state with s.
func (p *Processor) Restore(s *State) {
	fix := func(pn *pane) {
		if pn != nil && pn.ByQuest == nil {
			pn.ByQuest = map[string]*stats{}
		}
	}
	for i := range s.Engine.Panes {
		fix(s.Engine.Panes[i].Agg)
		for j := range s.Engine.Panes[i].Parts {
			fix(s.Engine.Panes[i].Parts[j].Agg)
		}
	}
	p.eng.Restore(s.Engine)
	p.users = s.Users
	p.prune = math.MinInt64 // the next Flush finds the earliest
	if p.users == nil {
		p.users = map[string]*user{}
	}
	p.queue.S = s.Queue
	p.queue.Init()
	p.seq = s.Seq
	for _, u := range p.users {
		for i := range u.Comps {
			u.Comps[i].Quest = p.intern(u.Comps[i].Quest)
		}
	}
}
