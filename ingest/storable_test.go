package ingest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/ingest"
)

// TestDeviceClockOutsideStorableRange: a device whose clock says 1969 but
// whose batch corrects it (clock_offset_ms) has a valid event_time, yet its
// ts cannot be stored as a ClickHouse DateTime: the event is rejected with
// a clear reason (and dead-lettered) instead of being stored wrapped.
func TestDeviceClockOutsideStorableRange(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	device := time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC)
	body := fmt.Sprintf(`{"clock_offset_ms":%d,"events":[%s]}`, now.Sub(device).Milliseconds(), ev("old-clock", device))
	r := e.post([]byte(body), nil)
	if r.status != http.StatusOK || r.body.Accepted != 0 || len(r.body.Rejected) != 1 {
		t.Fatalf("status %d, %+v", r.status, r.body)
	}
	if err := r.body.Rejected[0].Error; !strings.Contains(err, "1970-01-01..2106-02-07") {
		t.Fatalf("rejection %q", err)
	}
	for _, d := range e.deadLetters() {
		if d.EventID == "old-clock" && d.Kind == ingest.KindSchema {
			return
		}
	}
	t.Fatal("no dead letter for the rejected event")
}
