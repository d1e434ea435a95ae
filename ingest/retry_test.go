package ingest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/questline/questline/ingest"
)

// TestRetriedBatch: a client that lost the answer retries the same batch.
// The recent-id cache keeps the events off Kafka a second time; without it
// (another instance, a restart) the copies carry the same event_id and key,
// so they land on the same partition where downstream deduplicates them by
// event_id (docs/ingest.md, "Duplicates").
func TestRetriedBatch(t *testing.T) {
	now := time.Now()
	var evs []string
	for i := range 20 {
		evs = append(evs, ev(fmt.Sprintf("r%d", i), now))
	}
	body := batch(evs...)

	e := newEnv(t)
	for try := range 3 {
		if r := e.post(body, nil); r.status != 200 || r.body.Accepted != 20 {
			t.Fatalf("try %d: %d %+v", try, r.status, r.body)
		}
	}
	for id, copies := range e.events() {
		if len(copies) != 1 {
			t.Fatalf("%s on Kafka %d times with the recent-id cache", id, len(copies))
		}
	}
	if n := e.counter("questline_ingest_events_deduplicated_total"); n != 40 {
		t.Fatalf("deduplicated %v, want 40", n)
	}

	// Without the cache: duplicates reach Kafka, identical but for
	// received_at, on one partition each.
	e = newEnv(t, ingest.RecentIDs(0))
	for try := range 2 {
		if r := e.post(body, nil); r.status != 200 || r.body.Accepted != 20 {
			t.Fatalf("try %d: %d %+v", try, r.status, r.body)
		}
	}
	got := e.events()
	if len(got) != 20 {
		t.Fatalf("%d distinct ids, want 20", len(got))
	}
	for id, copies := range got {
		if len(copies) != 2 {
			t.Fatalf("%s: %d copies, want 2", id, len(copies))
		}
		a, b := copies[0], copies[1]
		a.ReceivedAt, b.ReceivedAt = 0, 0
		if a != b {
			t.Fatalf("%s: copies differ beyond received_at:\n%+v\n%+v", id, a, b)
		}
	}
}
