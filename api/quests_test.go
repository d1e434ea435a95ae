package api

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/ingest"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/processors/pipeline"
)

// clock is a settable clock for Clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestQuestDurationMeasuredByServer: the server measures a quest's
// duration from the attempt token, on any instance sharing the secret; a
// tampered token, another user's and another secret's are refused.
func TestQuestDurationMeasuredByServer(t *testing.T) {
	brokers := newBroker(t)
	clk := &clock{t: time.Now()}
	a := startInstance(t, brokers, Clock(clk.now)).srv.URL
	b := startInstance(t, brokers, Clock(clk.now)).srv.URL
	foreign := startInstance(t, brokers, Clock(clk.now), Secret([]byte("another secret, not shared....."))).srv.URL

	st := call(t, a, "POST", "/v1/quests/q7/start", serverKey, map[string]any{"user_id": "u1", "device_id": "d1"})
	token := st.str("attempt")
	if st.code != 200 || token == "" {
		t.Fatalf("start: %d %v", st.code, st.body)
	}
	clk.add(4*time.Minute + 30*time.Second)
	done := call(t, b, "POST", "/v1/quests/q7/complete", serverKey, map[string]any{"user_id": "u1", "attempt": token})
	if done.code != 200 || done.body["duration_ms"] != float64(270000) {
		t.Fatalf("complete on another instance: %d %v", done.code, done.body)
	}

	flip := []byte(token)
	flip[20] ^= 1
	for name, tc := range map[string]struct{ base, quest, user, token string }{
		"tampered":      {b, "q7", "u1", string(flip)},
		"another user":  {b, "q7", "u2", token},
		"another quest": {b, "q8", "u1", token},
		"other secret":  {foreign, "q7", "u1", token},
		"not a token":   {b, "q7", "u1", "hello"},
	} {
		r := call(t, tc.base, "POST", "/v1/quests/"+tc.quest+"/complete", serverKey, map[string]any{"user_id": tc.user, "attempt": tc.token})
		if r.code != 400 || !strings.Contains(r.str("error"), "attempt") {
			t.Errorf("%s token: %d %v", name, r.code, r.body)
		}
	}

	var started, completed *event.Event
	for _, r := range eventRecords(t, brokers) {
		e := decodeEvent(t, r)
		switch e.Type {
		case event.QuestStarted:
			started = &e
		case event.QuestCompleted:
			completed = &e
		}
	}
	if started == nil || completed == nil {
		t.Fatal("quest_started or quest_completed missing from questline.events")
	}
	if completed.DurationMs != 270000 || completed.Has&event.HasDurationMs == 0 || completed.UserID != "u1" || completed.QuestID != "q7" {
		t.Errorf("quest_completed: %+v", completed)
	}
	if completed.EventTime-started.EventTime != 270000 || started.Source != event.SourceAPI || started.DeviceID != "d1" {
		t.Errorf("server times: started %+v, completed %+v", started, completed)
	}
}

