package event

import (
	"encoding/json"
	"testing"
)

func TestAppendJSONIsValidJSON(t *testing.T) {
	e := sample()
	e.Title = "tab\there \"q\" \\ \x01 and invalid \xff utf-8"
	for name, b := range map[string][]byte{"client": AppendClientJSON(nil, &e), "full": AppendJSON(nil, &e)} {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: not JSON: %v\n%s", name, err, b)
		}
		props := m["props"].(map[string]any)
		if props["title"] != "tab\there \"q\" \\ \x01 and invalid \ufffd utf-8" {
			t.Errorf("%s: title %q", name, props["title"])
		}
		if props["k"] == nil {
			t.Errorf("%s: Extra not merged into props: %s", name, b)
		}
		if m["ts"] != "2025-11-24T16:00:00.123Z" {
			t.Errorf("%s: ts %v", name, m["ts"])
		}
		_, hasEventTime := m["event_time"]
		if hasEventTime != (name == "full") {
			t.Errorf("%s: event_time present = %v", name, hasEventTime)
		}
	}
}

func TestAppendJSONEmptyProps(t *testing.T) {
	e := Event{ID: "x", Type: DropEnded, TS: 0}
	var m map[string]any
	b := AppendClientJSON(nil, &e)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	if len(m["props"].(map[string]any)) != 0 {
		t.Fatalf("props %v, want empty", m["props"])
	}
}
