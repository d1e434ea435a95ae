package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/loadgen"
)

// apiCall sends a request to the quest/drop API with the server key and
// returns the status and the decoded JSON answer.
func (s *stack) apiCall(method, path string, body any) (int, map[string]any) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+serverKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		s.t.Fatalf("%s %s: %d, not JSON: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

// TestAPIThroughThePipeline: what the quest/drop API writes is an
// ordinary part of the stream (SPEC §3): its catalog reaches the
// processors (a quest defined through the API with a 2-minute minimum
// makes a completion timed by the API's server clock an impossible quest,
// flagging the user in bot_signals), its quest events are counted in
// quest_completion, and each claim's outcome is one event in ClickHouse's
// events table (source api) however often it was asked and relayed, with
// the drop's inventory never exceeded.
func TestAPIThroughThePipeline(t *testing.T) {
	s := newStack(t, loadgen.DefaultConfig().Windows, 1)
	now := time.Now().UTC()
	rfc := func(t time.Time) string { return t.Format("2006-01-02T15:04:05.000Z07:00") }
	must := func(want int, method, path string, body any) map[string]any {
		t.Helper()
		got, out := s.apiCall(method, path, body)
		if got != want {
			t.Fatalf("%s %s: %d %v, want %d", method, path, got, out, want)
		}
		return out
	}

	must(200, "POST", "/v1/quests", map[string]any{"quest_id": "api-speedrun", "min_duration_ms": 120_000})
	must(200, "POST", "/v1/drops", map[string]any{"drop_id": "api-drop", "creator_id": "api-creator",
		"starts_at": rfc(now.Add(-time.Minute)), "ends_at": rfc(now.Add(time.Hour)), "inventory": 3})
	must(200, "POST", "/v1/drops/api-drop/start", map[string]any{"creator_id": "api-creator"})

	// Five users claim the three items; two claims are asked twice.
	granted := 0
	for i := range 5 {
		body := map[string]any{"claim_id": fmt.Sprintf("api-claim-%d", i), "user_id": fmt.Sprintf("api-user-%d", i)}
		code, out := s.apiCall("POST", "/v1/drops/api-drop/claims", body)
		switch {
		case code == 200 && out["status"] == "granted":
			granted++
		case code == 409 && out["reason"] == "sold_out":
		default:
			t.Fatalf("claim %d: %d %v", i, code, out)
		}
		if i == 1 || i == 4 {
			if again, out2 := s.apiCall("POST", "/v1/drops/api-drop/claims", body); again != code || out2["status"] != out["status"] {
				t.Fatalf("claim %d asked again: %d %v, first %d %v", i, again, out2, code, out)
			}
		}
	}
	if granted != 3 {
		t.Fatalf("%d claims granted of an inventory of 3", granted)
	}

	// A quest completed at once: far below the API-defined minimum.
	start := must(200, "POST", "/v1/quests/api-speedrun/start", map[string]any{"user_id": "api-speeder"})
	done := must(200, "POST", "/v1/quests/api-speedrun/complete", map[string]any{"user_id": "api-speeder", "attempt": start["attempt"]})
	if d, ok := done["duration_ms"].(float64); !ok || d < 0 || d >= 120_000 {
		t.Fatalf("duration measured by the server: %v", done["duration_ms"])
	}

	s.clock.fast() // close the windows
	deadline := time.Now().Add(2 * time.Minute)
	s.waitFor(deadline, "the API's events in events", func() bool {
		rows := s.query(`SELECT type, count(), uniqExact(event_id), min(source), max(source) FROM {db}.events FINAL
			WHERE drop_id = 'api-drop' AND type IN ('drop_claimed', 'claim_rejected') GROUP BY type ORDER BY type`)
		got := fmt.Sprint(rows)
		return got == "[[claim_rejected 2 2 api api] [drop_claimed 3 3 api api]]"
	})
	s.waitFor(deadline, "the impossible quest in bot_signals", func() bool {
		rows := s.query(`SELECT reasons, flagged FROM {db}.bot_signals FINAL
			WHERE entity_type = 'user' AND entity_id = 'api-speeder' AND flagged = 1`)
		return len(rows) > 0 && strings.Contains(rows[0][0], "impossible_quest")
	})
	s.waitFor(deadline, "the API's quest in quest_completion", func() bool {
		rows := s.query(`SELECT max(starts), max(completions) FROM {db}.quest_completion FINAL
			WHERE quest_id = 'api-speedrun' AND scope = 'all'`)
		return len(rows) == 1 && rows[0][0] == "1" && rows[0][1] == "1"
	})
	// The claim outcomes' rejected reasons, as analysts read them.
	if rows := s.query(`SELECT reason, count() FROM {db}.events FINAL WHERE drop_id = 'api-drop' AND type = 'claim_rejected' GROUP BY reason`); fmt.Sprint(rows) != "[[sold_out 2]]" {
		t.Errorf("claim_rejected reasons: %v", rows)
	}
}
