package lift

import (
	"fmt"
	"testing"
)

// TestUsersNumbering: a user keeps its number while a drop holds it, a
// freed number is reused, and ids stay found across the arena's
// compactions (many users come and go: their ids' bytes are freed).
func TestUsersNumbering(t *testing.T) {
	u := users{}
	want := map[string]int32{} // the users held
	id := func(i int) string { return fmt.Sprintf("user-%07d", i) }
	next := 0
	for round := range 40 {
		for range 5000 {
			n := u.number(id(next))
			u.hold(n)
			want[id(next)] = n
			next++
		}
		// Free all but one in ten of this round's and the last round's.
		for i := max(0, next-10000); i < next; i++ {
			if n, ok := want[id(i)]; ok && i%10 != 0 {
				u.release(n)
				delete(want, id(i))
			}
		}
		if got := u.count() - len(u.free); got != len(want) {
			t.Fatalf("round %d: %d numbers held, want %d", round, got, len(want))
		}
	}
	if u.names.Bytes() > 4*len(want)*len(id(0)) {
		t.Errorf("%d bytes of ids held for %d users: the arena is not compacted", u.names.Bytes(), len(want))
	}
	if u.count() > len(want)+10000 {
		t.Errorf("%d numbers handed out for %d users at most 10,000 more at once: freed numbers are not reused", u.count(), len(want))
	}
	for s, n := range want {
		if got, ok := u.lookup(s); !ok || got != n {
			t.Fatalf("lookup(%s) = %d, %v; want %d", s, got, ok, n)
		}
		if u.name(n) != s {
			t.Fatalf("name(%d) = %s, want %s", n, u.name(n), s)
		}
		if got := u.number(s); got != n {
			t.Fatalf("number(%s) = %d, want %d (it has one)", s, got, n)
		}
	}
	if _, ok := u.lookup(id(1)); ok {
		t.Fatalf("a released user is still found")
	}
	// Once the drops end, the index shrinks back.
	for _, n := range want {
		u.release(n)
	}
	if s := u.index.Slots(); s > 2048 {
		t.Errorf("the index keeps %d slots with no user held", s)
	}
}
