package lift

// State is the serializable state of a Processor (encoding/gob).
type State struct {
	WM    int64
	Drops map[string]DropState
	Done  map[string]int64
}

// DropState is one drop's per-user facts.
type DropState struct {
	Version    uint64
	NextCutoff int64
	Users      map[string]UserState
}

// UserState is one user's facts for a drop.
type UserState struct {
	Active, Exposed int64
	Convs           []int64
}

// Snapshot returns a copy of the processor's state.
func (p *Processor) Snapshot() *State {
	s := &State{WM: p.wm, Drops: map[string]DropState{}, Done: map[string]int64{}}
	for id, d := range p.drops {
		ds := DropState{NextCutoff: d.next, Version: d.version, Users: make(map[string]UserState, len(d.users))}
		for i, n := range d.uids {
			u := &d.users[i]
			ds.Users[p.users.name(n)] = UserState{Active: u.active, Exposed: u.exposed, Convs: d.convTimes(nil, u)}
		}
		s.Drops[id] = ds
	}
	for id, t := range p.done {
		s.Done[id] = t
	}
	return s
}

// Restore replaces the processor's state with s.
func (p *Processor) Restore(s *State) {
	p.wm = s.WM
	p.drops = make(map[string]*drop, len(s.Drops))
	p.users = users{}
	for id, ds := range s.Drops {
		d := newDrop(ds.NextCutoff)
		d.version = ds.Version
		for uid, us := range ds.Users {
			u := d.user(p.users.number(uid), &p.users)
			u.active, u.exposed = us.Active, us.Exposed
			for _, t := range us.Convs {
				d.addConv(u, t)
			}
		}
		p.drops[id] = d
	}
	p.done = map[string]int64{}
	for id, t := range s.Done {
		p.done[id] = t
	}
	p.candVersion = ^uint64(0)
}
