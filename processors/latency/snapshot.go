package latency

import (
	"math"
	"slices"

	"github.com/questline/questline/processors/window"
)

// State is the serializable state of a Processor (encoding/gob).
type State struct {
	Engine window.EngineState[pane]
	Users  map[string]*user
	Queue  []pending
	Seq    uint64
}

// Snapshot returns a copy of the processor's state (it may be encoded
// while the processor goes on).
func (p *Processor) Snapshot() *State {
	es := p.eng.SnapshotCopy((*pane).clone)
	users := make(map[string]*user, len(p.users))
	for id, u := range p.users {
		users[id] = &user{Comps: slices.Clone(u.Comps), Released: slices.Clone(u.Released)}
	}
	return &State{Engine: es, Users: users, Queue: slices.Clone(p.queue.S), Seq: p.seq}
}

func (pn *pane) clone() *pane {
	if pn == nil {
		return nil
	}
	out := &pane{ByQuest: make(map[string]*stats, len(pn.ByQuest))}
	for q, st := range pn.ByQuest {
		c := *st
		c.Hist.Buckets = slices.Clone(st.Hist.Buckets)
		c.Lats = slices.Clone(st.Lats)
		out.ByQuest[q] = &c
	}
	return out
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
