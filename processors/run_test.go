package processors

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/internal/chtest"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
	"github.com/questline/questline/processors/internal/streamgen"
	"github.com/questline/questline/processors/pipeline"
	ch "github.com/questline/questline/sinks/clickhouse"
)

var chs chtest.Shared

func TestMain(m *testing.M) { os.Exit(chs.Run(m)) }

const (
	t0         = int64(1767225600000)
	partitions = 4
)

// fixture is a broker holding a stream and a ClickHouse server.
type fixture struct {
	brokers []string
	srv     *chtest.Server
	stream  []*kgo.Record // partitioned by key
	ends    []*kgo.Record // placed in their partitions, after the stream
}

func newFixture(t *testing.T, events int, endMarkers bool) *fixture {
	produce := func(topic string, e *event.Event) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte(e.Key()), Value: event.AppendBinary(nil, e)}
	}
	var recs []*kgo.Record
	for _, e := range []event.Event{
		{ID: "cat1", Type: event.DropStarted, DropID: "drop0", CreatorID: "cr0", EventTime: t0 + 5*60_000},
		{ID: "cat2", Type: event.DropEnded, DropID: "drop0", EventTime: t0 + 20*60_000},
		{ID: "cat3", Type: event.QuestDefined, QuestID: "q1", MinDurationMs: 100_000, EventTime: t0},
	} {
		recs = append(recs, produce(TopicCatalog, &e), produce(kafka.TopicEvents, &e))
	}
	farm := deviceFarm()
	streamgen.Each(streamgen.Config{Seed: 21, Events: events, Users: 60 + events/100, Gap: 400, Disorder: 20_000}, func(e *event.Event) {
		for len(farm) > 0 && farm[0].ReceivedAt <= e.ReceivedAt {
			recs = append(recs, produce(kafka.TopicEvents, &farm[0]))
			farm = farm[1:]
		}
		recs = append(recs, produce(kafka.TopicEvents, e))
	})
	f := &fixture{srv: chs.Server(t), stream: recs}
	if endMarkers {
		// One event per partition far ahead, so every partition's watermark
		// (and the clean pass) passes every window of the stream.
		for p := range int32(partitions) {
			e := event.Event{ID: fmt.Sprintf("end-%d", p), Type: event.QuestStarted, UserID: fmt.Sprintf("end-%d", p), QuestID: "end", EventTime: t0 + 6*3600_000}
			f.ends = append(f.ends, &kgo.Record{Topic: kafka.TopicEvents, Partition: p, Key: []byte(e.UserID), Value: event.AppendBinary(nil, &e)})
		}
	}
	f.brokers = f.newBroker(t)
	return f
}

// deviceFarm returns the events of four accounts on one device ("farm"),
// one event every 2 s between t0+5 min and t0+7 min in turn, starting and
// completing quest qfarm: each account alone is no bot (7.5 events a
// minute, below the fixture's velocity of 10; 15 events, below
// metronome's 20), the device is (velocity, metronome, shared_device), so
// only the device stage's flags keep them out of the clean scope.
func deviceFarm() []event.Event {
	var out []event.Event
	for i := range 60 {
		tm := t0 + 5*60_000 + int64(i)*2000
		typ, dur := event.QuestStarted, int64(0)
		if i/4%2 == 1 {
			typ, dur = event.QuestCompleted, 300_000
		}
		e := event.Event{ID: fmt.Sprint("farm-", i), Type: typ, UserID: fmt.Sprint("farm", i%4), DeviceID: "farm", QuestID: "qfarm",
			Country: "DE", EdgeCountry: "DE", EventTime: tm, TS: tm, ReceivedAt: tm, Source: event.SourceClient}
		if dur > 0 {
			e.DurationMs, e.Has = dur, event.HasDurationMs
		}
		out = append(out, e)
	}
	return out
}

