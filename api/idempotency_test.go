package api

import (
	"fmt"
	"testing"

	"github.com/questline/questline/event"
	"github.com/questline/questline/ingest"
)

// TestIdempotencyKeyScopedToRequest: an Idempotency-Key names one request
// of one caller, not a slot of a route. Two different requests that happen
// to share a key (two drops, two quests, two users, two backends) are two
// events: sharing an event_id would make downstream drop the second as a
// duplicate, and the claims fold would skip the second drop's schedule.
func TestIdempotencyKeyScopedToRequest(t *testing.T) {
	brokers := newBroker(t)
	keys, err := ingest.NewKeyring([]string{serverKey, "srv-key-2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := startInstance(t, brokers, Keys(keys)).srv.URL
	ids := map[string]string{} // event_id → what wrote it
	seen := func(what string, a answer) {
		t.Helper()
		if a.code != 200 {
			t.Fatalf("%s: %d %v", what, a.code, a.body)
		}
		id := a.str("event_id")
		if !event.APIEventID(id) {
			t.Errorf("%s: event_id %q is not reserved for server keys (event.APIEventID)", what, id)
		}
		if prev, dup := ids[id]; dup {
			t.Errorf("%s has the event_id of %s (%s)", what, prev, id)
		}
		ids[id] = what
	}

	// Five drops on four partitions: two of them share a partition.
	for i := range 5 {
		drop := fmt.Sprintf("d%d", i)
		a := call(t, base, "POST", "/v1/drops", serverKey, map[string]any{
			"drop_id": drop, "creator_id": "cr1", "inventory": 1,
			"starts_at": "2026-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z",
		}, IdempotencyHeader, "k1")
		seen("schedule "+drop, a)
		if g := call(t, base, "GET", "/v1/drops/"+drop, serverKey, nil); g.code != 200 || g.str("drop_id") != drop {
			t.Errorf("GET %s after its schedule: %d %v", drop, g.code, g.body)
		}
	}
	for _, q := range []string{"q1", "q2"} {
		seen("define "+q, call(t, base, "POST", "/v1/quests", serverKey, map[string]any{"quest_id": q, "min_duration_ms": 1000}, IdempotencyHeader, "k1"))
	}
	seen("define q1 with another key", call(t, base, "POST", "/v1/quests", "srv-key-2", map[string]any{"quest_id": "q1", "min_duration_ms": 1000}, IdempotencyHeader, "k1"))
	for _, u := range []string{"u1", "u2"} {
		seen("start q1 for "+u, call(t, base, "POST", "/v1/quests/q1/start", serverKey, map[string]any{"user_id": u}, IdempotencyHeader, "k1"))
	}

	// A retry of one request is still one event.
	again := call(t, base, "POST", "/v1/quests", serverKey, map[string]any{"quest_id": "q2", "min_duration_ms": 1000}, IdempotencyHeader, "k1")
	if ids[again.str("event_id")] != "define q2" {
		t.Errorf("a retry of define q2 has event_id %q, not the first's", again.str("event_id"))
	}
}

// TestAttemptCompletesOnce: one attempt is one quest_completed downstream
// however it is re-sent, with or without an Idempotency-Key, whatever the
// key: a caller cannot count one attempt twice by varying the header.
func TestAttemptCompletesOnce(t *testing.T) {
	base := startInstance(t, newBroker(t)).srv.URL
	st := call(t, base, "POST", "/v1/quests/q1/start", serverKey, map[string]any{"user_id": "u1"})
	if st.code != 200 {
		t.Fatalf("start: %d %v", st.code, st.body)
	}
	body := map[string]any{"user_id": "u1", "attempt": st.str("attempt")}
	first := call(t, base, "POST", "/v1/quests/q1/complete", serverKey, body)
	for _, id := range []string{st.str("event_id"), first.str("event_id"), OutcomeEventID("d", "c")} {
		if !event.APIEventID(id) {
			t.Errorf("event_id %q is not reserved for server keys (event.APIEventID)", id)
		}
	}
	for _, k := range []string{"k1", "k2"} {
		a := call(t, base, "POST", "/v1/quests/q1/complete", serverKey, body, IdempotencyHeader, k)
		if a.code != 200 || a.str("event_id") != first.str("event_id") {
			t.Errorf("completing the attempt again with Idempotency-Key %s: %d event_id %q, the first %q", k, a.code, a.str("event_id"), first.str("event_id"))
		}
	}
}
