package api

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/questline/questline/event"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

// fakeClock is a server clock (Clock) that tests move forward.
type fakeClock struct {
	base time.Time
	off  atomic.Int64
}

func (c *fakeClock) now() time.Time          { return c.base.Add(time.Duration(c.off.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// gauge returns the value of the gauge name in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	return firstMetric(t, reg, name).GetGauge().GetValue()
}

// testCounter returns the value of counter name in reg.
func testCounter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	return firstMetric(t, reg, name).GetCounter().GetValue()
}

// firstMetric returns the first series of the metric name in reg.
func firstMetric(t *testing.T, reg *prometheus.Registry, name string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0]
		}
	}
	t.Fatalf("%s not registered", name)
	return nil
}

// outcomeEvents returns the outcome events of questline.events by
// event_id (their content as a string) and how many records they take.
func outcomeEvents(t *testing.T, brokers []string) (map[string]string, int) {
	t.Helper()
	byID, n := map[string]string{}, 0
	for _, r := range eventRecords(t, brokers) {
		e := decodeEvent(t, r)
		if e.Type != event.DropClaimed && e.Type != event.ClaimRejected {
			continue
		}
		n++
		c := fmt.Sprintf("%s %s %s %s %d %d", e.Type, e.ClaimID, e.UserID, e.Reason, e.TS, e.EventTime)
		if prev, ok := byID[e.ID]; ok && prev != c {
			t.Errorf("event %s written with two contents: %q and %q", e.ID, prev, c)
		}
		byID[e.ID] = c
	}
	return byID, n
}

