package catalog

// State is the serializable state of a Catalog (encoding/gob).
type State struct {
	Version uint64
	Quests  []QuestState
	Drops   []DropState
}

// QuestState is a quest and the stamp of its definition.
type QuestState struct {
	Quest Quest
	T     int64
	ID    string
}

// DropState is a drop and the stamps of its field groups. EndsAt* and
// Creator* are absent (zero) in snapshots from before session 15, whose
// Started* stamp is the latest start's.
type DropState struct {
	Drop                        Drop
	SchedT, StartedT, EndedT    int64
	SchedID, StartedID, EndedID string
	EndsAtT, CreatorT           int64
	EndsAtID, CreatorStampID    string
}

// Snapshot returns a copy of the catalog's state.
func (c *Catalog) Snapshot() *State {
	s := &State{Version: c.Version}
	for _, q := range c.quests {
		s.Quests = append(s.Quests, QuestState{Quest: q.q, T: q.at.t, ID: q.at.id})
	}
	for _, d := range c.drops {
		s.Drops = append(s.Drops, DropState{Drop: d.d, SchedT: d.sched.t, StartedT: d.started.t, EndedT: d.ended.t,
			SchedID: d.sched.id, StartedID: d.started.id, EndedID: d.ended.id,
			EndsAtT: d.endsAt.t, EndsAtID: d.endsAt.id, CreatorT: d.creator.t, CreatorStampID: d.creator.id})
	}
	return s
}

// Restore replaces the catalog with s.
func (c *Catalog) Restore(s *State) {
	c.Version = s.Version
	c.quests = map[string]*questEntry{}
	c.drops = map[string]*dropEntry{}
	for _, q := range s.Quests {
		c.quests[q.Quest.ID] = &questEntry{q: q.Quest, at: stamp{q.T, q.ID}}
	}
	for _, d := range s.Drops {
		e := &dropEntry{d: d.Drop, sched: stamp{d.SchedT, d.SchedID}, started: stamp{d.StartedT, d.StartedID}, ended: stamp{d.EndedT, d.EndedID},
			endsAt: stamp{d.EndsAtT, d.EndsAtID}, creator: stamp{d.CreatorT, d.CreatorStampID}}
		if e.endsAt == (stamp{}) { // an older snapshot: the start's stamp had its ends_at
			e.endsAt = none
			if d.Drop.EndsAt != 0 {
				e.endsAt = e.started
			}
		}
		if e.creator == (stamp{}) { // an older snapshot: the later of schedule and start named it
			e.creator = none
			if d.Drop.CreatorID != "" {
				e.creator = e.sched
				if e.started.after(e.creator) {
					e.creator = e.started
				}
			}
		}
		c.drops[d.Drop.ID] = e
	}
}
