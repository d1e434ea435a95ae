package loadgen

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/questline/questline/event"
)

// arrival is one event as the test ingest received it.
type arrival struct {
	eventTime int64
	server    bool
	hasOffset bool
	offset    int64
	edge, xff string
	deviceID  string
	attempts  int
}

// testIngest is a small real HTTP ingest: it checks keys and scopes,
// gunzips, parses with the contract's parser, derives event times by
// SPEC §2 and answers with server_time.
type testIngest struct {
	t        *testing.T
	mu       sync.Mutex
	arrivals map[string]*arrival
	// script, when set, answers requests in order before normal service.
	script []func(w http.ResponseWriter) bool
}

func (ti *testIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	received := time.Now().UnixMilli()
	ti.mu.Lock()
	if len(ti.script) > 0 {
		f := ti.script[0]
		ti.script = ti.script[1:]
		ti.mu.Unlock()
		if f(w) {
			return
		}
	} else {
		ti.mu.Unlock()
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/events" || r.Header.Get("Content-Encoding") != "gzip" {
		ti.t.Errorf("request %s %s encoding %q", r.Method, r.URL.Path, r.Header.Get("Content-Encoding"))
		http.Error(w, "bad request", 400)
		return
	}
	var server bool
	switch r.Header.Get("Authorization") {
	case "Bearer ck":
	case "Bearer sk":
		server = true
	default:
		http.Error(w, "bad key", 401)
		return
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		ti.t.Errorf("gzip: %v", err)
		return
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		ti.t.Errorf("gzip: %v", err)
		return
	}
	var b event.Batch
	if err := event.ParseBatch(body, &b, 1000); err != nil {
		ti.t.Errorf("parse: %v", err)
		http.Error(w, err.Error(), 400)
		return
	}
	ti.mu.Lock()
	for _, it := range b.Items {
		if it.Err != nil {
			ti.t.Errorf("event %s: %v", it.Event.ID, it.Err)
			continue
		}
		e := it.Event
		if e.Type.ServerOnly() && !server {
			ti.t.Errorf("server-only %s sent with the client key", e.Type)
		}
		et := e.TS
		if !server {
			switch d := received - b.SentAt; {
			case b.HasClockOffset:
				et = e.TS + b.ClockOffsetMs
			case b.HasSentAt && (d >= 1000 || d <= -1000):
				et = e.TS + d
			}
		}
		if a := ti.arrivals[e.ID]; a != nil {
			a.attempts++
			continue
		}
		ti.arrivals[e.ID] = &arrival{eventTime: et, server: server, hasOffset: b.HasClockOffset, offset: b.ClockOffsetMs,
			edge: r.Header.Get("X-Edge-Country"), xff: r.Header.Get("X-Forwarded-For"), deviceID: e.DeviceID, attempts: 1}
	}
	ti.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"accepted":%d,"rejected":[],"server_time":%d}`, len(b.Items), time.Now().UnixMilli())
}

func newTestIngest(t *testing.T) (*testIngest, *httptest.Server) {
	ti := &testIngest{t: t, arrivals: map[string]*arrival{}}
	srv := httptest.NewServer(ti)
	t.Cleanup(srv.Close)
	return ti, srv
}

// tee sends through an HTTPSender and keeps a copy of each batch.
type tee struct {
	s  Sender
	cs captureSender

	mu       sync.Mutex
	prepared map[uint64][]event.Event // seq → events, kept at Prepare
	emptied  int                      // prepared batches sent without their events
}

// Send captures b, with the events it had when its body was prepared
// (Run lets them go once the body is built).
func (t *tee) Send(ctx context.Context, b *Batch) (SendResult, error) {
	cp := *b
	if b.prepared != nil {
		t.mu.Lock()
		cp.Events = t.prepared[b.Seq]
		if len(b.Events) == 0 {
			t.emptied++
		}
		t.mu.Unlock()
	}
	t.cs.Send(ctx, &cp)
	return t.s.Send(ctx, b)
}

func (t *tee) Prepare(b *Batch) {
	t.s.(Preparer).Prepare(b)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.prepared == nil {
		t.prepared = map[uint64][]event.Event{}
	}
	if _, dup := t.prepared[b.Seq]; dup {
		panic(fmt.Sprintf("batch seq %d prepared twice", b.Seq))
	}
	t.prepared[b.Seq] = slices.Clone(b.Events)
}

// sendHTTP runs cfg through an HTTPSender (teed) to a test ingest and
// checks that every event of cfg.Count arrived, without send errors.
func sendHTTP(t *testing.T, cfg Config) (*testIngest, *tee, *Truth) {
	t.Helper()
	ti, srv := newTestIngest(t)
	out := &tee{s: NewHTTPSender(srv.URL, "ck", "sk")}
	tr, err := Run(context.Background(), cfg, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Run.SendErrors != 0 || tr.Run.Events != cfg.Count || len(ti.arrivals) != cfg.Count {
		t.Fatalf("send errors %d, truth %d events, ingest got %d, want %d", tr.Run.SendErrors, tr.Run.Events, len(ti.arrivals), cfg.Count)
	}
	return ti, out, tr
}

func TestHTTPSenderRun(t *testing.T) {
	cfg := testConfig(20000)
	cfg.Origin = time.Now().Add(-40 * time.Minute)
	cfg.Concurrency = 4
	ti, out, _ := sendHTTP(t, cfg)
	withOffset, slow := 0, 0
	for _, s := range out.cs.sorted() {
		b := &s.b
		for i := range b.Events {
			e := &b.Events[i]
			a := ti.arrivals[e.ID]
			if a == nil || a.attempts != 1 {
				t.Fatalf("event %s: arrival %+v", e.ID, a)
			}
			if a.server != b.Server || a.deviceID != b.DeviceID {
				t.Fatalf("event %s: scope server=%v device %q, batch server=%v device %q", e.ID, a.server, a.deviceID, b.Server, b.DeviceID)
			}
			if b.Server {
				if a.xff != "" || a.edge != "" {
					t.Fatalf("server batch with edge headers %q %q", a.xff, a.edge)
				}
			} else if a.edge != b.EdgeCountry || !strings.HasPrefix(a.xff, "100.") {
				t.Fatalf("client batch edge %q xff %q, want %q and 100.x", a.edge, a.xff, b.EdgeCountry)
			}
			if a.hasOffset {
				withOffset++
				if b.Clock != ClockNTP || a.offset != -b.Skew {
					t.Fatalf("device %s (%v, skew %d) sent clock_offset_ms %d", b.DeviceID, b.Clock, b.Skew, a.offset)
				}
			}
			// The derived event time is the true time, or a little after it
			// (the delivery delay) for skewed devices without an offset;
			// never outside the true time's second (the model's grid). The
			// delay is under 250 ms on a quiet machine; more is counted.
			d := a.eventTime - b.TrueTime(i)
			exact := b.Server || b.Clock == ClockSynced || a.hasOffset
			if exact && d != 0 || d < 0 || d >= 1000 {
				t.Fatalf("event %s (%v, skew %d, offset %v): event time off by %d ms", e.ID, b.Clock, b.Skew, a.hasOffset, d)
			}
			if d >= 250 {
				slow++
			}
		}
	}
	if withOffset == 0 {
		t.Fatal("no NTP device ever sent clock_offset_ms")
	}
	if slow > 0 {
		t.Logf("%d events derived 250 ms or more after their true time (delivery delay on a loaded machine)", slow)
	}
}

func TestHTTPSenderRetries(t *testing.T) {
	ti, srv := newTestIngest(t)
	status := func(code int, retryAfter string) func(http.ResponseWriter) bool {
		return func(w http.ResponseWriter) bool {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"error":"status %d","server_time":%d}`, code, time.Now().UnixMilli())
			return true
		}
	}
	ti.script = []func(http.ResponseWriter) bool{status(429, "0"), status(503, "1"), status(500, ""), status(502, "")}
	s := NewHTTPSender(srv.URL, "ck", "sk", WithRetries(5, time.Millisecond, 10*time.Millisecond))
	g := newGen(testConfig(1), testOrigin.UnixMilli())
	b := g.next()
	start := time.Now()
	res, err := s.Send(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if res.Retries != 4 || res.Accepted != len(b.Events) {
		t.Fatalf("result %+v, want 4 retries and %d accepted", res, len(b.Events))
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Fatalf("Retry-After: 1 not honoured: done after %v", el)
	}
	for _, e := range b.Events {
		if a := ti.arrivals[e.ID]; a == nil || a.attempts != 1 {
			t.Fatalf("event %s: %+v", e.ID, a)
		}
	}
	// Final answers are not retried.
	for _, code := range []int{400, 401, 413, 415} {
		ti.script = []func(http.ResponseWriter) bool{status(code, "")}
		res, err := s.Send(context.Background(), b)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != code || res.Retries != 0 || len(ti.script) != 0 {
			t.Fatalf("%d: result %+v, error %v", code, res, err)
		}
	}
	// Retries run out.
	ti.script = slices.Repeat([]func(http.ResponseWriter) bool{status(500, "")}, 10)
	if _, err := s.Send(context.Background(), b); err == nil || !strings.Contains(err.Error(), "after 6 attempts") {
		t.Fatalf("exhausted retries: %v", err)
	}
	// Rejected events are counted.
	ti.script = []func(http.ResponseWriter) bool{func(w http.ResponseWriter) bool {
		json.NewEncoder(w).Encode(map[string]any{"accepted": 0, "server_time": time.Now().UnixMilli(),
			"rejected": []map[string]any{{"index": 0, "event_id": "x", "error": "too old"}, {"index": 1, "event_id": "y", "error": "too old"}}})
		return true
	}}
	if res, err := s.Send(context.Background(), b); err != nil || res.Rejected != 2 {
		t.Fatalf("rejections: %+v %v", res, err)
	}
}

