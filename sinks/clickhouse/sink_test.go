package clickhouse

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/internal/chtest"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

// producer returns a Kafka client producing to b.
func producer(t testing.TB, b *kafkatest.Broker) *kgo.Client {
	t.Helper()
	cl, err := kafka.NewClient(b.Addrs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func eventRecords(evs []event.Event) []*kgo.Record {
	recs := make([]*kgo.Record, len(evs))
	for i := range evs {
		recs[i] = &kgo.Record{Topic: kafka.TopicEvents, Key: []byte(evs[i].Key()), Value: event.AppendBinary(nil, &evs[i])}
	}
	return recs
}

func testDeadLetters(prefix string, n int) []event.DeadLetter {
	out := make([]event.DeadLetter, n)
	now := time.Now().UnixMilli()
	for i := range out {
		out[i] = event.DeadLetter{
			Reason: "props.quest_id: required for quest_started", Kind: "schema",
			EventID: prefix + "-" + strconv.Itoa(i), Index: i % 5,
			Raw:        `{"event_id":"` + prefix + "-" + strconv.Itoa(i) + `","type":"quest_started"}`,
			ReceivedAt: now - int64(i), Source: "client", KeyID: "k2",
		}
		if i%3 == 0 {
			out[i].Kind, out[i].Reason = "too_old", "event_time: older than 72h0m0s"
		}
	}
	return out
}

func deadLetterRecords(ds []event.DeadLetter) []*kgo.Record {
	recs := make([]*kgo.Record, len(ds))
	for i := range ds {
		recs[i] = &kgo.Record{Topic: kafka.TopicDLQ, Value: ds[i].Marshal()}
	}
	return recs
}

func produce(t *testing.T, cl *kgo.Client, recs []*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// startSink runs a sink until the returned stop is called or the test ends.
func startSink(t *testing.T, cfg SinkConfig, reg prometheus.Registerer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := NewSink(ctx, cfg, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("sink Run: %v", err)
			}
			s.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls q until it returns want or the timeout passes.
func waitFor(t *testing.T, srv *chtest.Server, q, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got string
	for time.Now().Before(deadline) {
		out, err := srv.Query(context.Background(), q)
		if got = strings.TrimSpace(out); err == nil && got == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s = %q after %s, want %q", q, got, timeout, want)
}

func TestSinkWritesEveryEventAndRejectionOnce(t *testing.T) {
	srv := chs.Server(t)
	db, _ := migrated(t, srv)
	b := kafkatest.New(t)
	cl := producer(t, b)
	evs := testEvents("ok", 3000)
	dls := testDeadLetters("bad", 60)
	produce(t, cl, eventRecords(evs))
	produce(t, cl, deadLetterRecords(dls))
	// A processor's watermark record among the events is neither an event
	// nor a rejection.
	manual, err := kafka.NewClient(b.Addrs(), nil, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer manual.Close()
	produce(t, manual, []*kgo.Record{kafka.WatermarkRecord(0, evs[0].EventTime)})
	// Nor is a processor's copy of a catalog event (its original is).
	cp := event.Event{ID: "copy-only", Type: event.DropStarted, DropID: "d1", CreatorID: "c1", EventTime: evs[0].EventTime, TS: evs[0].EventTime, ReceivedAt: evs[0].EventTime, Source: event.SourceServer}
	produce(t, manual, kafka.MissingCopies(&kgo.Record{Partition: 0, Key: []byte("d1"), Value: event.AppendBinary(nil, &cp)}, 2))

	// Two sinks in one group share the partitions.
	cfg := SinkConfig{Brokers: b.Addrs(), DSN: srv.DSN(db), BatchRows: 500, BatchWait: 100 * time.Millisecond}
	reg1, reg2 := prometheus.NewRegistry(), prometheus.NewRegistry()
	startSink(t, cfg, reg1)
	startSink(t, cfg, reg2)

	waitFor(t, srv, "SELECT count() FROM "+db+".events FINAL", "3000", 60*time.Second)
	waitFor(t, srv, "SELECT count() FROM "+db+".rejected_events FINAL", "60", 30*time.Second)
	if got := query(t, srv, "SELECT uniqExact(event_id), countIf(type = 'conversion'), sum(amount_micros) FROM "+db+".events FINAL"); got != "3000\t750\t"+sumAmounts(evs) {
		t.Fatalf("events summary %q", got)
	}
	// The documented per-minute query sums to the total.
	if got := query(t, srv, "SELECT sum(c) FROM (SELECT toStartOfMinute(event_time) AS minute, type, count() AS c FROM "+db+".events FINAL GROUP BY minute, type)"); got != "3000" {
		t.Fatalf("per-minute query sums to %s, want 3000", got)
	}
	if got := query(t, srv, "SELECT kind, count() FROM "+db+".rejected_events FINAL GROUP BY kind ORDER BY kind"); got != "schema\t40\ntoo_old\t20" {
		t.Fatalf("rejected by kind: %q", got)
	}
	d := dls[7]
	got := query(t, srv, "SELECT reason, kind, event_id, batch_index, raw, source, key_id, received_at_ms FROM "+db+".rejected_events FINAL WHERE event_id = '"+d.EventID+"'")
	want := strings.Join([]string{d.Reason, d.Kind, d.EventID, itoa(d.Index), d.Raw, d.Source, d.KeyID, itoa(int(d.ReceivedAt))}, "\t")
	if got != want {
		t.Fatalf("rejected row:\n got %q\nwant %q", got, want)
	}
	consumed := metricSum(t, reg1, "questline_sink_records_total", "topic", kafka.TopicEvents) +
		metricSum(t, reg2, "questline_sink_records_total", "topic", kafka.TopicEvents)
	if consumed < 3000 {
		t.Fatalf("sinks report %v events records consumed, want >= 3000", consumed)
	}
	if written := metricSum(t, reg1, "questline_clickhouse_rows_written_total", "table", "events") +
		metricSum(t, reg2, "questline_clickhouse_rows_written_total", "table", "events"); written < 3000 {
		t.Fatalf("writers report %v rows written, want >= 3000", written)
	}
}

// metricSum sums the series of name in reg whose label has value.
func metricSum(t testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					switch {
					case m.Counter != nil:
						sum += m.Counter.GetValue()
					case m.Gauge != nil:
						sum += m.Gauge.GetValue()
					}
				}
			}
		}
	}
	return sum
}

func sumAmounts(evs []event.Event) string {
	var s int64
	for i := range evs {
		if evs[i].Has&event.HasAmountMicros != 0 {
			s += evs[i].AmountMicros
		}
	}
	return strconv.FormatInt(s, 10)
}

// TestNewSinkRefusesABadDSN: a DSN that cannot parse is an error at once,
// not a wait for a server logged as "not reachable".
func TestNewSinkRefusesABadDSN(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, dsn := range []string{"clickhouse://127.0.0.1:9000/questline-prod", "clickhouse://[::1:9000"} {
		_, err := NewSink(ctx, SinkConfig{Brokers: []string{"127.0.0.1:1"}, DSN: dsn}, nil, nil)
		if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "DSN") {
			t.Errorf("%s: %v (context: %v)", dsn, err, ctx.Err())
		}
	}
}
