package ingest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/ingest"
)

// TestAPIEventIDsNeedServerKey: the quest/drop API's derived event ids
// (qlapi:claim:, qlapi:idem:, qlapi:qs:, qlapi:qc:) are computable from
// public ids (a claim's outcome is qlapi:claim: + a hash of drop_id and
// claim_id), and downstream keeps one event per event_id. A client key
// sending one first would replace or hide the API's event (a user's own
// drop_claimed gone from the metrics), so from client keys ids in that
// namespace are rejected, like a server-only type; a client's own ids that
// merely look alike (claim-…, qs-…) are not.
func TestAPIEventIDsNeedServerKey(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	r := e.post(batch(ev("qlapi:claim:0123456789abcdef", now), ev("qlapi:qc:feed", now), ev("qlapi:idem:1", now), ev("qlapi:x", now),
		ev("claim-ok", now), ev("qs-ok", now), ev("qc-ok", now), ev("idem-ok", now), ev("api-qlapi:ok", now)),
		map[string]string{"Authorization": "Bearer " + clientKey})
	if r.body.Accepted != 5 || len(r.body.Rejected) != 4 {
		t.Fatalf("client key: %d accepted, rejected %+v; want 5 and 4", r.body.Accepted, r.body.Rejected)
	}
	for _, rej := range r.body.Rejected {
		if !strings.Contains(rej.Error, "server-scope key") {
			t.Errorf("rejection %+v does not say why", rej)
		}
	}
	for _, d := range e.deadLetters() {
		if d.Kind != ingest.KindScope {
			t.Errorf("dead letter %+v, want kind %s", d, ingest.KindScope)
		}
	}
	if r := e.post(batch(ev("qlapi:claim:fedcba9876543210", now)), map[string]string{"Authorization": "Bearer " + serverKey}); r.body.Accepted != 1 {
		t.Errorf("server key: %+v", r.body)
	}
}