// checkDeviceFarm: the farm's accounts (deviceFarm) are in the all scope
// and, flagged through their device only, in no clean row.
func checkDeviceFarm(t *testing.T, f *fixture, db string) {
	t.Helper()
	for _, c := range []struct{ what, sql, want string }{
		{"the farm's completions, all scope", "SELECT sum(completions) > 0 FROM %s.quest_completion FINAL WHERE quest_id = 'qfarm' AND scope = 'all'", "1"},
		{"the device's flagged windows", "SELECT count() > 0 FROM %s.bot_signals FINAL WHERE entity_type = 'device' AND entity_id = 'farm' AND flagged = 1", "1"},
		{"the accounts' own flagged windows", "SELECT count() FROM %s.bot_signals FINAL WHERE entity_type = 'user' AND entity_id LIKE 'farm%%' AND flagged = 1", "0"},
		{"the farm's clean rows", "SELECT count() FROM %s.quest_completion FINAL WHERE quest_id = 'qfarm' AND scope = 'clean' AND starts + completions > 0", "0"},
	} {
		got, err := f.query(fmt.Sprintf(c.sql, db))
		if err != nil {
			t.Fatal(err)
		}
		if got = strings.TrimSpace(got); got != c.want {
			t.Errorf("%s: %s, want %s", c.what, got, c.want)
		}
	}
}

// fork returns the fixture with a broker of its own holding the same input,
// so that two runs share no topic (a run's merge stage reading another
// run's partials could hide a wrong partial behind a right one).
func (f *fixture) fork(t *testing.T) *fixture {
	g := *f
	g.brokers = f.newBroker(t)
	return &g
}

// newBroker starts a broker and produces the input into it.
func (f *fixture) newBroker(t *testing.T) []string {
	b := kafkatest.New(t, kafkatest.Partitions(partitions), kafkatest.Topics(Topics...))
	for _, in := range []struct {
		recs []*kgo.Record
		opts []kgo.Opt
	}{{f.stream, nil}, {f.ends, []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}}} {
		cl, err := kafka.NewClient(b.Addrs(), nil, in.opts...)
		if err != nil {
			t.Fatal(err)
		}
		recs := make([]*kgo.Record, len(in.recs))
		for i, r := range in.recs {
			c := *r // a produced record is the client's
			recs[i] = &c
		}
		err = cl.ProduceSync(context.Background(), recs...).FirstErr()
		cl.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.Addrs()
}

func (f *fixture) config(t *testing.T, db, group, snapdir string) Config {
	cfg := pipeline.DefaultConfig()
	cfg.OutOfOrder = 20 * time.Second
	cfg.Bots.Velocity, cfg.Bots.ClaimBurst, cfg.Bots.SharedDeviceUsers = 10, 2, 2
	return Config{
		Brokers: f.brokers, ClickHouseDSN: f.srv.DSN(db), SnapshotDir: snapdir, Group: group,
		Pipeline: &cfg, FlushInterval: 100 * time.Millisecond, SnapshotInterval: 300 * time.Millisecond,
		IdleTimeout: time.Hour,
	}
}

