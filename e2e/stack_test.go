// Package e2e holds the end-to-end tests of the whole pipeline: the load
// generator → HTTP ingest → Kafka (embedded kfake broker) → the ClickHouse
// sink and the window processors → a real clickhouse-server, with every
// result read back from ClickHouse the way an analyst would
// (docs/analysts.md, docs/processors.md) and compared with the load
// generator's ground truth (docs/loadgen.md).
package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/questline/questline/api"
	"github.com/questline/questline/ingest"
	"github.com/questline/questline/internal/chtest"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
	"github.com/questline/questline/loadgen"
	"github.com/questline/questline/processors"
	"github.com/questline/questline/processors/pipeline"
	"github.com/questline/questline/processors/window"
	ch "github.com/questline/questline/sinks/clickhouse"
)

var chs chtest.Shared

func TestMain(m *testing.M) { os.Exit(chs.Run(m)) }

const (
	clientKey = "client-key-e2e-0001"
	serverKey = "server-key-e2e-0001"
	sinkGroup = "e2e-sink"
	procGroup = "e2e-processors"
)

// clockScale is how much faster than the wall clock the processors' clock
// runs once the load generator is done (stack.quiet). The processors' wall
// clock only decides when an idle partition gets a watermark record and
// where it puts the watermark (wall clock − out-of-orderness); running it
// 60× lets the last windows of a run that ended minutes ago in event time
// close within seconds, as they would after minutes of quiet in
// production.
const clockScale = 60

// clock is the processors' wall clock: real time until fast is called,
// then clockScale times faster.
type clock struct {
	mu   sync.Mutex
	from time.Time // when it went fast; zero before
	base time.Time // its reading then
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.from.IsZero() {
		return time.Now()
	}
	return c.base.Add(time.Since(c.from) * clockScale)
}

func (c *clock) fast() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.from, c.base = time.Now(), time.Now()
}

// stack is the whole pipeline on one machine: broker, ClickHouse database,
// ingest and the quest/drop API behind an HTTP test server, the sink and
// n processor instances.
type stack struct {
	t       *testing.T
	srv     *chtest.Server
	db      string
	brokers []string
	url     string
	errs    chan error
	clock   *clock
	// reg holds the metrics of every role (of the processors only with
	// one instance: two would register the same names); names records
	// every name registered on it, series or not.
	reg   *prometheus.Registry
	names *namesRegisterer
}