// TestCatalogCopies: quest_defined and drop_scheduled written by the API
// reach every partition of questline.events as copies before the
// original, as ingest writes them, so the processors learn them.
func TestCatalogCopies(t *testing.T) {
	brokers := newBroker(t)
	base := startInstance(t, brokers).srv.URL
	a := call(t, base, "POST", "/v1/quests", serverKey, map[string]any{"quest_id": "q1", "min_duration_ms": 60000, "title": "Speedrun"},
		IdempotencyHeader, "define-q1")
	if a.code != 200 {
		t.Fatalf("define: %d %v", a.code, a.body)
	}
	again := call(t, base, "POST", "/v1/quests", serverKey, map[string]any{"quest_id": "q1", "min_duration_ms": 60000, "title": "Speedrun"},
		IdempotencyHeader, "define-q1")
	if again.str("event_id") != a.str("event_id") {
		t.Errorf("a retry with the same Idempotency-Key has event_id %q, the first %q", again.str("event_id"), a.str("event_id"))
	}
	scheduleLive(t, base, "d1", 3)

	copies := map[event.Type]map[int32]bool{}
	originals := map[event.Type]int{}
	for _, r := range eventRecords(t, brokers) {
		e := decodeEvent(t, r)
		if e.Type != event.QuestDefined && e.Type != event.DropScheduled {
			continue
		}
		if kafka.IsCatalogCopy(r) {
			if copies[e.Type] == nil {
				copies[e.Type] = map[int32]bool{}
			}
			copies[e.Type][r.Partition] = true
			continue
		}
		if !kafka.IsCatalogCopied(r) {
			t.Errorf("%s original without the copied header", e.Type)
		}
		originals[e.Type]++
		if e.Type == event.QuestDefined && (e.MinDurationMs != 60000 || e.Title != "Speedrun" || string(r.Key) != "q1") {
			t.Errorf("quest_defined: %+v key %q", e, r.Key)
		}
	}
	for _, ty := range []event.Type{event.QuestDefined, event.DropScheduled} {
		if len(copies[ty]) != 4 || originals[ty] == 0 {
			t.Errorf("%s: copies in %d partitions (want 4), %d originals", ty, len(copies[ty]), originals[ty])
		}
	}
}

// TestAuthAndLimits: the API's whole-request errors.
func TestAuthAndLimits(t *testing.T) {
	brokers := newBroker(t)
	lim, err := ingest.NewLimiter(ingest.IPRate(1e6, 1e6), ingest.KeyRate(0.01, 2))
	if err != nil {
		t.Fatal(err)
	}
	base := startInstance(t, brokers, RateLimits(lim), MaxBodyBytes(1024)).srv.URL
	body := map[string]any{"quest_id": "q", "min_duration_ms": 1}
	if a := call(t, base, "POST", "/v1/quests", "", body); a.code != 401 || a.str("error") == "" {
		t.Errorf("no key: %d %v", a.code, a.body)
	}
	if a := call(t, base, "POST", "/v1/quests", "wrong", body); a.code != 401 {
		t.Errorf("unknown key: %d %v", a.code, a.body)
	}
	if a := call(t, base, "POST", "/v1/quests", clientKey, body); a.code != 403 || !strings.Contains(a.str("error"), "server-scope") {
		t.Errorf("client key: %d %v", a.code, a.body)
	}
	if a := call(t, base, "POST", "/v1/quests", serverKey, `{"quest_id":"q","min_duration_ms":1,"title":"`+strings.Repeat("x", 2000)+`"}`); a.code != 413 {
		t.Errorf("oversize body: %d %v", a.code, a.body)
	}
	if a := call(t, base, "POST", "/v1/quests", serverKey, map[string]any{"quest_id": "q", "min_duration_ms": 1, "colour": "red"}); a.code != 400 || !strings.Contains(a.str("error"), "colour") {
		t.Errorf("unknown field: %d %v", a.code, a.body)
	}
	a := call(t, base, "POST", "/v1/quests", serverKey, body)
	if a.code != 429 || a.retry == "" {
		t.Errorf("past the key's burst: %d Retry-After %q %v", a.code, a.retry, a.body)
	}
	if a := call(t, base, "GET", "/v1/openapi.json", "", nil); a.code != 200 || a.body["openapi"] == nil {
		t.Errorf("openapi without a key: %d", a.code)
	}
}

// TestIPRateLimit: the client IP's bucket is spent before the key is
// checked, so guessing keys is limited too.
func TestIPRateLimit(t *testing.T) {
	brokers := newBroker(t)
	lim, err := ingest.NewLimiter(ingest.IPRate(0.01, 2))
	if err != nil {
		t.Fatal(err)
	}
	base := startInstance(t, brokers, RateLimits(lim)).srv.URL
	var last answer
	for range 3 {
		last = call(t, base, "GET", "/v1/drops/x", "wrong", nil)
	}
	if last.code != 429 || last.retry == "" {
		t.Errorf("third request of an IP with burst 2: %d Retry-After %q", last.code, last.retry)
	}
}