// query runs sql over HTTP, retrying twice: a POST on a keep-alive
// connection the server has just closed fails with EOF and is not retried by
// net/http.
func (f *fixture) query(sql string) (string, error) {
	var err error
	for range 3 {
		var out string
		if out, err = f.srv.Query(context.Background(), sql); err == nil {
			return out, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "", err
}

func (f *fixture) newDB(t *testing.T) string {
	db := f.srv.NewDatabase(t)
	if err := ch.Migrate(context.Background(), f.srv.DSN(db), nil); err != nil {
		t.Fatal(err)
	}
	return db
}

var dumpQueries = []string{
	"SELECT window_start, quest_id, scope, starts, completions, abandons, completion_rate, version FROM %s.quest_completion FINAL ORDER BY scope, quest_id, window_start",
	"SELECT window_start, quest_id, scope, conversions, p50_ms, p90_ms, p99_ms, max_ms, mean_ms, hdr, version FROM %s.conversion_latency FINAL ORDER BY scope, quest_id, window_start",
	"SELECT event_id, quest_id, latency_ms FROM %s.quest_conversions FINAL ORDER BY event_id",
	"SELECT drop_id, scope, updated_at, final, exposed_users, exposed_converters, control_users, control_converters, lift, version FROM %s.creator_lift FINAL ORDER BY scope, drop_id, updated_at, final",
	"SELECT window_start, placement, bidder_id, scope, auctions, bids, wins, impressions, revenue_micros, bid_latency_p99_ms, fill_rate, version FROM %s.offer_yield FINAL ORDER BY scope, placement, bidder_id, window_start",
	"SELECT window_start, placement, kind, scope, violations, auctions, clean_auctions, version FROM %s.bidstream_integrity FINAL ORDER BY scope, placement, kind, window_start",
	"SELECT window_start, entity_type, entity_id, score, reasons, flagged, version FROM %s.bot_signals FINAL WHERE score > 0 ORDER BY entity_type, entity_id, window_start",
	"SELECT processor, event_id, missed FROM %s.window_late_events FINAL ORDER BY processor, event_id",
}

func (f *fixture) dump(t *testing.T, db string) string {
	var b strings.Builder
	for _, q := range dumpQueries {
		out, err := f.query(fmt.Sprintf(q, db))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(out)
		b.WriteString("--\n")
	}
	return b.String()
}

// runUntilStable runs n processes until the tables stop changing; the
// first process registers its metrics with reg, when given.
func (f *fixture) runUntilStable(t *testing.T, cfg Config, n int, reg ...prometheus.Registerer) string {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		var r prometheus.Registerer
		if i == 0 && len(reg) > 0 {
			r = reg[0]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Run(ctx, cfg, r, nil); err != nil {
				errs <- err
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	db := strings.TrimPrefix(cfg.ClickHouseDSN[strings.LastIndex(cfg.ClickHouseDSN, "/"):], "/")
	last, same := "", 0
	targets := map[string]map[int32]int64{}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-errs:
			t.Fatal(err)
		case <-time.After(700 * time.Millisecond):
		}
		if !f.caughtUp(t, cfg.Group, targets) {
			continue
		}
		d := f.dump(t, db)
		if d == last && strings.Count(d, "\n") > 100 {
			if same++; same >= 4 {
				if r, ok := firstReg(reg).(*prometheus.Registry); ok {
					checkLags(t, r)
				}
				return d
			}
		} else {
			last, same = d, 0
		}
	}
	t.Fatalf("tables did not settle (group %s)", cfg.Group)
	return ""
}

func firstReg(reg []prometheus.Registerer) prometheus.Registerer {
	if len(reg) == 0 {
		return nil
	}
	return reg[0]
}

// checkLags: a process (still running) serves the watermark lag, the
// clean pass's lag and how long it has been stuck for every partition it
// owns; the clean pass is at least as far behind as the main pass, and
// not stuck.
func checkLags(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	series := func(name string) (n int, sum float64) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, m := range mf.Metric {
					n, sum = n+1, sum+m.GetGauge().GetValue()
				}
			}
		}
		return n, sum
	}
	nm, main := series("questline_processor_watermark_lag_seconds")
	nc, clean := series("questline_processor_clean_lag_seconds")
	if nm == 0 || nc != nm || clean < main {
		t.Errorf("lags: %d partitions' watermark lag (sum %v s), %d partitions' clean lag (sum %v s): want the same partitions, the clean pass behind", nm, main, nc, clean)
	}
	// Settled, the clean pass is not stuck: about a flush interval.
	if ns, stuck := series("questline_processor_clean_stuck_seconds"); ns != nm || stuck > 30 {
		t.Errorf("%d partitions' clean pass stuck for %v s in all, want %d partitions and a few flush intervals", ns, stuck, nm)
	}
}

// committedAtEnd reports whether group has committed (after a snapshot)
// the end offset of every partition of questline.events.
func (f *fixture) committedAtEnd(t *testing.T, group string) bool {
	return kafkatest.CommittedAtEnd(t, f.brokers, group, kafka.TopicEvents)
}

