package api

import (
	"time"

	"github.com/questline/questline/event"
)

// The claims fold: the state of one partition of questline.claims as a
// pure function of its record prefix. Every API instance folds every
// partition in log order, so every instance reaches the same decision for
// every claim, and a restarted one re-reads the same decisions
// (docs/api.md, "Claims").
//
// With a retention, the fold also forgets: a drop closed (ended, or past
// its end time) more than the retention before the partition's clock (the
// greatest server time among the records folded so far, never the
// reader's clock) is dropped with its decisions and applied records, and
// only its id is kept (Gone). Forgetting is a function of the record
// prefix too, so every instance forgets at the same record. A record on a
// forgotten drop changes nothing and decides nothing: a retried claim is
// never decided again, differently.

// Rejection reasons of claim_rejected (SPEC §1) that the fold decides.
const (
	ReasonSoldOut = event.ReasonSoldOut
	ReasonNotLive = event.ReasonNotLive
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

// closed returns when the drop closed for good or by time (Unix ms): the
// first end record's time or its end time, whichever is earlier; false
// while it has neither (started without an end time, never ended).
// A drop past its end time but not ended may still be reopened by a start
// with a later ends_at: closed then moves.
func (d *Drop) closed() (int64, bool) {
	end := d.End()
	switch {
	case d.Ended && (end == 0 || d.EndedAt < end):
		return d.EndedAt, true
	case end > 0:
		return end, true
	}
	return 0, false
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
// is not usable: use NewFold or NewFoldRetention.
type Fold struct {
	partition int32
	drops     map[string]*Drop
	claims    map[string]*Decision
	applied   map[string]appliedRecord // event id of each drop record applied → that record
	next      int64                    // the offset after the last applied record

	retention int64                  // ms; 0: never forget
	clock     int64                  // the greatest server time of the records folded
	due       int64                  // no drop is forgotten before the clock reaches this (0: none pending)
	byDrop    map[string]*dropClaims // drop id → its decisions (drops the fold does not know too)
	gone      map[string]goneDrop    // forgotten drop id → when it closed, and where it was forgotten
}

// goneDrop is what the fold keeps of a forgotten drop.
type goneDrop struct {
	closed int64 // when it closed (Unix ms)
	offset int64 // of the record whose time made the fold forget it
}

// dropClaims are the decisions on one drop id, so that they can be
// forgotten with it.
type dropClaims struct {
	decided []*Decision
	last    int64 // the latest server time of a decision: when an unknown drop's id "closes"
}

// NewFold returns the empty state of partition p; it never forgets.
func NewFold(p int32) *Fold { return NewFoldRetention(p, 0) }

// NewFoldRetention returns the empty state of partition p forgetting
// drops closed more than retention before the partition's clock (0:
// never; below a millisecond counts as one).
func NewFoldRetention(p int32, retention time.Duration) *Fold {
	f := &Fold{partition: p, drops: map[string]*Drop{}, claims: map[string]*Decision{}, applied: map[string]appliedRecord{},
		byDrop: map[string]*dropClaims{}, gone: map[string]goneDrop{}}
	if retention > 0 {
		f.retention = max(1, retention.Milliseconds())
	}
	return f
}

// Gone returns when drop id closed, and the offset of the record whose
// time made the fold forget it, if the fold forgot it.
func (f *Fold) Gone(id string) (closedAt, offset int64, ok bool) {
	g, ok := f.gone[id]
	return g.closed, g.offset, ok
}

// Decisions returns the number of decisions the fold holds.
func (f *Fold) Decisions() int { return len(f.claims) }

// GoneDrops returns the number of drop ids the fold forgot.
func (f *Fold) GoneDrops() int { return len(f.gone) }

// Clock returns the greatest server time (Unix ms) among the records
// folded: forgetting is measured against it.
func (f *Fold) Clock() int64 { return f.clock }

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
// drop; the record then changes nothing). A claim on a forgotten drop
// (Gone) returns no decision: it decides nothing, and a drop record of a
// forgotten drop is not applied. Before the record is applied, the
// partition's clock advances to its time and the drops it closes beyond
// the retention are forgotten.
func (f *Fold) Apply(offset int64, r *Record) (d *Decision, conflict bool) {
	f.next = offset + 1
	if r.At > f.clock {
		f.clock = r.At
	}
	if f.due != 0 && f.clock >= f.due {
		f.forget(offset)
	}
	if r.Kind != KindLayout {
		if _, gone := f.gone[r.DropID]; gone {
			return nil, false
		}
	}
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
		f.closing(dr)
	case KindStart:
		dr := f.drop(r.DropID)
		if !dr.Started {
			dr.Started, dr.StartedAt = true, r.At
		}
		if r.EndsAt > 0 {
			dr.StartEndsAt = r.EndsAt
		}
		f.common(dr, r)
		f.closing(dr)
	case KindEnd:
		dr := f.drop(r.DropID)
		if !dr.Ended {
			dr.Ended, dr.EndedAt = true, r.At
		}
		f.closing(dr)
	case KindClaim:
		return f.claim(offset, r)
	}
	return nil, false
}

// closing notes when dr will be forgotten, if it closed.
func (f *Fold) closing(dr *Drop) {
	if c, ok := dr.closed(); ok {
		f.dueAt(c)
	}
}

// dueAt lowers the next time to look for drops to forget to closed +
// the retention.
func (f *Fold) dueAt(closed int64) {
	if f.retention == 0 {
		return
	}
	if t := closed + f.retention; f.due == 0 || t < f.due {
		f.due = t
	}
}

// forget drops every drop closed more than the retention before the
// clock, with its decisions and applied records, keeping its id in gone;
// decisions on a drop id the fold does not know are forgotten likewise,
// the retention after the latest of them. offset is the record whose
// time moved the clock. due becomes the next time
// anything closes beyond the retention (a lower bound: a drop's end time
// may move later).
func (f *Fold) forget(offset int64) {
	var next int64
	expired := map[string]int64{}
	consider := func(id string, closed int64) {
		t := closed + f.retention
		switch {
		case f.clock >= t:
			expired[id] = closed
		case next == 0 || t < next:
			next = t
		}
	}
	for id, dr := range f.drops {
		if c, ok := dr.closed(); ok {
			consider(id, c)
		}
	}
	for id, dc := range f.byDrop {
		if f.drops[id] == nil {
			consider(id, dc.last)
		}
	}
	for id, closed := range expired {
		if dc := f.byDrop[id]; dc != nil {
			for _, d := range dc.decided {
				delete(f.claims, d.ClaimID)
			}
		}
		delete(f.byDrop, id)
		delete(f.drops, id)
		f.gone[id] = goneDrop{closed, offset}
	}
	if len(expired) > 0 {
		for ev, a := range f.applied {
			if _, ok := expired[a.rec.DropID]; ok {
				delete(f.applied, ev)
			}
		}
	}
	f.due = next
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
	dc := f.hold(d)
	if dr == nil {
		f.dueAt(dc.last)
	}
	return d, false
}

// hold keeps decision d: by claim_id, and with its drop's decisions (for
// forgetting them together). A restored snapshot holds its decisions
// through it too.
func (f *Fold) hold(d *Decision) *dropClaims {
	f.claims[d.ClaimID] = d
	dc := f.byDrop[d.DropID]
	if dc == nil {
		dc = &dropClaims{}
		f.byDrop[d.DropID] = dc
	}
	dc.decided = append(dc.decided, d)
	dc.last = max(dc.last, d.At)
	return dc
}
