package api

import (
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

// TestRelayWritesUnansweredDropEvents: a drop schedule, start or end
// appended to questline.claims by an instance that died (or whose Kafka
// write failed, and whose client gave up) before writing its event still
// reaches questline.events through the relay, once per event_id: the
// claims fold treats the drop as live, so the processors' catalog must
// learn it too.
func TestRelayWritesUnansweredDropEvents(t *testing.T) {
	brokers := newBroker(t)
	now := time.Now().UnixMilli()
	recs := []Record{
		{Kind: KindSchedule, DropID: "ghost", At: now, EventID: "idem-s", KeyID: "k1", CreatorID: "cr", OfferID: "of", StartsAt: now + 1000, EndsAt: now + 60000, Inventory: inv(5)},
		{Kind: KindStart, DropID: "ghost", At: now + 1, EventID: "idem-st", KeyID: "k1", CreatorID: "cr", EndsAt: now + 30000},
		{Kind: KindStart, DropID: "ghost", At: now + 2, EventID: "idem-st", KeyID: "k1", CreatorID: "cr", EndsAt: now + 30000}, // a retry: applied once
		{Kind: KindEnd, DropID: "ghost", At: now + 3, EventID: "idem-e", KeyID: "k1"},
	}
	appendRecords(t, brokers, recs)
	startInstance(t, brokers)

	deadline := time.Now().Add(30 * time.Second)
	for !kafkatest.CommittedAtEnd(t, brokers, "questline-api", kafka.TopicClaims) {
		if time.Now().After(deadline) {
			t.Fatal("the relay did not commit the claims log within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	originals := map[string][]event.Event{}
	copied := map[string]map[int32]bool{}
	for _, r := range eventRecords(t, brokers) {
		e := decodeEvent(t, r)
		if kafka.IsCatalogCopy(r) {
			if copied[e.ID] == nil {
				copied[e.ID] = map[int32]bool{}
			}
			copied[e.ID][r.Partition] = true
			continue
		}
		originals[e.ID] = append(originals[e.ID], e)
	}
	for id, ty := range map[string]event.Type{"idem-s": event.DropScheduled, "idem-st": event.DropStarted, "idem-e": event.DropEnded} {
		es := originals[id]
		if len(es) != 1 || es[0].Type != ty || es[0].DropID != "ghost" || es[0].KeyID != "k1" || es[0].Source != event.SourceAPI {
			t.Errorf("%s: originals %+v, want one %s", id, es, ty)
			continue
		}
		if len(copied[id]) != 4 {
			t.Errorf("%s: copies in %d partitions, want 4", id, len(copied[id]))
		}
	}
	if es := originals["idem-s"]; len(es) == 1 {
		e := es[0]
		if e.TS != now || e.OfferID != "of" || e.CreatorID != "cr" || e.Inventory != 5 || e.StartsAt != now+1000 || e.EndsAt != now+60000 {
			t.Errorf("drop_scheduled %+v", e)
		}
	}
	if es := originals["idem-st"]; len(es) == 1 && (es[0].EndsAt != now+30000 || es[0].Has&event.HasInventory != 0) {
		t.Errorf("drop_started %+v", es[0])
	}
}

// TestRetriedDropRequestWritesTheFirstEvent: a retried schedule (same
// Idempotency-Key, so the same event_id) writes the event of the record
// the fold applied, the first, as the relay does: one event_id, one
// content, whichever writer downstream keeps.
func TestRetriedDropRequestWritesTheFirstEvent(t *testing.T) {
	brokers := newBroker(t)
	clk := &clock{t: time.Now()}
	base := startInstance(t, brokers, Clock(clk.now)).srv.URL
	body := map[string]any{"drop_id": "d1", "creator_id": "cr", "inventory": 3,
		"starts_at": "2026-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"}
	first := call(t, base, "POST", "/v1/drops", serverKey, body, IdempotencyHeader, "s1")
	clk.add(5 * time.Second)
	again := call(t, base, "POST", "/v1/drops", serverKey, body, IdempotencyHeader, "s1")
	if first.code != 200 || again.code != 200 || first.str("event_id") != again.str("event_id") {
		t.Fatalf("schedule and its retry: %v, %v", first.body, again.body)
	}
	var ts []int64
	for _, r := range eventRecords(t, brokers) {
		if e := decodeEvent(t, r); e.ID == first.str("event_id") && !kafka.IsCatalogCopy(r) {
			ts = append(ts, e.TS)
		}
	}
	for _, v := range ts {
		if v != ts[0] {
			t.Errorf("the retried schedule's events have different times %v: two contents under one event_id", ts)
			break
		}
	}
}
