package api

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

func inv(n int64) *int64 { return &n }

// apply folds recs into a new fold and returns it and each claim's result.
func apply(recs []Record) (*Fold, []string) {
	f := NewFold(0)
	var out []string
	for i := range recs {
		d, conflict := f.Apply(int64(i), &recs[i])
		switch {
		case recs[i].Kind != KindClaim:
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
