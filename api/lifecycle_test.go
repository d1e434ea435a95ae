package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/catalog"
)

// TestLifecycleAsTheCatalogReadsIt: the drop events the API writes give
// the processors' catalog (creator_lift's live window) the start, end,
// ends_at and creator the claims fold holds (helper-44: a start after an
// end, a second start extending ends_at or leaving it out, a second end:
// the catalog took the latest start and end, the fold the first). The
// claim window itself differs by design (catalog's package comment).
func TestLifecycleAsTheCatalogReadsIt(t *testing.T) {
	brokers := newBroker(t)
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	u := startInstance(t, brokers, Clock(clk.now)).srv.URL
	rfc := func(d time.Duration) string { return clk.now().Add(d).Format(time.RFC3339) }
	step := func(want int, path string, body any) {
		t.Helper()
		clk.add(time.Minute)
		if a := call(t, u, "POST", path, serverKey, body); a.code != want {
			t.Fatalf("POST %s: %d %v, want %d", path, a.code, a.body, want)
		}
	}
	schedule := func(id string) map[string]any {
		return map[string]any{"drop_id": id, "creator_id": "cr1", "inventory": 10, "starts_at": rfc(time.Minute), "ends_at": rfc(time.Hour)}
	}
	// A: started, then started again with a later ends_at (an extension).
	step(200, "/v1/drops", schedule("dA"))
	step(200, "/v1/drops/dA/start", map[string]any{"creator_id": "cr1"})
	step(200, "/v1/drops/dA/start", map[string]any{"creator_id": "cr1", "ends_at": rfc(2 * time.Hour)})
	// B: started, ended, then started and scheduled again: refused (an end is final).
	step(200, "/v1/drops", schedule("dB"))
	step(200, "/v1/drops/dB/start", map[string]any{"creator_id": "cr1"})
	step(200, "/v1/drops/dB/end", nil)
	step(http.StatusConflict, "/v1/drops/dB/start", map[string]any{"creator_id": "cr1"})
	step(http.StatusConflict, "/v1/drops", schedule("dB"))
	// C: ended twice.
	step(200, "/v1/drops", schedule("dC"))
	step(200, "/v1/drops/dC/start", map[string]any{"creator_id": "cr1"})
	step(200, "/v1/drops/dC/end", nil)
	step(200, "/v1/drops/dC/end", nil)
	// D: started with ends_at, then again without one (no schedule).
	step(200, "/v1/drops/dD/start", map[string]any{"creator_id": "cr1", "ends_at": rfc(2 * time.Hour)})
	step(200, "/v1/drops/dD/start", map[string]any{"creator_id": "cr2"})
	// A schedule that has already ended would retire its drop_id.
	past := schedule("dE")
	past["starts_at"], past["ends_at"] = rfc(-2*time.Hour), rfc(-time.Hour)
	step(http.StatusBadRequest, "/v1/drops", past)

	cat := catalog.New()
	starts := map[string]map[string]bool{} // drop → event ids of its drop_started (records have copies)
	for _, r := range eventRecords(t, brokers) {
		e := decodeEvent(t, r)
		if cat.Apply(&e) && e.Type == event.DropStarted {
			if starts[e.DropID] == nil {
				starts[e.DropID] = map[string]bool{}
			}
			starts[e.DropID][e.ID] = true
		}
	}
	if len(starts["dB"]) != 1 {
		t.Errorf("dB: %d drop_started events, want 1 (the refused start writes nothing)", len(starts["dB"]))
	}
	for _, id := range []string{"dA", "dB", "dC", "dD"} {
		v := call(t, u, "GET", "/v1/drops/"+id, serverKey, nil).body
		d, ok := cat.Drop(id)
		if !ok {
			t.Fatalf("%s: not in the catalog", id)
		}
		start, end, _ := d.Live()
		wantEnd := v["ended_at"]
		if wantEnd == nil {
			wantEnd = v["ends_at"]
		}
		if got := formatTime(start); got != v["started_at"] {
			t.Errorf("%s: the catalog's live window starts at %s, the API's drop at %v", id, got, v["started_at"])
		}
		if got := formatTime(end); got != wantEnd {
			t.Errorf("%s: the catalog's live window ends at %s, the API's drop at %v (ended_at %v, ends_at %v)", id, got, wantEnd, v["ended_at"], v["ends_at"])
		}
		if d.CreatorID != v["creator_id"] {
			t.Errorf("%s: the catalog's creator %q, the API's %v", id, d.CreatorID, v["creator_id"])
		}
	}
}

// TestRetriesAfterTheEnd: a retried schedule or start (same
// Idempotency-Key) whose record was applied is answered as its first
// attempt was, with its event, even after the drop ended or the
// schedule's ends_at passed (helper-47: the new checks answered 409 and
// 400, "nothing written", for requests that had taken effect).
func TestRetriesAfterTheEnd(t *testing.T) {
	brokers := newBroker(t)
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	u := startInstance(t, brokers, Clock(clk.now)).srv.URL
	sched := map[string]any{"drop_id": "d1", "creator_id": "cr", "inventory": 3,
		"starts_at": clk.now().Add(time.Minute).Format(time.RFC3339), "ends_at": clk.now().Add(time.Hour).Format(time.RFC3339)}
	start := map[string]any{"creator_id": "cr", "inventory": 7, "ends_at": clk.now().Add(90 * time.Minute).Format(time.RFC3339)}
	first := map[string]answer{
		"schedule": call(t, u, "POST", "/v1/drops", serverKey, sched, IdempotencyHeader, "s1"),
		"start":    call(t, u, "POST", "/v1/drops/d1/start", serverKey, start, IdempotencyHeader, "st1"),
	}
	clk.add(time.Minute)
	if a := call(t, u, "POST", "/v1/drops/d1/end", serverKey, nil, IdempotencyHeader, "e1"); a.code != 200 {
		t.Fatalf("end: %d %v", a.code, a.body)
	}
	clk.add(2 * time.Hour) // past the schedule's and the start's ends_at too
	again := map[string]answer{
		"schedule": call(t, u, "POST", "/v1/drops", serverKey, sched, IdempotencyHeader, "s1"),
		"start":    call(t, u, "POST", "/v1/drops/d1/start", serverKey, start, IdempotencyHeader, "st1"),
	}
	for k, a := range again {
		if f := first[k]; f.code != 200 || a.code != 200 || a.str("event_id") != f.str("event_id") {
			t.Errorf("retried %s: %d %v; first %d %v", k, a.code, a.body, f.code, f.body)
		}
	}
	// A new start with an ends_at past is refused as before.
	if a := call(t, u, "POST", "/v1/drops/d2/start", serverKey, map[string]any{"creator_id": "cr", "ends_at": clk.now().Add(-time.Minute).Format(time.RFC3339)}); a.code != http.StatusBadRequest {
		t.Errorf("a new start with an ends_at past: %d %v, want 400", a.code, a.body)
	}
	// A new start (another key) is still refused.
	if a := call(t, u, "POST", "/v1/drops/d1/start", serverKey, map[string]any{"creator_id": "cr"}, IdempotencyHeader, "st2"); a.code != http.StatusConflict {
		t.Errorf("a new start after the end: %d %v, want 409", a.code, a.body)
	}
}