// TestKafkaDown503: when Kafka does not acknowledge, the answer is 503
// with Retry-After, and nothing is claimed to be written.
func TestKafkaDown503(t *testing.T) {
	brokers := newBroker(t)
	in := startInstance(t, brokers, RequestTimeout(2*time.Second))
	in.cl.Close() // the producer is gone; the claims log readers still run
	for _, tc := range []struct{ path, body string }{
		{"/v1/quests", `{"quest_id":"q","min_duration_ms":1}`},
		{"/v1/drops/d/claims", `{"claim_id":"c","user_id":"u"}`},
		{"/v1/drops/d/start", `{"creator_id":"c"}`},
	} {
		a := call(t, in.srv.URL, "POST", tc.path, serverKey, tc.body)
		if a.code != 503 || a.retry == "" || a.str("error") == "" {
			t.Errorf("%s with Kafka gone: %d Retry-After %q %v", tc.path, a.code, a.retry, a.body)
		}
	}
}

// TestSlowBody408: a body still arriving at the request timeout is a 408
// with Retry-After (it was a 400, which tells a client not to retry), and
// nothing is written.
func TestSlowBody408(t *testing.T) {
	in := startInstance(t, newBroker(t), RequestTimeout(300*time.Millisecond))
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"quest_id":"slow",`))
		time.Sleep(time.Second)
		pw.Write([]byte(`"min_duration_ms":60000}`))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", in.srv.URL+"/v1/quests", pr)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+serverKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "request timeout") {
		t.Fatalf("%d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
}

// TestAttemptMaxAgeWithinDedupHorizon: a completion retried at the end of
// its attempt's life is written at its own time under the attempt's id;
// the processors must still remember the first completion's id then, or
// it counts twice. Their horizon is measured behind a watermark that can
// lead the wall clock by ingest's MaxFuture, and the disorder bound only
// lengthens it (taken as zero here).
func TestAttemptMaxAgeWithinDedupHorizon(t *testing.T) {
	cfg := pipeline.DefaultConfig()
	cfg.OutOfOrder = 0
	horizon := time.Duration(cfg.DedupHorizon()) * time.Millisecond
	if need := DefaultAttemptMaxAge + ingest.DefaultMaxFuture; need >= horizon {
		t.Fatalf("attempt max age %v + ingest's max future %v = %v, not within the processors' de-duplication horizon %v",
			DefaultAttemptMaxAge, ingest.DefaultMaxFuture, need, horizon)
	}
}

// TestAttemptExpires: an attempt token completes its quest only within
// AttemptMaxAge of its start: a token kept (or leaked) for days would
// otherwise complete the quest whenever its holder likes.
func TestAttemptExpires(t *testing.T) {
	clk := &clock{t: time.Now()}
	base := startInstance(t, newBroker(t), Clock(clk.now)).srv.URL
	start := func() map[string]any {
		st := call(t, base, "POST", "/v1/quests/q1/start", serverKey, map[string]any{"user_id": "u1"})
		if st.code != 200 {
			t.Fatalf("start: %d %v", st.code, st.body)
		}
		return map[string]any{"user_id": "u1", "attempt": st.str("attempt")}
	}
	fresh := start()
	clk.add(DefaultAttemptMaxAge - time.Second)
	if a := call(t, base, "POST", "/v1/quests/q1/complete", serverKey, fresh); a.code != 200 {
		t.Errorf("completing 1 s before the max age: %d %v", a.code, a.body)
	}
	old := start()
	clk.add(DefaultAttemptMaxAge + time.Second)
	if a := call(t, base, "POST", "/v1/quests/q1/complete", serverKey, old); a.code != 400 || !strings.Contains(a.str("error"), "attempt: expired") {
		t.Errorf("completing 1 s after the max age: %d %v", a.code, a.body)
	}
}

// TestLongDeviceIDRefusedFirst: a device_id longer than SPEC's 128
// characters is refused (400, naming it) before the device rate limiter
// keys a bucket by it (helper-37), on every route that takes one: with a
// device allowed one request, every try is a 400, never a 429.
func TestLongDeviceIDRefusedFirst(t *testing.T) {
	brokers := newBroker(t)
	lim, err := ingest.NewLimiter(ingest.IPRate(1e6, 1e6), ingest.KeyRate(1e6, 1e6), ingest.DeviceRate(0.001, 1), ingest.NewDeviceBurst(1))
	if err != nil {
		t.Fatal(err)
	}
	a := startInstance(t, brokers, RateLimits(lim)).srv.URL
	long := strings.Repeat("d", event.MaxIDLen+1)
	for path, extra := range map[string][2]string{
		"/v1/quests/q1/start":    {},
		"/v1/quests/q1/complete": {"attempt", "x"},
		"/v1/drops/dr1/claims":   {"claim_id", "c1"},
	} {
		body := map[string]any{"user_id": "u1", "device_id": long}
		if extra[0] != "" {
			body[extra[0]] = extra[1]
		}
		for try := range 3 {
			r := call(t, a, "POST", path, serverKey, body)
			if r.code != http.StatusBadRequest || !strings.Contains(r.str("error"), "device_id") {
				t.Errorf("%s with a %d-character device_id, try %d: %d %v", path, len(long), try, r.code, r.body)
			}
		}
	}
	if r := call(t, a, "POST", "/v1/quests/q1/start", serverKey, map[string]any{"user_id": "u1", "device_id": strings.Repeat("d", event.MaxIDLen)}); r.code != http.StatusOK {
		t.Errorf("a 128-character device_id: %d %v", r.code, r.body)
	}
}

// TestInFlightPerIP: one client address holds at most MaxInFlightPerIP
// requests in flight, before authentication; past it 429 with
// Retry-After (as ingest).
func TestInFlightPerIP(t *testing.T) {
	brokers := newBroker(t)
	in := startInstance(t, brokers, MaxInFlightPerIP(2))
	a := in.srv.URL
	u, err := url.Parse(a)
	if err != nil {
		t.Fatal(err)
	}
	addr := ingest.IPBucket(netip.MustParseAddr(u.Hostname()))
	held := func() int { return in.h.perIP.Held(addr) }
	// Two slow requests, written on connections of their own (a client's
	// transport may hold a request's first bytes back until more come):
	// headers and the start of a 100-byte body, then nothing.
	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "POST /v1/quests HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{\"quest_id\": ", serverKey)
	}
	// Both handlers hold their slots before the probe (the server may
	// schedule them after a probe's): else say what the connections got.
	for deadline := time.Now().Add(10 * time.Second); held() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			var got []string
			for _, c := range conns {
				_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				b, err := io.ReadAll(c)
				got = append(got, fmt.Sprintf("%q (%v)", b, err))
			}
			t.Fatalf("%d slots held after 10 s, want the 2 slow requests'; they were answered %v", held(), got)
		}
	}
	// The probe has no key: the slot is taken before authentication, so
	// it is 429 here and 401 once the slots are free.
	r := call(t, a, "GET", "/v1/drops/none", "", nil)
	if r.code != http.StatusTooManyRequests || r.retry == "" || !strings.Contains(r.str("error"), "in flight") {
		t.Fatalf("a third request beside two slow ones: %d %v (Retry-After %q), want 429", r.code, r.body, r.retry)
	}
	for _, c := range conns {
		c.Close() // the handlers' reads fail: their slots come back
	}
	for deadline := time.Now().Add(10 * time.Second); held() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d slots still held 10 s after the slow requests' connections closed", held())
		}
	}
	if r := call(t, a, "GET", "/v1/drops/none", "", nil); r.code != http.StatusUnauthorized {
		t.Fatalf("after the slow requests: %d %v, want 401", r.code, r.body)
	}
}
