package event

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzParseBatch checks the batch parser against encoding/json and itself.
// The seed corpus is in testdata/fuzz/FuzzParseBatch; CI runs it briefly:
//
//	go test ./event -run '^$' -fuzz FuzzParseBatch -fuzztime 30s
func FuzzParseBatch(f *testing.F) {
	f.Add([]byte(`{"sent_at":"2026-05-01T12:00:00.000Z","clock_offset_ms":-20,"events":[{"event_id":"e1","type":"billed","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"auction_id":"a","amount_micros":1500000,"currency":"EUR","x":[1,{"y":null}]}}]}`))
	f.Add([]byte(`{"events":[{"event_id":"e\u00e9","type":"quest_started","ts":"2026-05-01T12:00:00+02:00","user_id":"\ud83d\ude00","props":{"quest_id":"q"}},1,"s",null]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var b Batch
		err := ParseBatch(body, &b, 1000)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) && !errors.Is(err, ErrTooManyEvents) {
				t.Fatalf("error of unexpected kind: %T %v", err, err)
			}
			return
		}
		// Whatever the parser accepts is JSON.
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON: %q", body)
		}
		for i, it := range b.Items {
			if !json.Valid([]byte(it.Raw)) {
				t.Fatalf("item %d raw is not JSON: %q", i, it.Raw)
			}
			if it.Event.Extra != "" && !json.Valid([]byte(it.Event.Extra)) {
				t.Fatalf("item %d extra is not JSON: %q", i, it.Event.Extra)
			}
			if it.Err != nil {
				var fe *FieldError
				if !errors.As(it.Err, &fe) {
					t.Fatalf("item %d error is %T, want *FieldError", i, it.Err)
				}
				continue
			}
			// A valid event survives AppendClientJSON → ParseBatch unchanged,
			// and its binary record decodes to the same event.
			again := batchJSON("", []Event{it.Event})
			var b2 Batch
			if err := ParseBatch(again, &b2, 0); err != nil || len(b2.Items) != 1 || b2.Items[0].Err != nil {
				t.Fatalf("re-encoded event does not parse: %v %q", err, again)
			}
			if !reflect.DeepEqual(b2.Items[0].Event, it.Event) {
				t.Fatalf("round trip differs:\n got %+v\nwant %+v", b2.Items[0].Event, it.Event)
			}
			var d Event
			if err := DecodeBinary(AppendBinary(nil, &it.Event), &d); err != nil || !reflect.DeepEqual(d, it.Event) {
				t.Fatalf("binary round trip: %v\n got %+v\nwant %+v", err, d, it.Event)
			}
		}
	})
}