// stages are the consumer groups and topics of the merge and device stages
// of the processors of group.
func stages(group string) map[string]string {
	return map[string]string{group + "-merge": TopicPartials, group + "-devices": TopicDevices}
}

// caughtUp reports whether every stage of group has worked through the
// input: the source stage has snapshotted all of questline.events (so it
// has produced every partial and device record of it), and the merge and
// device stages have written the rows of the records there were when the
// source got there (targets, filled on the first call that finds the
// source done). Without the last two a slow merge stage on a loaded
// machine passes for a finished one.
func (f *fixture) caughtUp(t *testing.T, group string, targets map[string]map[int32]int64) bool {
	if len(targets) == 0 {
		if !f.committedAtEnd(t, group) {
			return false
		}
		for g, topic := range stages(group) {
			if targets[g] = kafkatest.EndOffsets(t, f.brokers, topic); targets[g] == nil {
				clear(targets)
				return false
			}
		}
	}
	for g, topic := range stages(group) {
		if !kafkatest.CommittedAtLeast(t, f.brokers, g, topic, targets[g]) {
			return false
		}
	}
	return true
}

func TestOneVersusFourProcessesAndReplay(t *testing.T) {
	f := newFixture(t, 6000, true)
	db1 := f.newDB(t)
	one := f.runUntilStable(t, f.config(t, db1, "g1", t.TempDir()), 1)
	for _, want := range []string{"\tclean\t", "drop0", "\tdevice\td0\t", "shared_device"} {
		if !strings.Contains(one, want) {
			t.Fatalf("tables lack %q:\n%.2000s", want, one)
		}
	}
	checkDeviceFarm(t, f, db1)
	db4 := f.newDB(t)
	f4 := f.fork(t)
	four := f4.runUntilStable(t, f4.config(t, db4, "g4", t.TempDir()), 4)
	if four != one {
		t.Fatalf("1 and 4 processes differ:\n%s", firstDiff(one, four))
	}
	// Replay: the same input processed again into the same tables by a new
	// group with no snapshots changes nothing.
	again := f.runUntilStable(t, f.config(t, db1, "g1-replay", t.TempDir()), 2)
	if again != one {
		t.Fatalf("replay changed the tables:\n%s", firstDiff(one, again))
	}
}

// TestCatalogFromTheLogIsDeterministic: catalog events that reach the
// processors only through questline.events (none pre-loaded in
// questline.catalog) reach the other partitions as copies in their logs,
// so what each partition knows of the drop at each record is fixed by the
// log: 1 and 2 processes give identical tables. (The copies land after
// every event already in the other partitions, so those partitions count
// no lift for the drop: the stream was produced before the drop was known
// there, as a replay of this log must also see it.)
func TestCatalogFromTheLogIsDeterministic(t *testing.T) {
	f := newFixture(t, 6000, true)
	g := *f
	g.stream = slices.DeleteFunc(slices.Clone(f.stream), func(r *kgo.Record) bool { return r.Topic == TopicCatalog })
	g.brokers = g.newBroker(t)
	db1, db2 := g.newDB(t), g.newDB(t)
	one := g.runUntilStable(t, g.config(t, db1, "cat1", t.TempDir()), 1)
	if !strings.Contains(one, "drop0") {
		t.Fatal("no lift rows: the drop never reached the partition of its events")
	}
	g2 := g.fork(t)
	if two := g2.runUntilStable(t, g2.config(t, db2, "cat2", t.TempDir()), 2); two != one {
		t.Fatalf("1 and 2 processes differ:\n%s", firstDiff(one, two))
	}
	// Every partition's own log now holds each catalog event (the
	// original or a copy).
	cl, err := kafka.NewClient(g.brokers, nil, kgo.ConsumeTopics(kafka.TopicEvents), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends := kafkatest.EndOffsets(t, g.brokers, kafka.TopicEvents)
	seen := map[int32]map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for read := map[int32]bool{}; len(read) < len(ends) && ctx.Err() == nil; {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			var e event.Event
			if event.DecodeBinary(r.Value, &e) == nil && e.Type.ServerOnly() {
				if seen[r.Partition] == nil {
					seen[r.Partition] = map[string]bool{}
				}
				seen[r.Partition][e.ID] = true
			}
			if r.Offset+1 >= ends[r.Partition] {
				read[r.Partition] = true
			}
		})
	}
	for p := range int32(partitions) {
		if len(seen[p]) != 3 {
			t.Fatalf("partition %d holds catalog events %v, want all 3", p, seen[p])
		}
	}
}

