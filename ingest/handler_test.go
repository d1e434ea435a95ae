package ingest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/ingest"
)

// TestAcceptedEvents: a valid gzip batch is answered 200 only once its
// events are in questline.events, keyed by user, with what ingest derives.
func TestAcceptedEvents(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	body := []byte(fmt.Sprintf(`{"sent_at":%q,"events":[%s,%s,%s]}`,
		now.Add(-10*time.Second).UTC().Format(event.TimeLayout),
		ev("a1", now.Add(-20*time.Second)), ev("a2", now.Add(-15*time.Second)),
		`{"event_id":"a3","type":"conversion","ts":"`+now.Add(-12*time.Second).UTC().Format(event.TimeLayout)+`","user_id":"u-a3","country":"FR","props":{"order_id":"o1","amount_micros":4990000,"currency":"EUR","ab":"x"}}`))
	r := e.post(gzipped(t, body), map[string]string{"Content-Encoding": "gzip", "X-Edge-Country": "de"})
	if r.status != http.StatusOK || r.body.Accepted != 3 || len(r.body.Rejected) != 0 {
		t.Fatalf("status %d, %+v", r.status, r.body)
	}
	got := e.events()
	if len(got) != 3 {
		t.Fatalf("%d events in Kafka, want 3", len(got))
	}
	a3 := got["a3"][0]
	// The device clock is 10 s behind: sent_at correction adds ~10 s.
	if skew := a3.EventTime - a3.TS; skew < 9000 || skew > 12000 {
		t.Errorf("event_time - ts = %d ms, want about 10000", skew)
	}
	if a3.Source != event.SourceClient || a3.KeyID != ingest.KeyID(clientKey) || a3.EdgeCountry != "DE" ||
		a3.Has&event.HasSentAt == 0 || a3.ReceivedAt < now.UnixMilli()-1000 || a3.AmountMicros != 4990000 || a3.Extra != `{"ab":"x"}` {
		t.Errorf("derived fields wrong: %+v", a3)
	}
	if e.counter("questline_ingest_events_accepted_total", "source", "client") != 3 {
		t.Errorf("accepted counter = %v", e.counter("questline_ingest_events_accepted_total", "source", "client"))
	}
	if d := e.deadLetters(); len(d) != 0 {
		t.Errorf("dead letters for a clean batch: %+v", d)
	}
}

