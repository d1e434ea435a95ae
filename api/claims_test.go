package api

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

// outcome is what an answer says about a claim: "granted", "sold_out",
// "not_live", "conflict", or "" for no decision (a 503, a closed server).
func outcome(a answer) string {
	switch {
	case a.code == 200 && a.str("status") == "granted":
		return "granted"
	case a.code == 409 && a.str("status") == "rejected":
		return a.str("reason")
	case a.code == 409 && a.str("status") == "conflict":
		return "conflict"
	}
	return ""
}

type claimSpec struct{ drop, id, user string }

// sendClaims sends each claim to the instance pick(i) with workers
// concurrent requests and returns the outcome of each.
func sendClaims(t *testing.T, claims []claimSpec, pick func(i int) string, workers int) []string {
	t.Helper()
	out := make([]string, len(claims))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c := claims[i]
				a := call(t, pick(i), "POST", "/v1/drops/"+c.drop+"/claims", serverKey, map[string]any{"claim_id": c.id, "user_id": c.user})
				out[i] = outcome(a)
			}
		}()
	}
	for i := range claims {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// TestClaimsNeverOversold is the heart of SPEC §3: three instances answer
// concurrent claims and retries of one drop; exactly the inventory is
// granted, every repeat gets its first answer, the events topic holds one
// outcome event per claim; an instance killed mid-run loses nothing and a
// fresh instance answers every claim as before.
func TestClaimsNeverOversold(t *testing.T) {
	brokers := newBroker(t)
	ins := []*instance{startInstance(t, brokers), startInstance(t, brokers), startInstance(t, brokers)}
	url := func(k int) string { return ins[k].srv.URL }
	scheduleLive(t, url(0), "hot", 50)

	// Phase 1: 300 distinct claims from 120 users over the three
	// instances, and 60 of them again on another instance, concurrently.
	var claims []claimSpec
	for i := range 300 {
		claims = append(claims, claimSpec{"hot", fmt.Sprintf("c%03d", i), fmt.Sprintf("u%d", i%120)})
	}
	all := append([]claimSpec{}, claims...)
	for i := 0; i < 300; i += 5 {
		all = append(all, claims[i])
	}
	got := sendClaims(t, all, func(i int) string {
		if i >= 300 {
			return url(((i-300)*5%3 + 1) % 3) // not the first send's instance
		}
		return url(i % 3)
	}, 24)
	first := map[string]string{}
	granted := 0
	for i, o := range got[:300] {
		if o != "granted" && o != ReasonSoldOut {
			t.Fatalf("claim %s: outcome %q, want granted or sold_out", claims[i].id, o)
		}
		first[claims[i].id] = o
		if o == "granted" {
			granted++
		}
	}
	if granted != 50 {
		t.Fatalf("%d claims granted on a drop of inventory 50", granted)
	}
	for j, o := range got[300:] {
		if id := claims[j*5].id; o != first[id] {
			t.Errorf("repeat of %s answered %q, its first answer %q", id, o, first[id])
		}
	}

	// Phase 2: a second drop; instance 2 is stopped abruptly while claims
	// are in flight to it; unanswered claims are retried on instance 0.
	scheduleLive(t, url(1), "hot2", 30)
	var claims2 []claimSpec
	for i := range 120 {
		claims2 = append(claims2, claimSpec{"hot2", fmt.Sprintf("k%03d", i), fmt.Sprintf("u%d", i)})
	}
	var stopOnce sync.Once
	got2 := sendClaims(t, claims2, func(i int) string {
		if i >= 40 {
			stopOnce.Do(func() { go ins[2].stop() })
		}
		return url(2)
	}, 4)
	lost := 0
	for i, o := range got2 {
		if o == "" {
			lost++
			a := call(t, url(0), "POST", "/v1/drops/hot2/claims", serverKey, map[string]any{"claim_id": claims2[i].id, "user_id": claims2[i].user})
			got2[i] = outcome(a)
		}
	}
	t.Logf("phase 2: %d of %d claims unanswered by the stopped instance, retried on another", lost, len(claims2))
	granted2 := 0
	for i, o := range got2 {
		first[claims2[i].id] = o
		if o == "granted" {
			granted2++
		}
	}
	if granted2 != 30 {
		t.Fatalf("%d claims granted on a drop of inventory 30", granted2)
	}

	// A fresh instance re-reads the log and answers every claim as before.
	tf := time.Now()
	fresh := startInstance(t, brokers)
	t.Logf("a fresh instance was ready in %v", time.Since(tf).Round(time.Millisecond))
	for _, c := range append(claims, claims2...) {
		a := call(t, fresh.srv.URL, "POST", "/v1/drops/"+c.drop+"/claims", serverKey, map[string]any{"claim_id": c.id, "user_id": c.user})
		if o := outcome(a); o != first[c.id] {
			t.Errorf("fresh instance: claim %s answered %q, first %q", c.id, o, first[c.id])
		}
	}
	d := call(t, fresh.srv.URL, "GET", "/v1/drops/hot", serverKey, nil)
	if d.body["granted"] != float64(50) || d.body["remaining"] != float64(0) || d.body["live"] != true {
		t.Errorf("GET /v1/drops/hot: %v", d.body)
	}

	// Every claim's outcome is in questline.events once (by event_id)
	// once the relays committed the whole claims log.
	t0 := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for !kafkatest.CommittedAtEnd(t, brokers, "questline-api", kafka.TopicClaims) {
		if time.Now().After(deadline) {
			t.Fatal("the outcome relays did not commit the claims log within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the relays committed the whole claims log %v after the last answer", time.Since(t0).Round(time.Millisecond))
	ids := map[string]map[string]string{} // claim_id → event_id → type or reason
	for _, r := range eventRecords(t, brokers) {
		e := decodeEvent(t, r)
		if e.Type != event.DropClaimed && e.Type != event.ClaimRejected {
			continue
		}
		if ids[e.ClaimID] == nil {
			ids[e.ClaimID] = map[string]string{}
		}
		o := "granted"
		if e.Type == event.ClaimRejected {
			o = e.Reason
		}
		ids[e.ClaimID][e.ID] = o
		if e.Source != event.SourceAPI || e.EventTime != e.TS || string(r.Key) != e.UserID {
			t.Fatalf("outcome event %s: source %v, event_time %d vs ts %d, key %q", e.ID, e.Source, e.EventTime, e.TS, r.Key)
		}
	}
	if len(ids) != len(first) {
		t.Errorf("outcome events for %d claim_ids, want %d", len(ids), len(first))
	}
	for id, o := range first {
		evs := ids[id]
		if len(evs) != 1 {
			t.Errorf("claim %s: %d distinct outcome event ids, want 1", id, len(evs))
		}
		for _, eo := range evs {
			if eo != o {
				t.Errorf("claim %s: the event says %q, the answer %q", id, eo, o)
			}
		}
	}
}

// TestClaimConflictsAndNotLive: a claim_id used by another user or on
// another drop is refused (409 conflict); a drop not started, ended or
// unknown answers not_live.
func TestClaimConflictsAndNotLive(t *testing.T) {
	brokers := newBroker(t)
	base := startInstance(t, brokers).srv.URL
	claim := func(drop, id, user string) answer {
		return call(t, base, "POST", "/v1/drops/"+drop+"/claims", serverKey, map[string]any{"claim_id": id, "user_id": user})
	}
	if o := outcome(claim("nodrop", "x1", "u1")); o != ReasonNotLive {
		t.Fatalf("unknown drop: %q", o)
	}
	now := time.Now().UTC()
	a := call(t, base, "POST", "/v1/drops", serverKey, map[string]any{"drop_id": "later", "creator_id": "c",
		"starts_at": now.Add(time.Hour).Format(time.RFC3339), "ends_at": now.Add(2 * time.Hour).Format(time.RFC3339), "inventory": 5})
	if a.code != 200 {
		t.Fatal(a.body)
	}
	if o := outcome(claim("later", "x2", "u1")); o != ReasonNotLive {
		t.Fatalf("before the scheduled start: %q", o)
	}
	if a := call(t, base, "POST", "/v1/drops/later/start", serverKey, map[string]any{"creator_id": "c", "inventory": 1}); a.code != 200 {
		t.Fatal(a.body)
	}
	if o := outcome(claim("later", "x3", "u1")); o != "granted" {
		t.Fatalf("after start: %q", o)
	}
	if o := outcome(claim("later", "x4", "u2")); o != ReasonSoldOut {
		t.Fatalf("inventory 1 from the start: %q", o)
	}
	if a := claim("later", "x3", "u9"); outcome(a) != "conflict" || a.str("error") == "" {
		t.Fatalf("claim_id of another user: %d %v", a.code, a.body)
	}
	scheduleLive(t, base, "other", 10)
	if a := claim("other", "x3", "u1"); outcome(a) != "conflict" {
		t.Fatalf("claim_id of another drop: %d %v", a.code, a.body)
	}
	if a := call(t, base, "POST", "/v1/drops/other/end", serverKey, nil); a.code != 200 || a.body["drop"].(map[string]any)["live"] != false {
		t.Fatalf("end: %d %v", a.code, a.body)
	}
	if o := outcome(claim("other", "x5", "u1")); o != ReasonNotLive {
		t.Fatalf("after end: %q", o)
	}
}