// TestCatalogCopiedByTheProducer: catalog events written as the ingest
// writes them (a copy in every partition, then the original marked
// copied) are applied where the copies are, at the start of every
// partition here, so the drop's events of every partition count, where
// copies made by the processors (the test above) land after them; and the
// processors add no copies of their own.
func TestCatalogCopiedByTheProducer(t *testing.T) {
	f := newFixture(t, 6000, true)
	g, h := *f, *f
	g.stream, h.stream = nil, nil
	n := 0
	for _, r := range f.stream {
		switch {
		case r.Topic == TopicCatalog:
			continue // no start catalog: what a partition knows is in its log
		case isCatalogEvent(t, r):
			o := *r
			g.stream = append(g.stream, kafka.ProducerCopies(&o, partitions)...)
			g.stream = append(g.stream, &o)
			n++
		default:
			g.stream = append(g.stream, r)
		}
		h.stream = append(h.stream, r)
	}
	g.brokers, h.brokers = g.newBroker(t), h.newBroker(t)
	dbG, dbH := g.newDB(t), h.newDB(t)
	byProducer := g.runUntilStable(t, g.config(t, dbG, "prod", t.TempDir()), 1)
	byProcessors := h.runUntilStable(t, h.config(t, dbH, "proc", t.TempDir()), 1)
	if byProducer == byProcessors {
		t.Fatal("the copies' place changed no row")
	}
	exposed := func(f *fixture, db string) int {
		out, err := f.query("SELECT exposed_users FROM " + db + ".creator_lift FINAL WHERE drop_id = 'drop0' AND scope = 'all' AND final = 1")
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil {
			t.Fatalf("final lift row of drop0: %q", out)
		}
		return n
	}
	if a, b := exposed(&g, dbG), exposed(&h, dbH); a <= b {
		t.Fatalf("exposed users of drop0: %d with the producer's copies, %d with the processors': want more", a, b)
	} else {
		t.Logf("exposed users of drop0: %d with the producer's copies, %d with the processors'", a, b)
	}
	copiesBy := func(brokers []string) (producer, processors int) {
		ends := kafkatest.EndOffsets(t, brokers, kafka.TopicEvents)
		cl, err := kafka.NewClient(brokers, nil, kgo.ConsumeTopics(kafka.TopicEvents), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for read := map[int32]bool{}; len(read) < len(ends) && ctx.Err() == nil; {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				for _, hd := range r.Headers {
					if hd.Key == kafka.CatalogCopyHeader && len(hd.Value) == 0 {
						producer++
					} else if hd.Key == kafka.CatalogCopyHeader {
						processors++
					}
				}
				if r.Offset+1 >= ends[r.Partition] {
					read[r.Partition] = true
				}
			})
		}
		return producer, processors
	}
	if p, q := copiesBy(g.brokers); p != n*partitions || q != 0 {
		t.Fatalf("copied by the producer: %d copies by it, %d by the processors; want %d and 0", p, q, n*partitions)
	}
	if p, q := copiesBy(h.brokers); p != 0 || q != n*(partitions-1) {
		t.Fatalf("copied by the processors: %d copies by the producer, %d by them; want 0 and %d", p, q, n*(partitions-1))
	}
}

