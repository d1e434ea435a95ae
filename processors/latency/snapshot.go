package latency

import (
	"math"
	"slices"

	"github.com/questline/questline/processors/internal/arena"

	"github.com/questline/questline/processors/window"
)

// State is the serializable state of a Processor (encoding/gob).
type State struct {
	Engine window.EngineState[pane]
	Users  map[string]*userState
	Queue  []pending
	Seq    uint64
}

// userState is a user's state in a snapshot: a released conversion with
// its whole row, as the processor held it before session 6 (the encoding
// did not change).
type userState struct {
	Comps    []completion
	Released []releasedState
}

// pending is a queued conversion in a snapshot: its row so far (with
// Conversions; else its user and time), as the queue held it before
// session 9.
type pending struct {
	Seq uint64
	R   window.Range
	C   Conversion
}

type releasedState struct {
	R          window.Range
	C          Conversion
	Attributed bool
	Applied    bool
}

// Snapshot returns a copy of the processor's state (it may be encoded
// while the processor goes on).
func (p *Processor) Snapshot() *State { return p.Freeze().State() }

// Frozen is a Processor's state as of Freeze, which State converts into a
// snapshot's State on any goroutine while the processor goes on. Freeze
// does the least it can, since the source stage waits for it: the panes
// and the conversion queue are copied, the users' records and list nodes,
// which are pointer-free, a chunk at a time, and the ids and names, which
// only grow, are views (arena.Names.Frozen, intern.Table.Names). The map
// of users with their rows is built by State.
type Frozen struct {
	engine  window.EngineState[pane]
	users   users // no index
	convIDs arena.Names
	names   []string
	queue   []queued
	seq     uint64
	convs   bool // cfg.Conversions
}

// Freeze returns the processor's state as of now, sharing no memory the
// processor writes again.
func (p *Processor) Freeze() *Frozen {
	u := &p.users
	return &Frozen{
		engine:  p.eng.SnapshotCopy((*pane).clone),
		users:   users{ids: u.ids.Frozen(), recs: u.recs.Copy(), n: u.n, comps: u.comps.Copy(), rels: u.rels.Copy()},
		convIDs: p.convIDs.Frozen(),
		names:   p.names.Names(),
		queue:   slices.Clone(p.queue.S),
		seq:     p.seq,
		convs:   p.cfg.Conversions,
	}
}

// State returns the frozen state as a snapshot holds it.
func (f *Frozen) State() *State {
	t := &f.users
	users := make(map[string]*userState, t.len())
	for n := range t.numbers() {
		if !t.held(n) {
			continue
		}
		u, id := t.rec(n), t.id(n)              // a view: never written again
		us := &userState{Comps: []completion{}} // not nil, as before
		for i := u.comps; i != 0; i = t.comp(i).next {
			c := t.comp(i)
			us.Comps = append(us.Comps, completion{c.T, f.names[c.quest]})
		}
		for i := u.rels; i != 0; i = t.rel(i).next {
			rc := t.rel(i)
			us.Released = append(us.Released, releasedState{R: rc.r, C: rc.row(id, &f.convIDs, f.names), Attributed: rc.attributed, Applied: rc.applied})
		}
		users[id] = us
	}
	queue := make([]pending, len(f.queue))
	for i := range f.queue {
		q := &f.queue[i]
		c := Conversion{UserID: q.user, ConversionTime: q.t}
		if f.convs {
			c.EventID, c.OrderID = q.ids[:q.eventLen], q.ids[q.eventLen:]
			c.DropID, c.CreatorID, c.Currency = f.names[q.drop], f.names[q.creator], f.names[q.currency]
			c.AmountMicros = q.amount
		}
		queue[i] = pending{Seq: q.seq, R: q.r, C: c}
	}
	return &State{Engine: f.engine, Users: users, Queue: queue, Seq: f.seq}
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
	p.users, p.convIDs = newUsers(), arena.Names{}
	for id, us := range s.Users {
		if len(us.Comps) == 0 && len(us.Released) == 0 {
			continue // nothing to keep (Flush would forget it)
		}
		u := p.users.add(id)
		for _, c := range us.Comps { // ascending, as Snapshot lists them
			p.users.insertComp(u, userComp{T: c.T, quest: p.names.ID(c.Quest)}, p.after)
		}
		for _, rs := range us.Released {
			c := &rs.C
			rc := released{
				r: rs.R, t: c.ConversionTime, compT: c.CompletionTime,
				amount: c.AmountMicros, version: uint32(c.Version), quest: p.names.ID(c.QuestID), drop: p.names.ID(c.DropID),
				creator: p.names.ID(c.CreatorID), currency: p.names.ID(c.Currency), attributed: rs.Attributed, applied: rs.Applied,
			}
			p.setIDs(&rc, "", c.EventID, c.OrderID)
			if old, forgot := p.users.appendRel(u, rc); forgot { // (a snapshot of before MaxUserList)
				p.convIDs.Free(old.ids)
			}
		}
	}
	p.prune = math.MinInt64 // the next Flush finds the earliest
	p.queue.S = make([]queued, len(s.Queue))
	for i, pd := range s.Queue {
		c := &pd.C
		q := queued{seq: pd.Seq, r: pd.R, t: c.ConversionTime, user: c.UserID}
		if p.cfg.Conversions {
			q.ids, q.eventLen = c.EventID+c.OrderID, uint32(len(c.EventID))
			q.drop, q.creator, q.currency = p.names.ID(c.DropID), p.names.ID(c.CreatorID), p.names.ID(c.Currency)
			q.amount = c.AmountMicros
		}
		p.queue.S[i] = q
	}
	p.queue.Init()
	p.seq = s.Seq
}
