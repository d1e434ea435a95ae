package ingest

import (
	"fmt"
	"testing"
)

func TestRecentIDs(t *testing.T) {
	r := newRecentIDs(1000)
	if len(r.slots) != 1024 {
		t.Fatalf("%d slots, want 1024", len(r.slots))
	}
	var ids []string
	for i := range 200 {
		ids = append(ids, fmt.Sprintf("id-%d", i))
	}
	r.add(ids)
	kept := 0
	for _, id := range ids {
		if r.seen(id) {
			kept++
		}
	}
	// 200 ids in 1024 direct-mapped slots: a few collide and are forgotten.
	if kept < 170 {
		t.Fatalf("only %d of 200 recent ids kept", kept)
	}
	for i := range 10000 {
		if r.seen(fmt.Sprintf("other-%d", i)) {
			t.Fatalf("other-%d reported as seen", i)
		}
	}
	var none *recentIDs
	if none.seen("x") || newRecentIDs(0) != nil {
		t.Fatal("a disabled cache must see nothing")
	}
	none.add(ids)
}