// newStack starts every role; they stop at t's cleanup.
func newStack(t *testing.T, w loadgen.Windows, processes int, limits ...ingest.LimiterOpt) *stack {
	t.Helper()
	br := kafkatest.New(t, kafkatest.Partitions(4), kafkatest.Topics(append(append([]kafka.Topic{}, processors.Topics...), api.Topics...)...))
	s := &stack{t: t, srv: chs.Server(t), brokers: br.Addrs(), errs: make(chan error, 8), clock: &clock{}, reg: prometheus.NewRegistry()}
	s.names = &namesRegisterer{Registerer: s.reg, names: map[string]bool{}}
	s.db = s.srv.NewDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	if err := ch.Migrate(ctx, s.srv.DSN(s.db), nil); err != nil {
		t.Fatal(err)
	}

	// Ingest: the real handler, trusting loopback as the edge proxy (the
	// load generator sends the edge country header).
	cl, err := kafka.NewClient(s.brokers, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	keys, err := ingest.NewKeyring([]string{serverKey}, []string{clientKey})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := ingest.NewLimiter(append([]ingest.LimiterOpt{ingest.KeyRate(1e7, 1e7)}, limits...)...)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ingest.New(cl, ingest.Keys(keys), ingest.RateLimits(lim), ingest.Registerer(s.names),
		ingest.TrustedProxies(netip.MustParsePrefix("127.0.0.0/8")))
	if err != nil {
		t.Fatal(err)
	}
	// The quest/drop API beside it, as questline run mounts it.
	ah, err := api.New(cl, s.brokers, api.Keys(keys), api.RateLimits(lim), api.Registerer(s.names),
		api.Secret([]byte("e2e-api-secret-0123456789")), api.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	ah.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	s.url = hs.URL

	// The sink: events and rejected_events.
	sink, err := ch.NewSink(ctx, ch.SinkConfig{Brokers: s.brokers, DSN: s.srv.DSN(s.db), Group: sinkGroup, BatchWait: 200 * time.Millisecond},
		s.names, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	s.goRun(ctx, &wg, "sink", sink.Run)
	s.goRun(ctx, &wg, "api", ah.Run)
	// As /readyz does: the API answers claims and drops once it has read
	// the claims log (on a new log, once its layout record is folded).
	for deadline := time.Now().Add(30 * time.Second); ah.Ready(ctx) != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the API was not ready within 30 s")
		}
	}

	// The processors, configured with the load generator's windows.
	pc := pipeline.DefaultConfig()
	pc.Quest.Window = window.Spec{Size: w.QuestSize, Slide: w.QuestSlide, Lateness: w.AllowedLateness}
	pc.Latency.Window = pc.Quest.Window
	pc.Latency.Attribution = w.AttributionWindow
	pc.Yield.Window = window.Spec{Size: w.YieldSize, Slide: w.YieldSlide, Lateness: w.AllowedLateness}
	pc.Lift.Attribution, pc.Lift.Lateness = w.AttributionWindow, w.AllowedLateness
	cfg := processors.Config{
		Brokers: s.brokers, ClickHouseDSN: s.srv.DSN(s.db), SnapshotDir: t.TempDir(), Group: procGroup,
		Pipeline: &pc, FlushInterval: 200 * time.Millisecond, SnapshotInterval: 2 * time.Second,
		// 30 s without records is idle while the load runs (the idle
		// path is not what this test is about), half a second once the
		// clock runs fast: the watermark records then finalize every
		// window, the final lift rows and the clean pass.
		IdleTimeout: 30 * time.Second, Now: s.clock.Now,
	}
	var reg prometheus.Registerer
	if processes == 1 {
		reg = s.names
	}
	for range processes {
		s.goRun(ctx, &wg, "processors", func(ctx context.Context) error { return processors.Run(ctx, cfg, reg, nil) })
	}
	return s
}

func (s *stack) goRun(ctx context.Context, wg *sync.WaitGroup, name string, run func(context.Context) error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.errs <- errors.New(name + ": " + err.Error())
		}
	}()
}

// query runs q (with {db} replaced by the test's database) and returns its
// TabSeparated rows split into fields.
func (s *stack) query(q string) [][]string {
	s.t.Helper()
	out, err := s.srv.Query(context.Background(), strings.ReplaceAll(q, "{db}", s.db))
	if err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

// committedAtEnd reports whether group has committed the end offset of
// every partition of questline.events.
func (s *stack) committedAtEnd(group string) bool {
	return kafkatest.CommittedAtEnd(s.t, s.brokers, group, kafka.TopicEvents)
}

// mergeCaughtUp reports whether the processors' merge stage has written the
// rows of every partial produced so far (a merge stage slowed by a loaded
// machine must not pass for settled tables).
func (s *stack) mergeCaughtUp() bool {
	return kafkatest.CommittedAtEnd(s.t, s.brokers, procGroup+"-merge", processors.TopicPartials)
}

// waitFor polls cond every 500 ms until it holds, a role fails, or the
// deadline passes (then it fails t with what, and returns false).
func (s *stack) waitFor(deadline time.Time, what string, cond func() bool) bool {
	s.t.Helper()
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Errorf("timed out waiting for %s", what)
			return false
		}
		select {
		case err := <-s.errs:
			s.t.Fatal(err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	return true
}

// capture records the true time of every event the load generator sends.
type capture struct {
	s  loadgen.Sender
	mu sync.Mutex
	tt map[string]int64
}

func (c *capture) Send(ctx context.Context, b *loadgen.Batch) (loadgen.SendResult, error) {
	c.mu.Lock()
	for i := range b.Events {
		c.tt[b.Events[i].ID] = b.TrueTime(i)
	}
	c.mu.Unlock()
	return c.s.Send(ctx, b)
}