// TestPerEventRejections: each bad event is rejected alone, with its index
// and reason in the answer and a dead letter holding its raw JSON; its
// neighbours are accepted.
func TestPerEventRejections(t *testing.T) {
	now := time.Now()
	ts := func(d time.Duration) string { return now.Add(d).UTC().Format(event.TimeLayout) }
	cases := []struct {
		name, event, kind, errHas string
		key                       string
	}{
		{"missing field", `{"event_id":"x1","type":"quest_started","ts":"` + ts(0) + `","user_id":"u","props":{}}`, ingest.KindSchema, "props.quest_id", clientKey},
		{"malformed field", `{"event_id":"x1","type":"quest_started","ts":"yesterday","user_id":"u","props":{"quest_id":"q"}}`, ingest.KindSchema, "ts", clientKey},
		{"unknown type", `{"event_id":"x1","type":"quest_exploded","ts":"` + ts(0) + `","user_id":"u","props":{"quest_id":"q"}}`, ingest.KindSchema, "unknown event type", clientKey},
		{"float amount", `{"event_id":"x1","type":"billed","ts":"` + ts(0) + `","user_id":"u","props":{"auction_id":"a","amount_micros":1.5,"currency":"EUR"}}`, ingest.KindSchema, "props.amount_micros", clientKey},
		{"client sets event_time", `{"event_id":"x1","type":"quest_started","ts":"` + ts(0) + `","event_time":"` + ts(0) + `","user_id":"u","props":{"quest_id":"q"}}`, ingest.KindSchema, "event_time", clientKey},
		{"not an object", `"quest_started"`, ingest.KindSchema, "event", clientKey},
		{"server type with client key", `{"event_id":"x1","type":"drop_started","ts":"` + ts(0) + `","props":{"drop_id":"d","creator_id":"c"}}`, ingest.KindScope, "server-scope key", clientKey},
		{"in the future", `{"event_id":"x1","type":"quest_started","ts":"` + ts(6*time.Minute) + `","user_id":"u","props":{"quest_id":"q"}}`, ingest.KindInFuture, "future", clientKey},
		{"too old", `{"event_id":"x1","type":"quest_started","ts":"` + ts(-73*time.Hour) + `","user_id":"u","props":{"quest_id":"q"}}`, ingest.KindTooOld, "maximum age", clientKey},
		{"duplicate in batch", ev("ok-1", now), ingest.KindDuplicate, "duplicate", clientKey},
		{"too old from a server key", `{"event_id":"x1","type":"drop_ended","ts":"` + ts(-80*time.Hour) + `","props":{"drop_id":"d"}}`, ingest.KindTooOld, "maximum age", serverKey},
	}
	e := newEnv(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Unique ids per case: the recent-id cache must not interfere.
			okA, okB := fmt.Sprintf("ok-%d-a", i), fmt.Sprintf("ok-%d-b", i)
			bad := strings.ReplaceAll(c.event, `"x1"`, strconv.Quote(fmt.Sprintf("x-%d", i)))
			bad = strings.ReplaceAll(bad, `"ok-1"`, strconv.Quote(okA))
			r := e.post(batch(ev(okA, now), bad, ev(okB, now)), map[string]string{"Authorization": "Bearer " + c.key})
			if r.status != http.StatusOK || r.body.Accepted != 2 || len(r.body.Rejected) != 1 {
				t.Fatalf("status %d, %+v", r.status, r.body)
			}
			rej := r.body.Rejected[0]
			if rej.Index != 1 || !strings.Contains(rej.Error, c.errHas) {
				t.Fatalf("rejection %+v, want index 1 and %q", rej, c.errHas)
			}
			wantID := fmt.Sprintf("x-%d", i)
			if c.kind == ingest.KindDuplicate {
				wantID = okA
			}
			var found []event.DeadLetter
			for _, d := range e.deadLetters() {
				if d.EventID == wantID {
					found = append(found, d)
				}
			}
			if len(found) != 1 && !(c.name == "not an object" && len(found) == 0) {
				t.Fatalf("%d dead letters for %s, want 1", len(found), wantID)
			}
			if c.name == "not an object" {
				found = nil
				for _, d := range e.deadLetters() {
					if d.Raw == bad {
						found = append(found, d)
					}
				}
				if len(found) != 1 {
					t.Fatalf("%d dead letters with raw %s, want 1", len(found), bad)
				}
			}
			d := found[0]
			if d.Kind != c.kind || d.Index != 1 || d.Raw != bad || d.Reason != rej.Error || d.KeyID != ingest.KeyID(c.key) || d.ReceivedAt == 0 {
				t.Fatalf("dead letter %+v, want kind %s and raw %s", d, c.kind, bad)
			}
			got := e.events()
			if len(got[okA]) != 1 || len(got[okB]) != 1 {
				t.Fatalf("neighbours in Kafka: %d, %d", len(got[okA]), len(got[okB]))
			}
		})
	}
	if n := e.counter("questline_ingest_events_rejected_total", "reason", ingest.KindSchema); n != 6 {
		t.Errorf("schema rejections counted %v, want 6", n)
	}
}