func waitCommitted(t *testing.T, brokers []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !kafkatest.CommittedAtEnd(t, brokers, "questline-api", kafka.TopicClaims) {
		if time.Now().After(deadline) {
			t.Fatal("the outcome relays did not commit the claims log within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClaimsRetention: two instances with a retention of an hour fold the
// same log and forget a drop at the same record: the first one whose
// server time is more than the retention after the drop's end. Then a
// retry of a decided claim, on either instance and on a fresh one
// re-reading the log, is 410 naming the retention (not decided again as
// not_live), a start or read of the drop is 410 too, no outcome event is
// added or changed in questline.events, and questline_api_claims_decisions
// drops.
func TestClaimsRetention(t *testing.T) {
	brokers := newBroker(t)
	clock := &fakeClock{base: time.Now()}
	const retention = time.Hour
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	ins := []*instance{
		startInstance(t, brokers, ClaimsRetention(retention), Clock(clock.now), Registerer(regs[0])),
		startInstance(t, brokers, ClaimsRetention(retention), Clock(clock.now), Registerer(regs[1])),
	}
	claim := func(in *instance, id, user string) answer {
		return call(t, in.srv.URL, "POST", "/v1/drops/old/claims", serverKey, map[string]any{"claim_id": id, "user_id": user})
	}
	now := clock.now().UTC()
	if a := call(t, ins[0].srv.URL, "POST", "/v1/drops", serverKey, map[string]any{"drop_id": "old", "creator_id": "cr1", "inventory": 1,
		"starts_at": now.Add(-time.Minute).Format(time.RFC3339), "ends_at": now.Add(10 * time.Minute).Format(time.RFC3339)}); a.code != 200 {
		t.Fatalf("schedule: %d %v", a.code, a.body)
	}
	scheduleLive(t, ins[0].srv.URL, "new", 5) // not forgotten: its end is real time + 1 h
	first := map[string]string{}
	for i, c := range []claimSpec{{"old", "c1", "u1"}, {"old", "c2", "u2"}, {"new", "n1", "u1"}} {
		a := call(t, ins[i%2].srv.URL, "POST", "/v1/drops/"+c.drop+"/claims", serverKey, map[string]any{"claim_id": c.id, "user_id": c.user})
		first[c.id] = outcome(a)
	}
	if first["c1"] != "granted" || first["c2"] != ReasonSoldOut || first["n1"] != "granted" {
		t.Fatalf("first answers %v", first)
	}
	for i, reg := range regs {
		waitFor(t, func() bool { return gauge(t, reg, "questline_api_claims_decisions") == 3 }, fmt.Sprintf("instance %d holding 3 decisions", i))
	}
	waitCommitted(t, brokers)
	before, nBefore := outcomeEvents(t, brokers)
	if len(before) != 3 {
		t.Fatalf("%d outcome events before forgetting, want 3", len(before))
	}

	// Within the retention after the end, a retry is answered as first.
	clock.advance(10*time.Minute + retention - time.Second)
	if o := outcome(claim(ins[1], "c3", "u3")); o != ReasonNotLive {
		t.Fatalf("a new claim after the end, within the retention: %q", o)
	}
	if o := outcome(claim(ins[0], "c1", "u1")); o != "granted" {
		t.Fatalf("a retry within the retention: %q", o)
	}
	// The first record of the drop's partition past end + retention
	// forgets it: here a new claim, which decides nothing.
	clock.advance(2 * time.Second)
	a := claim(ins[0], "c4", "u4")
	if a.code != 410 || a.str("status") != "gone" || a.str("retention") != retention.String() || a.str("closed_at") == "" || a.str("error") == "" {
		t.Fatalf("the claim past the retention: %d %v", a.code, a.body)
	}
	p := int32(keyPartition("old", 4))
	offsets := make([]int64, 0, 3)
	gone := func(in *instance) (int64, bool) {
		in.h.seq.mu.RLock()
		defer in.h.seq.mu.RUnlock()
		_, off, ok := in.h.seq.folds[p].Gone("old")
		return off, ok
	}
	for i, in := range ins {
		waitFor(t, func() bool { _, ok := gone(in); return ok }, fmt.Sprintf("instance %d forgetting the drop", i))
		off, _ := gone(in)
		offsets = append(offsets, off)
	}

	// Every instance, and a fresh one re-reading the log, answers 410 to
	// the retries and to the drop's routes, and writes nothing.
	fresh := startInstance(t, brokers, ClaimsRetention(retention), Clock(clock.now))
	off, ok := gone(fresh)
	if !ok {
		t.Fatal("a fresh instance did not forget the drop")
	}
	offsets = append(offsets, off)
	if offsets[0] != offsets[1] || offsets[0] != offsets[2] {
		t.Fatalf("the drop was forgotten at offsets %v: every instance must forget at the same record", offsets)
	}
	for _, r := range kafkatest.Records(t, brokers, kafka.TopicClaims) {
		if r.Partition == p && r.Offset == offsets[0] {
			if rec, _ := ParseRecord(r.Value); rec.ClaimID != "c4" {
				t.Errorf("forgotten at the record %+v, want c4's claim (the first past end + retention)", rec)
			}
		}
	}
	t.Logf("forgotten at offset %d of partition %d (c4's claim) on all three instances", offsets[0], p)
	for i, in := range append(ins, fresh) {
		for _, c := range []claimSpec{{"old", "c1", "u1"}, {"old", "c2", "u2"}, {"old", "c3", "u3"}, {"old", "c4", "u4"}, {"old", "c5", "u5"}} {
			if a := claim(in, c.id, c.user); a.code != 410 || a.str("status") != "gone" || a.str("claim_id") != c.id {
				t.Errorf("instance %d: claim %s after the retention: %d %v", i, c.id, a.code, a.body)
			}
		}
		if a := call(t, in.srv.URL, "POST", "/v1/drops/old/start", serverKey, map[string]any{"creator_id": "cr1", "inventory": 9}); a.code != 410 {
			t.Errorf("instance %d: start of a forgotten drop: %d %v", i, a.code, a.body)
		}
		if a := call(t, in.srv.URL, "GET", "/v1/drops/old", serverKey, nil); a.code != 410 || a.str("retention") != retention.String() {
			t.Errorf("instance %d: GET of a forgotten drop: %d %v", i, a.code, a.body)
		}
		if o := outcome(call(t, in.srv.URL, "POST", "/v1/drops/new/claims", serverKey, map[string]any{"claim_id": "n1", "user_id": "u1"})); o != "granted" {
			t.Errorf("instance %d: a claim of a drop still kept: %q", i, o)
		}
	}
	for i, reg := range regs {
		if g := gauge(t, reg, "questline_api_claims_decisions"); g != 1 {
			t.Errorf("instance %d: questline_api_claims_decisions = %v after forgetting, want 1 (n1)", i, g)
		}
		if g := gauge(t, reg, "questline_api_claims_forgotten_drops"); g != 1 {
			t.Errorf("instance %d: questline_api_claims_forgotten_drops = %v, want 1", i, g)
		}
	}

	waitCommitted(t, brokers)
	after, nAfter := outcomeEvents(t, brokers)
	delete(after, OutcomeEventID("old", "c3")) // decided not_live within the retention
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("outcome events changed by the retries after the retention:\nbefore %v\nafter  %v", before, after)
	}
	t.Logf("outcome event records: %d before forgetting, %d after (c3's included)", nBefore, nAfter)
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRelayAfterRetention: records appended by instances that crashed
// before answering, on a drop forgotten by the time the relay reads them
// (a relay lagging by more than the retention, or a new relay group on an
// old log), make the relay write nothing for them: neither the first
// decision, which it can no longer read, nor the retry appended after the
// drop was forgotten, which decided nothing. Never a second content for
// one event id.
func TestRelayAfterRetention(t *testing.T) {
	brokers := newBroker(t)
	t0 := time.Now().Add(-48 * time.Hour).UnixMilli()
	late := t0 + 10 + time.Hour.Milliseconds() + 1
	appendRecords(t, brokers, []Record{
		{Kind: KindStart, DropID: "old", At: t0, EndsAt: t0 + 10, Inventory: inv(1), EventID: "qlapi:test:start"},
		claimRec(t0+1, "old", "c1", "u1"),
		claimRec(late, "old", "c2", "u2"), // forgets the drop, decides nothing
		claimRec(late+1, "old", "c1", "u1"),
		{Kind: KindStart, DropID: "kept", At: late + 2, Inventory: inv(1)},
		claimRec(late+3, "kept", "k1", "u1"),
	})
	startInstance(t, brokers, ClaimsRetention(time.Hour))
	waitCommitted(t, brokers)
	got, _ := outcomeEvents(t, brokers)
	want := OutcomeEventID("kept", "k1")
	if len(got) != 1 || got[want] == "" {
		t.Fatalf("outcome events %v, want k1's alone", got)
	}
}
