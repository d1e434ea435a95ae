package ingest_test

import (
	"encoding/binary"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/internal/testtool"
	"github.com/questline/questline/kafka"
)

// TestKcatReadsIngest: an independent Kafka client (librdkafka's kcat)
// reads what ingest wrote: framed binary records on questline.events
// (kcat -f '%R%s', as `questline decode` reads them) and JSON dead letters.
func TestKcatReadsIngest(t *testing.T) {
	kcat := testtool.Require(t, "kcat")
	e := newEnv(t)
	now := time.Now()
	var evs []string
	for i := range 30 {
		evs = append(evs, ev(fmt.Sprintf("kc%d", i), now))
	}
	evs = append(evs, `{"event_id":"kc-bad","type":"quest_started"}`)
	if r := e.post(gzipped(t, batch(evs...)), map[string]string{"Content-Encoding": "gzip"}); r.status != 200 || r.body.Accepted != 30 {
		t.Fatalf("%d %+v", r.status, r.body)
	}
	addr := e.broker.Addrs()[0]

	out, err := exec.Command(kcat, "-C", "-b", addr, "-t", kafka.TopicEvents, "-e", "-q", "-f", "%R%s").Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	seen := map[string]bool{}
	for b := out; len(b) > 0; {
		if len(b) < 4 {
			t.Fatalf("truncated frame: %d bytes left", len(b))
		}
		n := binary.BigEndian.Uint32(b)
		if int(n) > len(b)-4 {
			t.Fatalf("frame of %d bytes, %d left", n, len(b)-4)
		}
		var ev event.Event
		if err := event.DecodeBinary(b[4:4+n], &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != event.QuestStarted || ev.QuestID != "q1" || ev.KeyID == "" {
			t.Fatalf("decoded %+v", ev)
		}
		seen[ev.ID] = true
		b = b[4+n:]
	}
	for i := range 30 {
		if !seen[fmt.Sprintf("kc%d", i)] {
			t.Fatalf("kc%d not read by kcat (%d read)", i, len(seen))
		}
	}

	out, err = exec.Command(kcat, "-C", "-b", addr, "-t", kafka.TopicDLQ, "-e", "-q", "-f", "%s\n").Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 {
		t.Fatalf("kcat read %d dead letters, want 1", len(lines))
	}
	d, err := event.UnmarshalDeadLetter([]byte(lines[0]))
	if err != nil || d.EventID != "kc-bad" || d.Index != 30 || d.Kind != "schema" || d.Raw != evs[30] {
		t.Fatalf("dead letter %+v (%v)", d, err)
	}
}
