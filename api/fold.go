package api

// The claims fold: the state of one partition of questline.claims as a
// pure function of its record prefix. Every API instance folds every
// partition in log order, so every instance reaches the same decision for
// every claim, and a restarted one re-reads the same decisions
// (docs/api.md, "Claims").

// Rejection reasons of claim_rejected (SPEC §1) that the fold decides.
const (
	ReasonSoldOut = "sold_out"
	ReasonNotLive = "not_live"
)

// Drop is a drop as the fold knows it from the API's records.
type Drop struct {
	ID        string
	CreatorID string

	Scheduled          bool
	StartsAt, EndsAt   int64 // of the schedule (Unix ms)
	Started            bool
	StartedAt          int64 // server time of the first start record
	StartEndsAt        int64 // ends_at of the latest start record that had one (0: none)
	Ended              bool
	EndedAt            int64 // server time of the first end record
	HasInventory       bool  // a schedule or start record gave an inventory
	Inventory, Granted int64 // the latest inventory given; the claims granted
}

// End returns when the live window closes by time (Unix ms; 0: no end
// time): the latest start's ends_at, else the schedule's.
func (d *Drop) End() int64 {
	if d.StartEndsAt > 0 {
		return d.StartEndsAt
	}
	if d.Scheduled {
		return d.EndsAt
	}
	return 0
}

// Live reports whether the drop is live at server time t (Unix ms): not
// ended, before its end time if it has one, and started or past its
// scheduled start.
func (d *Drop) Live(t int64) bool {
	if d.Ended {
		return false
	}
	if end := d.End(); end > 0 && t >= end {
		return false
	}
	return d.Started || d.Scheduled && t >= d.StartsAt
}

// Remaining returns the inventory not yet granted, and false when the
// drop has no inventory (unlimited).
func (d *Drop) Remaining() (int64, bool) {
	if !d.HasInventory {
		return 0, false
	}
	return max(0, d.Inventory-d.Granted), true
}

// Decision is the first decision on a claim_id: final.
type Decision struct {
	ClaimID, DropID, UserID, DeviceID, KeyID string

	At        int64 // server time of the deciding record (the outcome event's time)
	Partition int32
	Offset    int64 // of the deciding record in questline.claims
	Granted   bool
	Reason    string // ReasonSoldOut or ReasonNotLive when not granted
}

// Fold is the state of one partition of questline.claims. The zero value
// is not usable: use NewFold.
type Fold struct {
	partition int32
	drops     map[string]*Drop
	claims    map[string]*Decision
	applied   map[string]appliedRecord // event id of each drop record applied → that record
	next      int64                    // the offset after the last applied record
}

// NewFold returns the empty state of partition p.
func NewFold(p int32) *Fold {
	return &Fold{partition: p, drops: map[string]*Drop{}, claims: map[string]*Decision{}, applied: map[string]appliedRecord{}}
}

// Drop returns the drop id, or nil.
func (f *Fold) Drop(id string) *Drop { return f.drops[id] }

// appliedRecord is a drop record the fold applied and its offset.
type appliedRecord struct {
	offset int64
	rec    Record
}

// Applied returns the drop record that applied eventID (the first of its
// retries) and its offset, if any: its event is the one to write, by the
// answering instance of any retry and by the relay alike.
func (f *Fold) Applied(eventID string) (rec Record, offset int64, ok bool) {
	a, ok := f.applied[eventID]
	return a.rec, a.offset, ok
}

// Claim returns the decision on claim_id id, or nil.
func (f *Fold) Claim(id string) *Decision { return f.claims[id] }

// Apply folds the record at offset into the state. For a claim record it
// returns the claim's decision (its first, for a repeat) and whether the
// record conflicts with it (the claim_id was decided for another user or
// drop; the record then changes nothing).
func (f *Fold) Apply(offset int64, r *Record) (d *Decision, conflict bool) {
	f.next = offset + 1
	if r.Kind != KindClaim && r.EventID != "" {
		// A retried schedule, start or end (same Idempotency-Key, same
		// event_id) applies once: its repeat must not undo what came
		// between, e.g. a start's inventory.
		if _, dup := f.applied[r.EventID]; dup {
			return nil, false
		}
		f.applied[r.EventID] = appliedRecord{offset, *r}
	}
	switch r.Kind {
	case KindSchedule:
		dr := f.drop(r.DropID)
		dr.Scheduled, dr.StartsAt, dr.EndsAt = true, r.StartsAt, r.EndsAt
		f.common(dr, r)
	case KindStart:
		dr := f.drop(r.DropID)
		if !dr.Started {
			dr.Started, dr.StartedAt = true, r.At
		}
		if r.EndsAt > 0 {
			dr.StartEndsAt = r.EndsAt
		}
		f.common(dr, r)
	case KindEnd:
		dr := f.drop(r.DropID)
		if !dr.Ended {
			dr.Ended, dr.EndedAt = true, r.At
		}
	case KindClaim:
		return f.claim(offset, r)
	}
	return nil, false
}

func (f *Fold) common(dr *Drop, r *Record) {
	if r.CreatorID != "" {
		dr.CreatorID = r.CreatorID
	}
	if r.Inventory != nil {
		dr.HasInventory, dr.Inventory = true, *r.Inventory
	}
}

func (f *Fold) drop(id string) *Drop {
	dr := f.drops[id]
	if dr == nil {
		dr = &Drop{ID: id}
		f.drops[id] = dr
	}
	return dr
}

func (f *Fold) claim(offset int64, r *Record) (*Decision, bool) {
	if d := f.claims[r.ClaimID]; d != nil {
		return d, d.DropID != r.DropID || d.UserID != r.UserID
	}
	d := &Decision{
		ClaimID: r.ClaimID, DropID: r.DropID, UserID: r.UserID, DeviceID: r.DeviceID, KeyID: r.KeyID,
		At: r.At, Partition: f.partition, Offset: offset,
	}
	dr := f.drops[r.DropID]
	switch {
	case dr == nil || !dr.Live(r.At):
		d.Reason = ReasonNotLive
	case dr.HasInventory && dr.Granted >= dr.Inventory:
		d.Reason = ReasonSoldOut
	default:
		d.Granted = true
		dr.Granted++
	}
	f.claims[r.ClaimID] = d
	return d, false
}
