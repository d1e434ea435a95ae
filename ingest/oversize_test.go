package ingest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/event"
)

// TestOversizedRejectionStillAnswers: an event whose dead letter would be
// large once JSON-escaped (a huge unknown field name, whose name the reason
// repeats, or a raw payload of characters JSON escapes six-fold) is
// rejected with 200 and dead-lettered; it must not make the dead-letter
// record exceed Kafka's record limit and turn the whole batch into a 503
// that the client retries forever.
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
		})
	}
}