func isCatalogEvent(t *testing.T, r *kgo.Record) bool {
	var e event.Event
	if err := event.DecodeBinary(r.Value, &e); err != nil {
		t.Fatal(err)
	}
	return e.Type.ServerOnly()
}

// TestRefusedRowsAreDeadLettered: a window row ClickHouse refuses is
// dead-lettered (kind processor_refused) and everything else is written
// as without it; the processors do not stop for it.
func TestRefusedRowsAreDeadLettered(t *testing.T) {
	f := newFixture(t, 6000, true)
	db := f.newDB(t)
	window := t0/1000 + 600 // 00:10, the all-quests row of the all scope
	if _, err := f.query(fmt.Sprintf("ALTER TABLE %s.quest_completion ADD COLUMN poison UInt8 MATERIALIZED throwIf(scope = 'all' AND quest_id = '' AND window_start = toDateTime(%d))", db, window)); err != nil {
		t.Fatal(err)
	}
	got := f.runUntilStable(t, f.config(t, db, "refuse", t.TempDir()), 1)

	fr := f.fork(t)
	ref := fr.newDB(t)
	var want strings.Builder
	section := 0 // quest_completion is the first
	for _, line := range strings.SplitAfter(fr.runUntilStable(t, fr.config(t, ref, "refuse-ref", t.TempDir()), 1), "\n") {
		if line == "--\n" {
			section++
		}
		if section > 0 || !strings.HasPrefix(line, "2026-01-01 00:10:00\t\tall\t") {
			want.WriteString(line)
		}
	}
	if got != want.String() {
		t.Fatalf("with one row refused, the other rows differ:\n%s", firstDiff(want.String(), got))
	}

	cl, err := kafka.NewClient(f.brokers, nil, kgo.ConsumeTopics(kafka.TopicDLQ), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dead := 0
	for dead == 0 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			d, err := event.UnmarshalDeadLetter(r.Value)
			if err == nil && d.Kind == "processor_refused" && strings.Contains(d.Reason, "quest_completion") && strings.Contains(d.Raw, `"QuestID":""`) {
				dead++
			}
		})
	}
	if dead == 0 {
		t.Fatal("no processor_refused dead letter for the refused row")
	}
}

func TestKillAndRestart(t *testing.T) {
	const events = 50_000
	f := newFixture(t, events, true)
	ref := f.newDB(t)
	fr := f.fork(t)
	want := fr.runUntilStable(t, fr.config(t, ref, "ref", t.TempDir()), 1)

	db := f.newDB(t)
	cfg := f.config(t, db, "crashy", t.TempDir())
	rng := rand.New(rand.NewPCG(3, 4))
	var processed, fetches float64
	for i := range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 2)
		procs := 1 + i%2
		regs := make([]*prometheus.Registry, procs)
		for j := range procs {
			regs[j] = prometheus.NewRegistry()
			go func() { done <- Run(ctx, cfg, regs[j], nil) }()
		}
		if i == 0 {
			// The first crash comes a third of the way through the input,
			// however fast the machine: on an idle one a process reads
			// all of it within a random sleep, and the crashes cut nothing.
			waitForEvents(t, regs[0], events/3, time.Minute)
		} else {
			time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		}
		cancel() // no flush, no snapshot: a crash
		for range procs {
			if err := <-done; err != nil {
				t.Fatalf("run %d: %v", i, err)
			}
		}
		n := 0.0
		for _, reg := range regs {
			c, _ := metric(t, reg, "questline_processor_events_total", "")
			n += c
			c, _ = metric(t, reg, "questline_processor_clean_fetch_duration_seconds", "")
			fetches += c
		}
		if i == 0 && n >= events {
			t.Fatalf("the first run processed all %.0f events before its crash: the crashes cut nothing", n)
		}
		processed += n
	}
	// Crashes must have cut processing: more events processed in total
	// than in the stream means records were re-read after restores.
	t.Logf("events processed over 20 runs: %.0f of %d; the clean pass's fetches: %.0f", processed, events, fetches)
	if fetches == 0 {
		t.Fatal("the clean pass never read the log: its events were held, or it never ran")
	}
	got := f.runUntilStable(t, cfg, 2)
	if got != want {
		t.Fatalf("after 20 kills the tables differ:\n%s", firstDiff(want, got))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n%s\n%s", i, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths %d vs %d", len(al), len(bl))
}