func TestRunStopsOnBadKey(t *testing.T) {
	_, srv := newTestIngest(t)
	cfg := testConfig(50000)
	cfg.Origin = time.Now().Add(-40 * time.Minute)
	tr, err := Run(context.Background(), cfg, NewHTTPSender(srv.URL, "wrong", "sk"), nil)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 401 {
		t.Fatalf("error %v, want the 401", err)
	}
	if tr == nil || tr.Run.SendErrors == 0 || tr.Run.Events >= 50000 {
		t.Fatalf("truth %+v", tr.Run)
	}
}

// TestHTTPSenderEdge runs the edge-node mode: requests carry many devices'
// events, each request one edge country and one clock correction
// (clock_offset_ms = −skew), so every client event's derived event time is
// exactly its true time; the events and the expected values are those of
// the same seed sent device by device. With EdgeCorrect the edge corrects
// skewed devices' ts itself (device time in props.device_ts) and merges
// every client batch of a country.
func TestHTTPSenderEdge(t *testing.T) {
	cfg := testConfig(20000)
	cfg.Origin = time.Now().Add(-40 * time.Minute)
	cfg.Concurrency = 4
	cfg.Rate = 400
	var plainOut captureSender
	want, err := Run(context.Background(), cfg, &plainOut, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain := map[string]event.Event{}
	for _, s := range plainOut.batches {
		for _, e := range s.b.Events {
			plain[e.ID] = e
		}
	}
	// pregenerate: every request built before the first send, the edge
	// requests' bodies too (HTTPSender.Prepare).
	for _, mode := range []struct{ correct, pregenerate bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		correct := mode.correct
		t.Run(fmt.Sprintf("correct=%v,pregenerate=%v", correct, mode.pregenerate), func(t *testing.T) {
			cfg := cfg
			cfg.EdgeEvents = 300
			cfg.EdgeCorrect = correct
			cfg.Pregenerate = mode.pregenerate
			ti, out, tr := sendHTTP(t, cfg)
			got, _ := json.Marshal(tr.Expected)
			exp, _ := json.Marshal(want.Expected)
			if string(got) != string(exp) {
				t.Fatal("the edge mode's expected values differ from the same seed's sent device by device")
			}
			// Skewed devices (a quarter of them) rarely share their skew, so
			// without correction their batches mostly travel alone; the rest
			// are merged.
			if f := map[bool]int{false: 2, true: 5}[correct]; len(plainOut.batches) < f*tr.Run.Batches {
				t.Fatalf("%d requests through edge nodes for %d device batches: not merged", tr.Run.Batches, len(plainOut.batches))
			}
			multi, fixed, prepared := 0, 0, 0
			for _, s := range out.cs.sorted() {
				b := &s.b
				if b.prepared != nil {
					prepared++
				}
				if len(b.Events) > cfg.EdgeEvents && b.Devices > 1 {
					t.Fatalf("request of %d events from %d batches, limit %d", len(b.Events), b.Devices, cfg.EdgeEvents)
				}
				devices := map[string]bool{}
				for i := range b.Events {
					e := &b.Events[i]
					devices[e.DeviceID] = true
					a := ti.arrivals[e.ID]
					if a == nil || a.attempts != 1 {
						t.Fatalf("event %s: arrival %+v", e.ID, a)
					}
					if a.server != b.Server || a.deviceID != e.DeviceID {
						t.Fatalf("event %s: scope server=%v device %q", e.ID, a.server, a.deviceID)
					}
					if b.Server {
						if a.xff != "" || a.edge != "" || e.DeviceID != "" {
							t.Fatalf("server batch with edge headers %q %q or device %q", a.xff, a.edge, e.DeviceID)
						}
					} else if b.Clock != ClockEdge || a.edge != b.EdgeCountry || a.xff != edgeIP(b.EdgeCountry) || !a.hasOffset || a.offset != -b.Skew {
						t.Fatalf("client request (%v, skew %d): edge %q xff %q offset %v %d, want %q, %s, %d",
							b.Clock, b.Skew, a.edge, a.xff, a.hasOffset, a.offset, b.EdgeCountry, edgeIP(b.EdgeCountry), -b.Skew)
					}
					if d := a.eventTime - b.TrueTime(i); d != 0 {
						t.Fatalf("event %s (skew %d): event time off by %d ms", e.ID, b.Skew, d)
					}
					p := plain[e.ID]
					if p.TS != e.TS {
						fixed++
						wantExtra := `{"device_ts":"` + time.UnixMilli(p.TS).UTC().Format(event.TimeLayout) + `"}`
						if !correct || b.Skew != 0 || e.Extra != wantExtra || a.eventTime != e.TS {
							t.Fatalf("event %s: ts %d props %s, device ts %d (correct %v)", e.ID, e.TS, e.Extra, p.TS, correct)
						}
					}
				}
				if len(devices) > 1 {
					multi++
				}
			}
			if multi == 0 || correct != (fixed > 0) {
				t.Fatalf("%d requests with several devices, %d events corrected at the edge", multi, fixed)
			}
			if mode.pregenerate != (prepared == tr.Run.Batches) {
				t.Fatalf("%d of %d requests prepared before their send (pregenerate %v)", prepared, tr.Run.Batches, mode.pregenerate)
			}
			if mode.pregenerate && out.emptied != prepared {
				t.Fatalf("%d of %d prepared requests held their events until sent", prepared-out.emptied, prepared)
			}
			t.Logf("%d events: %d device batches, %d requests through edge nodes (%d with several devices, %d events corrected at the edge)",
				tr.Run.Events, len(plainOut.batches), tr.Run.Batches, multi, fixed)
		})
	}
}

// TestHTTPSenderPregenerate: a pregenerated run sent device by device
// records its server batches in the truth as they are built (their
// bodies are prepared, their events let go) and the devices' own batches
// as they are sent; its truth is that of the same run not pregenerated.
func TestHTTPSenderPregenerate(t *testing.T) {
	cfg := testConfig(20000)
	cfg.Origin = time.Now().Add(-40 * time.Minute)
	cfg.Concurrency = 4
	want, _ := run(t, cfg)
	cfg.Pregenerate = true
	_, out, tr := sendHTTP(t, cfg)
	if out.emptied == 0 || out.emptied == tr.Run.Batches {
		t.Fatalf("%d of %d batches sent without their events: want the server batches only", out.emptied, tr.Run.Batches)
	}
	for _, v := range [][2]any{{tr.Expected, want.Expected}, {tr.Planted, want.Planted}, {tr.Run.End, want.Run.End}, {tr.Run.Batches, want.Run.Batches}} {
		got, _ := json.Marshal(v[0])
		exp, _ := json.Marshal(v[1])
		if string(got) != string(exp) {
			t.Fatalf("the pregenerated run's truth differs from the same run's not pregenerated:\n%.300s\n%.300s", got, exp)
		}
	}
}
