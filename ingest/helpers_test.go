package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/ingest"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

const (
	clientKey = "client-secret-key-1"
	serverKey = "server-secret-key-1"
)

// env is an ingest handler on a real HTTP server producing to a real
// (kfake) broker.
type env struct {
	t      *testing.T
	broker *kafkatest.Broker
	cl     *kgo.Client
	h      *ingest.Handler
	srv    *httptest.Server
	reg    *prometheus.Registry
}

func newEnv(t *testing.T, opts ...ingest.Option) *env {
	t.Helper()
	b := kafkatest.New(t)
	cl, err := kafka.NewClient(b.Addrs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	keys, err := ingest.NewKeyring([]string{serverKey}, []string{clientKey})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	base := []ingest.Option{
		ingest.Keys(keys),
		ingest.Registerer(reg),
		ingest.TrustedProxies(netip.MustParsePrefix("127.0.0.0/8")),
	}
	h, err := ingest.New(cl, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.RegisterAlone(mux) // as questline ingest serves it
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, broker: b, cl: cl, h: h, srv: srv, reg: reg}
}

type answer struct {
	Accepted int `json:"accepted"`
	Rejected []struct {
		Index   int    `json:"index"`
		EventID string `json:"event_id"`
		Error   string `json:"error"`
	} `json:"rejected"`
	Error      string `json:"error"`
	ServerTime int64  `json:"server_time"`
}

type reply struct {
	status int
	header http.Header
	body   answer
}

// post sends body with the client key as JSON; hdr overrides headers
// ("" deletes one).
func (e *env) post(body []byte, hdr map[string]string) reply {
	e.t.Helper()
	return e.postReader(bytes.NewReader(body), hdr)
}

// postReader is post with a body of unknown length (sent chunked) unless
// it is a *bytes.Reader.
func (e *env) postReader(body io.Reader, hdr map[string]string) reply {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+ingest.Path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+clientKey)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	before := time.Now().UnixMilli()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		e.t.Fatalf("answer %d is not JSON: %v: %s", resp.StatusCode, err, raw)
	}
	if a.ServerTime < before-1000 || a.ServerTime > time.Now().UnixMilli()+1000 {
		e.t.Fatalf("server_time %d is not about now (%d): %s", a.ServerTime, before, raw)
	}
	return reply{resp.StatusCode, resp.Header, a}
}

// readTopic returns every record of topic up to its current end.
func readTopic(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm, err := kafka.NewClient(brokers, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			total += o.Offset
		}
	})
	if total == 0 {
		return nil
	}
	cl, err := kafka.NewClient(brokers, nil, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for int64(len(recs)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(recs), total, topic)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < want[r.Partition] {
				recs = append(recs, r)
			}
		})
	}
	return recs
}

// events decodes the records of questline.events by event_id, without
// the copies of catalog events (kafka.IsCatalogCopy).
func (e *env) events() map[string][]event.Event {
	e.t.Helper()
	out := map[string][]event.Event{}
	for _, r := range readTopic(e.t, e.broker.Addrs(), kafka.TopicEvents) {
		if kafka.IsCatalogCopy(r) {
			continue
		}
		var ev event.Event
		if err := event.DecodeBinary(r.Value, &ev); err != nil {
			e.t.Fatalf("record at %d/%d: %v", r.Partition, r.Offset, err)
		}
		if string(r.Key) != ev.Key() {
			e.t.Fatalf("record key %q, want %q", r.Key, ev.Key())
		}
		out[ev.ID] = append(out[ev.ID], ev)
	}
	return out
}

// deadLetters decodes questline.events.dlq.
func (e *env) deadLetters() []event.DeadLetter {
	e.t.Helper()
	var out []event.DeadLetter
	for _, r := range readTopic(e.t, e.broker.Addrs(), kafka.TopicDLQ) {
		d, err := event.UnmarshalDeadLetter(r.Value)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func (e *env) counter(name string, labels ...string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// ev returns a valid quest_started event JSON with ts at t.
func ev(id string, t time.Time) string {
	return fmt.Sprintf(`{"event_id":%q,"type":"quest_started","ts":%q,"user_id":"u-%s","device_id":"dev-1","props":{"quest_id":"q1"}}`,
		id, t.UTC().Format(event.TimeLayout), id)
}

func batch(events ...string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"events":[`)
	for i, e := range events {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(e)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
