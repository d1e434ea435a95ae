package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/ingest"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

const (
	serverKey = "srv-key"
	clientKey = "cli-key"
)

var testSecret = []byte("a secret shared by all instances")

func newBroker(t testing.TB) []string {
	t.Helper()
	return kafkatest.New(t, kafkatest.Partitions(4), kafkatest.Topics(Topics...)).Addrs()
}

func keyring(t testing.TB) *ingest.Keyring {
	t.Helper()
	k, err := ingest.NewKeyring([]string{serverKey}, []string{clientKey})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// generous returns a limiter that never limits the tests' traffic.
func generous(t testing.TB) *ingest.Limiter {
	t.Helper()
	l, err := ingest.NewLimiter(ingest.IPRate(1e6, 1e6), ingest.KeyRate(1e6, 1e6), ingest.DeviceRate(1e6, 1e6), ingest.NewDeviceBurst(1e6))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// instance is one API instance: its own Kafka clients and HTTP server.
type instance struct {
	h      *Handler
	cl     *kgo.Client
	srv    *httptest.Server
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startInstance starts an API instance on brokers and waits until it is
// ready (caught up with questline.claims).
func startInstance(t testing.TB, brokers []string, opts ...Option) *instance {
	t.Helper()
	cl, err := kafka.NewClient(brokers, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := []Option{Keys(keyring(t)), RateLimits(generous(t)), Secret(testSecret),
		Logger(slog.New(slog.NewTextHandler(io.Discard, nil)))}
	h, err := New(cl, brokers, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{h: h, cl: cl, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- h.Run(ctx) }()
	in.srv = httptest.NewServer(h)
	t.Cleanup(in.stop)
	deadline := time.Now().Add(30 * time.Second)
	for h.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("instance not ready after 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return in
}

// stop ends the instance abruptly: its producer is closed under any
// requests in flight, its readers stop. Safe to call twice.
func (in *instance) stop() {
	in.once.Do(func() {
		in.cancel()
		in.cl.Close()
		in.srv.Close()
		<-in.done
	})
}

type answer struct {
	code  int
	body  map[string]any
	retry string
}

func (a answer) str(k string) string { s, _ := a.body[k].(string); return s }

// call sends a JSON request with key (none when "") and returns the answer.
func call(t testing.TB, base, method, path, key string, body any, hdr ...string) answer {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		buf, _ := json.Marshal(b)
		rd = bytes.NewReader(buf)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{code: -1, body: map[string]any{"error": err.Error()}}
	}
	defer resp.Body.Close()
	a := answer{code: resp.StatusCode, body: map[string]any{}, retry: resp.Header.Get("Retry-After")}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Errorf("%s %s: answer is not a JSON object: %q", method, path, raw)
	}
	return a
}

// eventRecords returns every record of questline.events (copies included).
func eventRecords(t *testing.T, brokers []string) []*kgo.Record {
	t.Helper()
	return kafkatest.Records(t, brokers, kafka.TopicEvents)
}

func decodeEvent(t *testing.T, r *kgo.Record) event.Event {
	t.Helper()
	var e event.Event
	if err := event.DecodeBinary(r.Value, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func scheduleLive(t testing.TB, base, drop string, inventory int) {
	t.Helper()
	now := time.Now().UTC()
	a := call(t, base, "POST", "/v1/drops", serverKey, map[string]any{
		"drop_id": drop, "creator_id": "cr1", "inventory": inventory,
		"starts_at": now.Add(-time.Minute).Format(time.RFC3339), "ends_at": now.Add(time.Hour).Format(time.RFC3339),
	})
	if a.code != 200 {
		t.Fatalf("schedule %s: %d %v", drop, a.code, a.body)
	}
}