// waitForEvents waits until the processor registered with reg has
// processed at least n events.
func waitForEvents(t *testing.T, reg *prometheus.Registry, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c, _ := metric(t, reg, "questline_processor_events_total", ""); c >= float64(n) {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("fewer than %d events processed after %v", n, timeout)
}

// metric sums the values (counters and gauges) of the series of name in
// reg — only those whose kind label is kind, unless kind is empty — and
// says whether any series matched.
func metric(t *testing.T, reg *prometheus.Registry, name, kind string) (sum float64, found bool) {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if kind != "" && !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == "kind" && l.GetValue() == kind }) {
				continue
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
			found = true
		}
	}
	return sum, found
}

// TestIdlePartitionsFinalize: with no record that moves the watermarks
// past the stream, idle partitions get watermark records that finalize
// everything: final lift rows, the clean scope up to the last window,
// device rows, and every conversion attributed (the same latency rows as a
// run whose records close every window). Since those records are in the
// log, a replay by a new group gives the same tables.
func TestIdlePartitionsFinalize(t *testing.T) {
	f := newFixture(t, 6000, false)
	db := f.newDB(t)
	cfg := f.config(t, db, "idle", t.TempDir())
	cfg.IdleTimeout = 300 * time.Millisecond
	reg := prometheus.NewRegistry()
	idle := f.runUntilStable(t, cfg, 1, reg)
	// Every window is closed: the merge stage has forgotten them all.
	if n, ok := metric(t, reg, "questline_processor_state_entries", "merge_identities"); !ok || n != 0 {
		t.Fatalf("the merge stage still holds %v identities after every window closed", n)
	}
	q := func(sql string) string {
		out, err := f.query(fmt.Sprintf(sql, db))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	if n := q("SELECT count() FROM %s.creator_lift FINAL WHERE final = 1"); n == "0" {
		t.Fatal("no final lift rows")
	}
	all := q("SELECT max(window_start) FROM %s.quest_completion FINAL WHERE scope = 'all'")
	clean := q("SELECT max(window_start) FROM %s.quest_completion FINAL WHERE scope = 'clean'")
	if all != clean {
		t.Fatalf("clean scope stops at %s, all at %s", clean, all)
	}
	if n := q("SELECT count() FROM %s.bot_signals FINAL WHERE entity_type = 'device'"); n == "0" {
		t.Fatal("no device rows")
	}

	// The all scope (the end markers never reach the lagged clean pass,
	// so there the run closed by events is the less complete one).
	ended := newFixture(t, 6000, true)
	edb := ended.newDB(t)
	want := strings.Split(ended.runUntilStable(t, ended.config(t, edb, "ended", t.TempDir()), 1), "--\n")
	got := strings.Split(idle, "--\n")
	allScope := func(section string) string {
		var b strings.Builder
		for _, line := range strings.SplitAfter(section, "\n") {
			if strings.Contains(line, "\tall\t") {
				b.WriteString(line)
			}
		}
		return b.String()
	}
	if g, w := allScope(got[1]), allScope(want[1]); g != w || g == "" {
		t.Fatalf("conversion_latency after idleness differs from a run closed by events:\n%s", firstDiff(w, g))
	}
	if got[2] != want[2] {
		t.Fatalf("quest_conversions after idleness differs from a run closed by events:\n%s", firstDiff(want[2], got[2]))
	}

	db2 := f.newDB(t)
	cfg2 := f.config(t, db2, "idle-replay", t.TempDir()) // idle timeout 1 h: no records of its own
	if again := f.runUntilStable(t, cfg2, 2); again != idle {
		t.Fatalf("a replay of the log with its watermark records differs:\n%s", firstDiff(idle, again))
	}
}
