package ingest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/ingest"
)

// TestOversizedRejectionStillAnswers: an event whose dead letter would be
// large once JSON-escaped (a huge unknown field name, whose name the reason
// repeats, or a raw payload of characters JSON escapes six-fold) is
// rejected with 200 and dead-lettered; it must not make the dead-letter
// record exceed Kafka's record limit and turn the whole batch into a 503
// that the client retries forever; nor the answer quote all of it.
func TestOversizedRejectionStillAnswers(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	ts := now.UTC().Format(event.TimeLayout)
	cases := map[string]string{
		"huge unknown field name": `{"event_id":"big-1","type":"quest_started","ts":"` + ts + `","user_id":"u","props":{"quest_id":"q"},"` +
			strings.Repeat("k", 2<<20) + `":1}`,
		"raw escaped six-fold": `{"event_id":"big-2","type":"quest_started","ts":"` + ts + `","user_id":"u","props":{"quest_id":"q","junk":"` +
			strings.Repeat("<", 600<<10) + `"},"event_time":"` + ts + `"}`,
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			ok := "ok-" + strings.ReplaceAll(name, " ", "-")
			body := gzipped(t, batch(ev(ok, now), bad))
			r := e.post(body, map[string]string{"Content-Encoding": "gzip"})
			if r.status != http.StatusOK || r.body.Accepted != 1 || len(r.body.Rejected) != 1 {
				t.Fatalf("status %d, accepted %d, %d rejected, error %.200q", r.status, r.body.Accepted, len(r.body.Rejected), r.body.Error)
			}
			if got := e.events(); len(got[ok]) != 1 {
				t.Fatalf("the valid neighbour is in Kafka %d times", len(got[ok]))
			}
			// The answer quotes no more of the input than the dead letter
			// keeps: the 2 MiB name made a 2 MiB answer (a 6 KB gzip body
			// of a 6 MB name, a 6 MB answer).
			if n := len(r.body.Rejected[0].Error); n > 5<<10 {
				t.Fatalf("the rejection's error is %d bytes", n)
			}
		})
	}
}

// TestOversizedEventRejectedAlone: one event too large for a Kafka record
// (big unknown props, within the decoded body limit) is rejected as
// too_large on its own; before, its record failed the produce and the whole
// batch got a 503 on every retry.
func TestOversizedEventRejectedAlone(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	ts := now.UTC().Format(event.TimeLayout)
	big := `{"event_id":"big-9","type":"quest_started","ts":"` + ts + `","user_id":"u","props":{"quest_id":"q","junk":"` +
		strings.Repeat("a", 2<<20) + `"}}`
	r := e.post(gzipped(t, batch(ev("ok-9", now), big)), map[string]string{"Content-Encoding": "gzip"})
	if r.status != http.StatusOK || r.body.Accepted != 1 || len(r.body.Rejected) != 1 {
		t.Fatalf("status %d, accepted %d, rejected %+v, error %.200q", r.status, r.body.Accepted, r.body.Rejected, r.body.Error)
	}
	if rej := r.body.Rejected[0]; rej.Index != 1 || rej.EventID != "big-9" || !strings.Contains(rej.Error, "larger than") {
		t.Fatalf("rejection %+v", rej)
	}
	got := e.events()
	if len(got["ok-9"]) != 1 || len(got["big-9"]) != 0 {
		t.Fatalf("in Kafka: ok-9 %d times, big-9 %d times", len(got["ok-9"]), len(got["big-9"]))
	}
	var found bool
	for _, d := range e.deadLetters() {
		found = found || (d.EventID == "big-9" && d.Kind == ingest.KindTooLarge && d.RawTruncated)
	}
	if !found {
		t.Fatal("no too_large dead letter for big-9")
	}
}
