package latency

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/window"
)

// TestUsersAgainstMap: adding, finding and removing users (and the
// compaction of their ids) agree with a map, through growth and
// shrinking of the index; a record keeps what was put in it.
func TestUsersAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	us := newUsers()
	want := map[string]int64{} // id → the T of its one completion
	for step := range 200_000 {
		id := fmt.Sprintf("u%d", r.IntN(20_000))
		if step > 100_000 {
			id = fmt.Sprintf("u%d", r.IntN(300)) // fewer: the index shrinks
		}
		if step%1000 == 0 {
			id = "" // an empty id is a user too
		}
		u := us.find(id)
		if _, ok := want[id]; ok != (u != nil) {
			t.Fatalf("step %d: %q found %v, want %v", step, id, u != nil, ok)
		}
		if u == nil {
			u = us.add(id)
		}
		us.dropComps(u, math.MaxInt64)
		us.insertComp(u, userComp{T: int64(step)}, func(a, b userComp) bool { return a.T > b.T })
		want[id] = int64(step)
		if step%5_000 == 4_999 {
			removed := false
			for n := range us.numbers() {
				if u := us.rec(n); us.held(n) && us.comp(u.comps).T < int64(step-2_000) {
					delete(want, us.id(n))
					us.dropComps(u, math.MaxInt64)
					us.remove(n)
					removed = true
				}
			}
			if removed {
				us.compact()
			}
		}
		if us.len() != len(want) || us.index.Len() != len(want) {
			t.Fatalf("step %d: %d users, index %d, want %d", step, us.len(), us.index.Len(), len(want))
		}
	}
	for id, ts := range want {
		if u := us.find(id); u == nil || u.comps == 0 || us.comp(u.comps).next != 0 || us.comp(u.comps).T != ts {
			t.Fatalf("%q: %+v, want T %d", id, u, ts)
		}
	}
	if us.index.Slots() > 4096 {
		t.Fatalf("index not shrunk: %d slots for %d", us.index.Slots(), len(want))
	}
}

// TestListsAgainstSlices: a user's completions inserted in any order come
// out ascending (equal ones in insertion order), released conversions in
// append order, and dropping some keeps the order of the rest; freed nodes
// are reused.
func TestListsAgainstSlices(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	us := newUsers()
	after := func(a, b userComp) bool { return a.T > b.T || a.T == b.T && a.quest > b.quest }
	for round := range 2000 {
		u := us.add(fmt.Sprint(round))
		var wantC []userComp
		var wantR []int64
		for range r.IntN(8) {
			c := userComp{T: int64(r.IntN(5)), quest: uint32(r.IntN(3))}
			i := len(wantC)
			for i > 0 && after(wantC[i-1], c) {
				i--
			}
			wantC = append(wantC[:i], append([]userComp{c}, wantC[i:]...)...)
			us.insertComp(u, c, after)
		}
		for range r.IntN(5) {
			rt := int64(r.IntN(100))
			wantR = append(wantR, rt)
			us.appendRel(u, released{t: rt})
		}
		if r.IntN(2) == 0 {
			cut := int64(r.IntN(6))
			us.dropComps(u, cut)
			for len(wantC) > 0 && wantC[0].T < cut {
				wantC = wantC[1:]
			}
			odd := func(t int64) bool { return t%2 == 1 }
			us.dropRels(u, func(rc *released) bool { return odd(rc.t) })
			kept := wantR[:0]
			for _, t := range wantR {
				if !odd(t) {
					kept = append(kept, t)
				}
			}
			wantR = kept
		}
		var gotC []userComp
		for i := u.comps; i != 0; i = us.comp(i).next {
			c := *us.comp(i)
			c.next = 0
			gotC = append(gotC, c)
		}
		var gotR []int64
		for i := u.rels; i != 0; i = us.rel(i).next {
			gotR = append(gotR, us.rel(i).t)
		}
		if fmt.Sprint(gotC) != fmt.Sprint(wantC) || fmt.Sprint(gotR) != fmt.Sprint(wantR) {
			t.Fatalf("round %d: completions %v, want %v; released %v, want %v", round, gotC, wantC, gotR, wantR)
		}
		us.dropComps(u, math.MaxInt64)
		us.dropRels(u, func(*released) bool { return true })
	}
	if us.comps.Nums() > 1<<compBits || us.rels.Nums() > 1<<relBits {
		t.Fatalf("freed nodes not reused: %d completions, %d released numbered", us.comps.Nums(), us.rels.Nums())
	}
}

// TestRecordSizes: the sizes the documentation gives (a field added to a
// record would grow every user's or conversion's state unnoticed).
func TestRecordSizes(t *testing.T) {
	if u, c, r, q := unsafe.Sizeof(user{}), unsafe.Sizeof(userComp{}), unsafe.Sizeof(released{}), unsafe.Sizeof(queued{}); u != 16 || c != 16 || r != 80 || q != 88 {
		t.Fatalf("user %d, completion %d, released %d, queued %d bytes; want 16, 16, 80, 88", u, c, r, q)
	}
}

// TestUserListsBounded: one user sending thousands of completions and
// conversions (a bot, or an attack through a client key) keeps at most
// MaxUserList of each, so an append walks at most that many nodes (the
// lists were unbounded and every append walked them all: quadratic,
// helper-37); the oldest are forgotten and counted. A user within the
// bound loses nothing (the property tests compare such streams with the
// batch definition).
func TestUserListsBounded(t *testing.T) {
	const t0, n = int64(1767225600000), 3 * MaxUserList
	cfg := DefaultConfig()
	cfg.Conversions = true
	p, err := New(cfg, window.ScopeAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	wmk := window.NewWatermark(0)
	for i := range int64(n) {
		c := event.Event{ID: fmt.Sprint("qc", i), Type: event.QuestCompleted, UserID: "u", QuestID: "q", EventTime: t0 + i*10}
		p.Add(&c, wmk.Observe(c.EventTime))
		v := event.Event{ID: fmt.Sprint("cv", i), Type: event.Conversion, UserID: "u", OrderID: fmt.Sprint("o", i), AmountMicros: 1, Currency: "USD", EventTime: t0 + i*10 + 5}
		p.Add(&v, wmk.Observe(v.EventTime))
	}
	p.Advance(t0 + n*10 + 1000) // releases the queued conversions
	u := p.users.find("u")
	comps, rels := 0, 0
	for i := u.comps; i != 0; i = p.users.comp(i).next {
		comps++
	}
	for i := u.rels; i != 0; i = p.users.rel(i).next {
		rels++
	}
	if comps != MaxUserList || rels != MaxUserList {
		t.Fatalf("the user holds %d completions and %d released conversions, want %d each", comps, rels, MaxUserList)
	}
	if got, want := p.Forgotten(), uint64(2*(n-MaxUserList)); got != want {
		t.Fatalf("forgotten %d, want %d", got, want)
	}
	// The latest completions are the ones kept: the last conversion is
	// attributed to the completion 5 ms before it.
	_, convs := p.Flush(t0 + n*10 + 1000)
	last := convs[len(convs)-1]
	if last.LatencyMs != 5 || last.OrderID != fmt.Sprint("o", n-1) {
		t.Fatalf("last conversion %+v", last)
	}
}