// TestWholeRequestErrors: each refused request gets its status, a JSON
// error with server_time, Retry-After where the client should retry, and
// (for bodies that were read) a dead letter.
func TestWholeRequestErrors(t *testing.T) {
	now := time.Now()
	good := batch(ev("w1", now))
	bomb := gzipped(t, append(append([]byte(`{"events":[`), bytes.Repeat([]byte(" "), 64<<20)...), "]}"...))
	many := make([]string, 11)
	for i := range many {
		many[i] = ev(fmt.Sprintf("m%d", i), now)
	}
	cases := []struct {
		name   string
		body   []byte
		hdr    map[string]string
		status int
		dlKind string // "" = no dead letter
	}{
		{"no key", good, map[string]string{"Authorization": ""}, 401, ""},
		{"unknown key", good, map[string]string{"Authorization": "Bearer nope"}, 401, ""},
		{"not bearer", good, map[string]string{"Authorization": "Basic " + clientKey}, 401, ""},
		{"wrong content type", good, map[string]string{"Content-Type": "text/plain"}, 415, ""},
		{"no content type", good, map[string]string{"Content-Type": ""}, 415, ""},
		{"unknown encoding", good, map[string]string{"Content-Encoding": "br"}, 415, ""},
		{"malformed json", []byte(`{"events":[{"event_id":`), nil, 400, ingest.KindMalformedBody},
		{"not a batch", []byte(`[1,2,3]`), nil, 400, ingest.KindMalformedBody},
		{"unknown batch field", []byte(`{"events":[],"extra":true}`), nil, 400, ingest.KindMalformedBody},
		{"bad sent_at", []byte(`{"sent_at":"noon","events":[]}`), nil, 400, ingest.KindMalformedBody},
		{"bad gzip", []byte("\x1f\x8b\x08\x00garbage"), map[string]string{"Content-Encoding": "gzip"}, 400, ingest.KindMalformedBody},
		{"gzip claimed, plain sent", good, map[string]string{"Content-Encoding": "gzip"}, 400, ingest.KindMalformedBody},
		{"body over the limit", append(append([]byte(`{"events":[],"x":"`), bytes.Repeat([]byte("a"), 70<<10)...), `"}`...), nil, 413, ingest.KindTooLarge},
		{"chunked body over the limit", append(append([]byte(`{"events":[],"x":"`), bytes.Repeat([]byte("a"), 70<<10)...), `"}`...), nil, 413, ingest.KindTooLarge},
		{"gzip bomb", bomb, map[string]string{"Content-Encoding": "gzip"}, 413, ingest.KindTooLarge},
		{"too many events", batch(many...), nil, 413, ingest.KindTooLarge},
	}
	e := newEnv(t, ingest.MaxBodyBytes(64<<10), ingest.MaxDecodedBytes(256<<10), ingest.MaxEvents(10))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.deadLetters()
			var r reply
			if strings.HasPrefix(c.name, "chunked") {
				r = e.postReader(io.MultiReader(bytes.NewReader(c.body)), c.hdr) // no Content-Length
			} else {
				r = e.post(c.body, c.hdr)
			}
			if r.status != c.status || r.body.Error == "" {
				t.Fatalf("status %d (%+v), want %d with an error", r.status, r.body, c.status)
			}
			if c.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			after := e.deadLetters()
			if c.dlKind == "" {
				if len(after) != len(before) {
					t.Fatalf("unexpected dead letter %+v", after[len(after)-1])
				}
				return
			}
			if len(after) != len(before)+1 {
				t.Fatalf("%d new dead letters, want 1", len(after)-len(before))
			}
			d := after[len(after)-1]
			if d.Kind != c.dlKind || d.Index != -1 || d.Reason == "" || d.KeyID != ingest.KeyID(clientKey) {
				t.Fatalf("dead letter %+v", d)
			}
			if c.status == 400 && c.hdr == nil && d.Raw != string(c.body) {
				t.Fatalf("dead letter raw %q, want the body %q", d.Raw, c.body)
			}
			if c.name == "gzip bomb" && (len(d.Raw) > event.MaxDeadLetterRaw || !d.RawTruncated || !strings.Contains(d.Reason, "after gzip decoding")) {
				t.Fatalf("bomb dead letter: raw %d bytes, truncated %v, reason %q", len(d.Raw), d.RawTruncated, d.Reason)
			}
			if c.name == "body over the limit" && !strings.Contains(d.Reason, "Content-Length") ||
				c.name == "chunked body over the limit" && (!strings.Contains(d.Reason, "as sent") || len(d.Raw) != 64<<10+1) {
				t.Fatalf("reason %q", d.Reason)
			}
		})
	}
	if got := e.events(); len(got) != 0 {
		t.Fatalf("refused requests put %d events on Kafka", len(got))
	}

	// A declared Content-Length over the limit is refused before reading.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+ingest.Path, bytes.NewReader(make([]byte, 65<<10)))
	req.Header.Set("Authorization", "Bearer "+clientKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("Content-Length over the limit: %d", resp.StatusCode)
	}
	// GET is not allowed, and other paths are not found: both answered
	// in ingest's JSON shape.
	for _, c := range []struct {
		path   string
		status int
		allow  string
	}{{ingest.Path, http.StatusMethodNotAllowed, "POST"}, {"/v1/event", http.StatusNotFound, ""}, {"/", http.StatusNotFound, ""}} {
		resp, err = http.Get(e.srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error      string `json:"error"`
			ServerTime int64  `json:"server_time"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != c.status || err != nil || body.Error == "" || body.ServerTime == 0 || resp.Header.Get("Allow") != c.allow {
			t.Errorf("GET %s: %d %+v (decode: %v), Allow %q; want %d with a JSON error, Allow %q", c.path, resp.StatusCode, body, err, resp.Header.Get("Allow"), c.status, c.allow)
		}
	}
}

// TestKafkaDown: with the broker gone, a batch gets 503 + Retry-After and
// not 200 — the events are not acknowledged, so the client must retry.
func TestKafkaDown(t *testing.T) {
	e := newEnv(t, ingest.ProduceTimeout(2*time.Second), ingest.ReadTimeout(time.Second), ingest.WriteTimeout(5*time.Second))
	if r := e.post(batch(ev("k1", time.Now())), nil); r.status != 200 {
		t.Fatalf("warm-up: %d %+v", r.status, r.body)
	}
	e.broker.Close()
	r := e.post(batch(ev("k2", time.Now())), nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q, want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	// A malformed body cannot be dead-lettered either: 503, not 400.
	r = e.post([]byte(`{`), nil)
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("malformed body with Kafka down: %d, want 503", r.status)
	}
}

// TestRateLimits: per IP (requests), per key and per device (events), the
// device limit stricter when the declared country disagrees with the edge.
func TestRateLimits(t *testing.T) {
	now := time.Now()
	devEv := func(id, dev, country string) string {
		return fmt.Sprintf(`{"event_id":%q,"type":"quest_started","ts":%q,"user_id":"u","device_id":%q,"country":%q,"props":{"quest_id":"q"}}`,
			id, now.UTC().Format(event.TimeLayout), dev, country)
	}
	t.Run("ip", func(t *testing.T) {
		l, _ := ingest.NewLimiter(ingest.IPRate(0.1, 2))
		e := newEnv(t, ingest.RateLimits(l))
		for i := range 2 {
			if r := e.post(batch(ev(fmt.Sprintf("ip%d", i), now)), map[string]string{"X-Forwarded-For": "203.0.113.7"}); r.status != 200 {
				t.Fatalf("request %d: %d", i, r.status)
			}
		}
		r := e.post(batch(ev("ip3", now)), map[string]string{"X-Forwarded-For": "203.0.113.7"})
		if r.status != 429 || r.header.Get("Retry-After") == "" {
			t.Fatalf("third request: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
		}
		// Another client behind the same trusted proxy has its own bucket.
		if r := e.post(batch(ev("ip4", now)), map[string]string{"X-Forwarded-For": "203.0.113.8"}); r.status != 200 {
			t.Fatalf("other client: %d", r.status)
		}
		if len(e.events()["ip3"]) != 0 {
			t.Fatal("a 429 batch reached Kafka")
		}
	})
	t.Run("key", func(t *testing.T) {
		l, _ := ingest.NewLimiter(ingest.KeyRate(0.1, 3))
		e := newEnv(t, ingest.RateLimits(l))
		if r := e.post(batch(ev("k1", now), ev("k2", now), ev("k3", now)), nil); r.status != 200 {
			t.Fatalf("first: %d", r.status)
		}
		if r := e.post(batch(ev("k4", now)), nil); r.status != 429 || r.header.Get("Retry-After") == "" {
			t.Fatalf("second: %d", r.status)
		}
		// The server key has its own bucket.
		if r := e.post(batch(ev("k5", now)), map[string]string{"Authorization": "Bearer " + serverKey}); r.status != 200 {
			t.Fatalf("server key: %d", r.status)
		}
	})
	t.Run("a refused batch is charged nothing", func(t *testing.T) {
		// The key's bucket refuses after the devices' were charged, and a
		// second device refuses after the first was: each retry of such
		// a batch used to charge the devices again, until the device
		// limit refused it instead of the key's.
		l, _ := ingest.NewLimiter(ingest.KeyRate(0.01, 1), ingest.DeviceRate(0.01, 100), ingest.NewDeviceBurst(100))
		e := newEnv(t, ingest.RateLimits(l))
		var evs []string
		for i := range 50 {
			evs = append(evs, devEv(fmt.Sprint("r", i), "dev-r", ""))
		}
		if r := e.post(batch(evs...), nil); r.status != 200 { // the key goes into debt
			t.Fatalf("first: %d", r.status)
		}
		for i := range 3 {
			if r := e.post(batch(evs...), nil); r.status != 429 || !strings.Contains(r.body.Error, "API key") {
				t.Fatalf("retry %d: %d %q, want the key's 429", i, r.status, r.body.Error)
			}
		}
		if d := l.AllowDevice("dev-r", 50); d != 0 {
			t.Fatalf("dev-r has fewer than the 50 tokens its accepted batch left (wait %v)", d)
		}
		l2, _ := ingest.NewLimiter(ingest.DeviceRate(0.01, 10), ingest.NewDeviceBurst(10))
		e2 := newEnv(t, ingest.RateLimits(l2))
		if r := e2.post(batch(devEv("s1", "dev-full", ""), devEv("s2", "dev-full", "")), nil); r.status != 200 {
			t.Fatalf("dev-full's batch: %d", r.status)
		}
		l2.AllowDevice("dev-full", 8) // 0 tokens left
		mixed := batch(devEv("x1", "dev-s", ""), devEv("x2", "dev-s", ""), devEv("x3", "dev-full", ""))
		for i := range 3 {
			if r := e2.post(mixed, nil); r.status != 429 {
				t.Fatalf("mixed batch %d: %d", i, r.status)
			}
		}
		if d := l2.AllowDevice("dev-s", 10); d != 0 {
			t.Fatalf("dev-s was charged for refused batches (wait %v)", d)
		}
	})
	t.Run("device and country mismatch", func(t *testing.T) {
		l, _ := ingest.NewLimiter(ingest.DeviceRate(0.01, 8), ingest.NewDeviceBurst(4), ingest.MismatchCost(4))
		e := newEnv(t, ingest.RateLimits(l))
		de := map[string]string{"X-Edge-Country": "DE"}
		// A new device starts with 4 tokens: 4 matching events pass...
		if r := e.post(batch(devEv("d1", "dev-a", "DE"), devEv("d2", "dev-a", "DE"), devEv("d3", "dev-a", "DE"), devEv("d4", "dev-a", "DE")), de); r.status != 200 {
			t.Fatalf("matching: %d", r.status)
		}
		if r := e.post(batch(devEv("d5", "dev-a", "DE")), de); r.status != 429 {
			t.Fatalf("device over its burst: %d", r.status)
		}
		// ...but one mismatching event costs 4: the next is refused.
		if r := e.post(batch(devEv("m1", "dev-b", "US")), de); r.status != 200 {
			t.Fatalf("first mismatch: %d", r.status)
		}
		if r := e.post(batch(devEv("m2", "dev-b", "US")), de); r.status != 429 {
			t.Fatalf("second mismatch: %d, want 429", r.status)
		}
		// Without a trusted edge header there is no mismatch to punish.
		if r := e.post(batch(devEv("n1", "dev-c", "US")), nil); r.status != 200 {
			t.Fatalf("no edge country: %d", r.status)
		}
		if r := e.post(batch(devEv("n2", "dev-c", "US")), nil); r.status != 200 {
			t.Fatalf("no edge country, second: %d", r.status)
		}
		if n := e.counter("questline_ingest_rate_limited_requests_total", "limit", "device"); n != 2 {
			t.Fatalf("device limit counted %v, want 2", n)
		}
	})
}

// TestClockOffsetAndServerKeys: clock_offset_ms corrects client events
// exactly; a server key may send lifecycle events (keyed by drop_id), and
// its clock is trusted.
func TestClockOffsetAndServerKeys(t *testing.T) {
	e := newEnv(t)
	ts := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	body := fmt.Sprintf(`{"clock_offset_ms":-1500,"sent_at":%q,"events":[%s]}`,
		ts.Add(-time.Hour).UTC().Format(event.TimeLayout), ev("co1", ts))
	if r := e.post([]byte(body), nil); r.status != 200 || r.body.Accepted != 1 {
		t.Fatalf("%d %+v", r.status, r.body)
	}
	drop := fmt.Sprintf(`{"event_id":"ds1","type":"drop_started","ts":%q,"props":{"drop_id":"drop-9","creator_id":"c1"}}`, ts.UTC().Format(event.TimeLayout))
	body = fmt.Sprintf(`{"clock_offset_ms":99999,"events":[%s]}`, drop)
	if r := e.post([]byte(body), map[string]string{"Authorization": "Bearer " + serverKey}); r.status != 200 || r.body.Accepted != 1 {
		t.Fatalf("server key: %d %+v", r.status, r.body)
	}
	got := e.events()
	co := got["co1"][0]
	if co.EventTime != ts.UnixMilli()-1500 || co.ClockOffsetMs != -1500 || co.Has&event.HasClockOffset == 0 || co.TS != ts.UnixMilli() {
		t.Fatalf("clock offset not applied exactly: ts %d event_time %d offset %d", co.TS, co.EventTime, co.ClockOffsetMs)
	}
	ds := got["ds1"][0]
	if ds.EventTime != ts.UnixMilli() || ds.Source != event.SourceServer || ds.Key() != "drop-9" || ds.KeyID != ingest.KeyID(serverKey) {
		t.Fatalf("server event: %+v", ds)
	}
}
