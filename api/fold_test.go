package api

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func inv(n int64) *int64 { return &n }

// apply folds recs into a new fold and returns it and each claim's result.
func apply(recs []Record) (*Fold, []string) { return applyTo(NewFold(0), recs) }

// applyTo folds recs into f; a claim deciding nothing (a forgotten drop)
// is "gone".
func applyTo(f *Fold, recs []Record) (*Fold, []string) {
	var out []string
	for i := range recs {
		d, conflict := f.Apply(f.next, &recs[i])
		switch {
		case recs[i].Kind != KindClaim:
		case d == nil:
			out = append(out, "gone")
		case conflict:
			out = append(out, "conflict")
		case d.Granted:
			out = append(out, "granted")
		default:
			out = append(out, d.Reason)
		}
	}
	return f, out
}

func claimRec(at int64, drop, claim, user string) Record {
	return Record{Kind: KindClaim, DropID: drop, At: at, ClaimID: claim, UserID: user}
}

func TestFoldDecisions(t *testing.T) {
	sched := Record{Kind: KindSchedule, DropID: "d", At: 0, StartsAt: 100, EndsAt: 200, Inventory: inv(2)}
	for _, tc := range []struct {
		name string
		recs []Record
		want []string
	}{
		{"unknown drop", []Record{claimRec(150, "d", "c1", "u1")}, []string{"not_live"}},
		{"before start", []Record{sched, claimRec(99, "d", "c1", "u1")}, []string{"not_live"}},
		{"at start, before end", []Record{sched, claimRec(100, "d", "c1", "u1"), claimRec(199, "d", "c2", "u2")}, []string{"granted", "granted"}},
		{"at the end time", []Record{sched, claimRec(200, "d", "c1", "u1")}, []string{"not_live"}},
		{"after an end record", []Record{sched, {Kind: KindEnd, DropID: "d", At: 120}, claimRec(130, "d", "c1", "u1")}, []string{"not_live"}},
		{"sold out after the inventory", []Record{sched, claimRec(110, "d", "c1", "u1"), claimRec(111, "d", "c2", "u2"), claimRec(112, "d", "c3", "u3")},
			[]string{"granted", "granted", "sold_out"}},
		{"idempotent repeat", []Record{sched, claimRec(110, "d", "c1", "u1"), claimRec(111, "d", "c2", "u2"), claimRec(112, "d", "c1", "u1"), claimRec(113, "d", "c3", "u3"), claimRec(300, "d", "c3", "u3")},
			[]string{"granted", "granted", "granted", "sold_out", "sold_out"}},
		{"repeat of a rejection stays rejected", []Record{claimRec(1, "d", "c1", "u1"), sched, claimRec(150, "d", "c1", "u1")}, []string{"not_live", "not_live"}},
		{"claim_id of another user", []Record{sched, claimRec(110, "d", "c1", "u1"), claimRec(111, "d", "c1", "u2")}, []string{"granted", "conflict"}},
		{"claim_id of another drop", []Record{sched, {Kind: KindStart, DropID: "e", At: 1}, claimRec(110, "d", "c1", "u1"), claimRec(111, "e", "c1", "u1")}, []string{"granted", "conflict"}},
		{"started without schedule: live, unlimited", []Record{{Kind: KindStart, DropID: "d", At: 5}, claimRec(6, "d", "c1", "u1"), claimRec(7, "d", "c2", "u2"), claimRec(8, "d", "c3", "u3")},
			[]string{"granted", "granted", "granted"}},
		{"start before the scheduled time opens it", []Record{sched, {Kind: KindStart, DropID: "d", At: 50}, claimRec(60, "d", "c1", "u1")}, []string{"granted"}},
		{"start's inventory overrides the schedule's", []Record{sched, {Kind: KindStart, DropID: "d", At: 100, Inventory: inv(1)}, claimRec(110, "d", "c1", "u1"), claimRec(111, "d", "c2", "u2")},
			[]string{"granted", "sold_out"}},
		{"schedule after start overrides the inventory", []Record{{Kind: KindStart, DropID: "d", At: 100, Inventory: inv(1)}, sched, claimRec(110, "d", "c1", "u1"), claimRec(111, "d", "c2", "u2")},
			[]string{"granted", "granted"}},
		{"start's ends_at overrides the schedule's", []Record{sched, {Kind: KindStart, DropID: "d", At: 100, EndsAt: 150}, claimRec(160, "d", "c1", "u1")}, []string{"not_live"}},
		{"zero inventory", []Record{{Kind: KindStart, DropID: "d", At: 1, Inventory: inv(0)}, claimRec(2, "d", "c1", "u1")}, []string{"sold_out"}},
		{"a retried schedule (same event_id) does not undo a start's inventory", []Record{
			{Kind: KindSchedule, DropID: "d", At: 0, StartsAt: 100, EndsAt: 200, Inventory: inv(2), EventID: "e1"},
			{Kind: KindStart, DropID: "d", At: 100, Inventory: inv(1), EventID: "e2"},
			{Kind: KindSchedule, DropID: "d", At: 101, StartsAt: 100, EndsAt: 200, Inventory: inv(2), EventID: "e1"},
			claimRec(110, "d", "c1", "u1"), claimRec(111, "d", "c2", "u2")},
			[]string{"granted", "sold_out"}},
		{"a start after the end does not reopen", []Record{{Kind: KindStart, DropID: "d", At: 1}, {Kind: KindEnd, DropID: "d", At: 2}, {Kind: KindStart, DropID: "d", At: 3}, claimRec(4, "d", "c1", "u1")}, []string{"not_live"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, got := apply(tc.recs)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestFoldDeterministic: the state is a function of the record prefix:
// folding the same records twice gives equal states at every prefix, and
// granted never exceeds the inventory.
func TestFoldDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var recs []Record
	recs = append(recs, Record{Kind: KindSchedule, DropID: "d0", At: 0, StartsAt: 10, EndsAt: 900, Inventory: inv(7)})
	for i := range 2000 {
		drop := fmt.Sprintf("d%d", rng.IntN(3))
		switch rng.IntN(50) {
		case 0:
			recs = append(recs, Record{Kind: KindStart, DropID: drop, At: int64(i), Inventory: inv(int64(rng.IntN(20)))})
		case 1:
			recs = append(recs, Record{Kind: KindEnd, DropID: drop, At: int64(i)})
		default:
			recs = append(recs, claimRec(int64(i), drop, fmt.Sprintf("c%d", rng.IntN(600)), fmt.Sprintf("u%d", rng.IntN(600))))
		}
	}
	for _, n := range []int{1, 10, 500, len(recs)} {
		a, ra := apply(recs[:n])
		b, rb := apply(recs[:n])
		if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(ra, rb) {
			t.Fatalf("prefix %d: two folds of the same records differ", n)
		}
	}
	// Grants of one drop never exceed the inventory in force at each grant.
	f := NewFold(0)
	for i := range recs {
		var before int64
		var had bool
		if dr := f.Drop(recs[i].DropID); dr != nil {
			before, had = dr.Granted, dr.HasInventory
		}
		d, conflict := f.Apply(int64(i), &recs[i])
		if recs[i].Kind == KindClaim && !conflict && d.Offset == int64(i) && d.Granted && had {
			if dr := f.Drop(recs[i].DropID); before >= dr.Inventory {
				t.Fatalf("record %d granted with %d granted of inventory %d", i, before, dr.Inventory)
			}
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := Record{Kind: KindSchedule, DropID: "d", At: 5, StartsAt: 1, EndsAt: 9, Inventory: inv(0), CreatorID: "c"}
	got, err := ParseRecord(r.Marshal())
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := ParseRecord([]byte(`{"kind":"claim"}`)); err == nil {
		t.Fatal("a record without drop_id must not parse")
	}
}

// TestFoldForgets: a drop closed more than the retention before the
// partition's clock (the greatest record time folded) is forgotten with
// its decisions; a later claim on it, a retry included, decides nothing;
// its records are not applied; times earlier than the clock do not move
// it back.
func TestFoldForgets(t *testing.T) {
	const ret = 1000 // ms
	sched := Record{Kind: KindSchedule, DropID: "d", At: 0, StartsAt: 100, EndsAt: 200, Inventory: inv(1), EventID: "es"}
	for _, tc := range []struct {
		name string
		recs []Record
		want []string
		gone bool // d forgotten at the end
	}{
		{"kept until its end time + retention", []Record{sched, claimRec(150, "d", "c1", "u1"), claimRec(1199, "e", "x", "u"), claimRec(1199, "d", "c1", "u1")},
			[]string{"granted", "not_live", "granted"}, false},
		{"forgotten at its end time + retention", []Record{sched, claimRec(150, "d", "c1", "u1"), claimRec(1200, "e", "x", "u"), claimRec(1200, "d", "c1", "u1"), claimRec(1200, "d", "c2", "u2")},
			[]string{"granted", "not_live", "gone", "gone"}, true},
		{"an earlier record time does not move the clock back", []Record{sched, claimRec(150, "d", "c1", "u1"), claimRec(5000, "e", "x", "u"), claimRec(160, "d", "c1", "u1")},
			[]string{"granted", "not_live", "gone"}, true},
		{"an end record closes it", []Record{{Kind: KindStart, DropID: "d", At: 10}, claimRec(20, "d", "c1", "u1"), {Kind: KindEnd, DropID: "d", At: 30}, claimRec(1030, "d", "c1", "u1")},
			[]string{"granted", "gone"}, true},
		{"started without an end time: never forgotten", []Record{{Kind: KindStart, DropID: "d", At: 10}, claimRec(20, "d", "c1", "u1"), claimRec(1e9, "d", "c1", "u1")},
			[]string{"granted", "granted"}, false},
		{"a start with a later ends_at before the retention moves the closing", []Record{sched, {Kind: KindStart, DropID: "d", At: 900, EndsAt: 5000}, claimRec(1500, "d", "c1", "u1"), claimRec(5999, "d", "c1", "u1")},
			[]string{"granted", "granted"}, false},
		{"a forgotten drop is not started again", []Record{sched, claimRec(1200, "e", "x", "u"), {Kind: KindStart, DropID: "d", At: 1300, Inventory: inv(5), EventID: "e2"}, claimRec(1301, "d", "c9", "u9")},
			[]string{"not_live", "gone"}, true},
		{"decisions on an unknown drop are forgotten the retention after the last", []Record{claimRec(10, "d", "c1", "u1"), claimRec(500, "d", "c2", "u2"), claimRec(1499, "d", "c1", "u1"), claimRec(1500, "d", "c1", "u1")},
			[]string{"not_live", "not_live", "not_live", "gone"}, true},
		{"a claim_id is free again once its drop is forgotten", []Record{sched, claimRec(150, "d", "c1", "u1"), {Kind: KindStart, DropID: "e", At: 1200}, claimRec(1201, "e", "c1", "u1")},
			[]string{"granted", "granted"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, got := applyTo(NewFoldRetention(0, ret*time.Millisecond), tc.recs)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			_, _, gone := f.Gone("d")
			if gone != tc.gone {
				t.Fatalf("Gone(d) = %v, want %v", gone, tc.gone)
			}
			if gone {
				if f.Drop("d") != nil {
					t.Error("a forgotten drop is still known")
				}
				for _, d := range f.claims {
					if d.DropID == "d" {
						t.Errorf("decision %s of the forgotten drop kept", d.ClaimID)
					}
				}
				for ev, a := range f.applied {
					if a.rec.DropID == "d" {
						t.Errorf("applied record %s of the forgotten drop kept", ev)
					}
				}
			}
		})
	}
}

// TestFoldForgetsDeterministic: forgetting is a function of the record
// prefix (two folds of the same records equal at every prefix), and
// memory is bounded: with a retention, a long run of short drops keeps
// only the recent ones' decisions.
func TestFoldForgetsDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var recs []Record
	at := int64(0)
	for d := range 200 {
		id := fmt.Sprintf("d%d", d)
		recs = append(recs, Record{Kind: KindStart, DropID: id, At: at, EndsAt: at + 100, Inventory: inv(10)})
		for i := range 50 {
			recs = append(recs, claimRec(at+int64(rng.IntN(150)), id, fmt.Sprintf("c%d-%d", d, i), fmt.Sprintf("u%d", rng.IntN(100))))
		}
		if rng.IntN(3) == 0 {
			recs = append(recs, Record{Kind: KindEnd, DropID: id, At: at + 50})
		}
		at += 100
	}
	for _, n := range []int{1, 100, 5000, len(recs)} {
		a, ra := applyTo(NewFoldRetention(0, time.Second), recs[:n])
		b, rb := applyTo(NewFoldRetention(0, time.Second), recs[:n])
		if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(ra, rb) {
			t.Fatalf("prefix %d: two folds of the same records differ", n)
		}
	}
	f, _ := applyTo(NewFoldRetention(0, time.Second), recs)
	keep, _ := applyTo(NewFold(0), recs)
	if keep.Decisions() != 200*50 || keep.GoneDrops() != 0 {
		t.Fatalf("without a retention: %d decisions, %d drops forgotten", keep.Decisions(), keep.GoneDrops())
	}
	// 1 s of retention over drops 100 ms apart: about the last 11 kept.
	if f.Decisions() > 12*50 || f.GoneDrops() < 188 {
		t.Fatalf("with a retention of 1 s: %d decisions, %d drops forgotten", f.Decisions(), f.GoneDrops())
	}
	t.Logf("%d decisions and %d drops kept, %d forgotten", f.Decisions(), len(f.drops), f.GoneDrops())
}
