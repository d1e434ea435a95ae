package clickhouse

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/internal/chtest"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

// TestSinkDuplicatesAndReplayCountOnce delivers every record twice (two
// copies in the topic, as a producer retry would leave them) and then
// replays the whole topic through a second consumer group: the documented
// queries still count each event once.
func TestSinkDuplicatesAndReplayCountOnce(t *testing.T) {
	srv := chs.Server(t)
	db, _ := migrated(t, srv)
	b := kafkatest.New(t)
	cl := producer(t, b)
	evs := testEvents("dup", 2000)
	dls := testDeadLetters("dupdl", 30)
	for range 2 {
		produce(t, cl, eventRecords(evs))
		produce(t, cl, deadLetterRecords(dls))
	}
	reg := prometheus.NewRegistry()
	cfg := SinkConfig{Brokers: b.Addrs(), DSN: srv.DSN(db), BatchRows: 700, BatchWait: 100 * time.Millisecond}
	stop := startSink(t, cfg, reg)
	waitFor(t, srv, "SELECT count() FROM "+db+".events FINAL", "2000", 60*time.Second)
	waitFor(t, srv, "SELECT count() FROM "+db+".rejected_events FINAL", "30", 30*time.Second)
	stop()
	if w := metricSum(t, reg, "questline_clickhouse_rows_written_total", "table", "events"); w < 4000 {
		t.Fatalf("wrote %v event rows, want both copies (4000) to have gone in", w)
	}

	cfg.Group = "replay"
	reg2 := prometheus.NewRegistry()
	startSink(t, cfg, reg2)
	deadline := time.Now().Add(60 * time.Second)
	for metricSum(t, reg2, "questline_clickhouse_rows_written_total", "table", "events") < 4000 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	for q, want := range map[string]string{
		"SELECT count() FROM " + db + ".events FINAL":                                                                    "2000",
		"SELECT count() FROM " + db + ".rejected_events FINAL":                                                           "30",
		"SELECT sum(c) FROM (SELECT type, count() AS c FROM " + db + ".events FINAL GROUP BY type)":                      "2000",
		"SELECT count() FROM (SELECT event_id FROM " + db + ".events FINAL WHERE user_id = 'u5' ORDER BY event_time_ms)": strconv.Itoa(countUser(evs, "u5")),
	} {
		if got := query(t, srv, q); got != want {
			t.Errorf("%s = %s after duplicates and a replay, want %s", q, got, want)
		}
	}
}

func countUser(evs []event.Event, user string) int {
	n := 0
	for i := range evs {
		if evs[i].UserID == user {
			n++
		}
	}
	return n
}

// TestSinkDeadLettersPoisonRows makes ClickHouse refuse one event and one
// dead letter, and feeds an undecodable record: each ends up in
// rejected_events with its reason while everything else flows.
func TestSinkDeadLettersPoisonRows(t *testing.T) {
	srv := chs.Server(t)
	db, _ := migrated(t, srv)
	query(t, srv, "ALTER TABLE "+db+".events ADD COLUMN poison UInt8 MATERIALIZED throwIf(event_id = 'pz-42')")
	query(t, srv, "ALTER TABLE "+db+".rejected_events ADD COLUMN poison UInt8 MATERIALIZED throwIf(position(raw, 'POISON-RAW') > 0)")
	b := kafkatest.New(t)
	cl := producer(t, b)
	evs := testEvents("pz", 1000)
	dls := testDeadLetters("pzdl", 20)
	dls[3].Raw = "POISON-RAW " + dls[3].Raw
	produce(t, cl, eventRecords(evs))
	produce(t, cl, deadLetterRecords(dls))
	produce(t, cl, []*kgo.Record{{Topic: kafka.TopicEvents, Key: []byte("u1"), Value: []byte{0xff}}})

	reg := prometheus.NewRegistry()
	startSink(t, SinkConfig{Brokers: b.Addrs(), DSN: srv.DSN(db), BatchRows: 400, BatchWait: 100 * time.Millisecond}, reg)
	waitFor(t, srv, "SELECT count() FROM "+db+".events FINAL", "999", 60*time.Second)
	// 20 dead letters + the refused event + the undecodable record.
	waitFor(t, srv, "SELECT count() FROM "+db+".rejected_events FINAL", "22", 60*time.Second)

	got := query(t, srv, "SELECT kind, event_id, batch_index, position(reason, 'refused the row') > 0, position(raw, '\"event_id\":\"pz-42\"') > 0 FROM "+db+".rejected_events FINAL WHERE event_id = 'pz-42'")
	if got != "sink_refused\tpz-42\t-1\t1\t1" {
		t.Errorf("refused event row: %q", got)
	}
	got = query(t, srv, "SELECT kind, raw, position(reason, 'original reason: "+dls[3].Reason+"') > 0 FROM "+db+".rejected_events FINAL WHERE event_id = '"+dls[3].EventID+"'")
	if got != "sink_refused\t\t1" {
		t.Errorf("refused dead letter row: %q", got)
	}
	if got := query(t, srv, "SELECT count() FROM "+db+".rejected_events FINAL WHERE kind = 'sink_refused' AND position(reason, 'undecodable events record') > 0"); got != "1" {
		t.Errorf("undecodable record rows: %s, want 1", got)
	}
	if n := metricSum(t, reg, "questline_sink_dead_lettered_total", "reason", "refused"); n != 1 {
		t.Errorf("dead_lettered_total{reason=refused} = %v, want 1", n)
	}
}

// TestSinkSurvivesClickHouseOutage stops ClickHouse for 30 s while events
// keep arriving: the sink blocks and alerts, and afterwards writes every
// event exactly once.
func TestSinkSurvivesClickHouseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s outage; skipped with -short")
	}
	srv := chtest.New(t)
	db := srv.NewDatabase(t)
	if err := Migrate(context.Background(), srv.DSN(db), nil); err != nil {
		t.Fatal(err)
	}
	b := kafkatest.New(t)
	cl := producer(t, b)
	reg := prometheus.NewRegistry()
	startSink(t, SinkConfig{Brokers: b.Addrs(), DSN: srv.DSN(db), BatchRows: 2000, BatchWait: 200 * time.Millisecond}, reg)

	var produced atomic.Int64
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			produce(t, cl, eventRecords(testEvents("load"+strconv.Itoa(i), 100)))
			produced.Add(100)
			time.Sleep(20 * time.Millisecond)
		}
	})
	defer func() { stopLoad(); wg.Wait() }()

	time.Sleep(2 * time.Second)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	outage := time.Now()
	blocked := false
	for time.Since(outage) < 30*time.Second {
		if metricSum(t, reg, "questline_clickhouse_insert_blocked", "table", "events") == 1 {
			blocked = true
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !blocked {
		t.Error("questline_clickhouse_insert_blocked never rose to 1 during the outage")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // load continues after the restart
	stopLoad()
	wg.Wait()
	want := strconv.FormatInt(produced.Load(), 10)
	waitFor(t, srv, "SELECT count() FROM "+db+".events FINAL", want, 90*time.Second)
	if got := query(t, srv, "SELECT uniqExact(event_id) FROM "+db+".events"); got != want {
		t.Fatalf("distinct event ids %s, want %s", got, want)
	}
	if r := metricSum(t, reg, "questline_clickhouse_insert_retries_total", "table", "events"); r == 0 {
		t.Error("no retries counted across a 30 s outage")
	}
	if g := metricSum(t, reg, "questline_clickhouse_insert_blocked", "table", "events"); g != 0 {
		t.Errorf("insert_blocked = %v after recovery, want 0", g)
	}
	t.Logf("%s events through a 30 s outage", want)
}

// TestSinkProcessKilledMidBatch runs the questline binary's sink role,
// kills it with SIGKILL while events flow, restarts it, and checks that
// every event is counted once.
func TestSinkProcessKilledMidBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the questline binary; skipped with -short")
	}
	srv := chs.Server(t)
	db, _ := migrated(t, srv)
	b := kafkatest.New(t)
	cl := producer(t, b)

	bin := filepath.Join(t.TempDir(), "questline")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/questline").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "sink", "-metrics-addr", "", "-sink-batch-rows", "1500", "-sink-batch-wait", "300ms", "-log-level", "warn")
		cmd.Env = append(os.Environ(), "QUESTLINE_KAFKA_BROKERS="+strings.Join(b.Addrs(), ","), "QUESTLINE_CLICKHOUSE_DSN="+srv.DSN(db))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	total := 0
	load := func(rounds int) {
		for range rounds {
			produce(t, cl, eventRecords(testEvents("kill"+strconv.Itoa(total), 500)))
			total += 500
			time.Sleep(50 * time.Millisecond)
		}
	}
	sink := start()
	load(10)
	// Kill once some, but not all, batches are in.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if n, _ := strconv.Atoi(query(t, srv, "SELECT count() FROM "+db+".events")); n > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	load(4)
	if err := sink.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	sink.Wait()
	landed := query(t, srv, "SELECT count() FROM "+db+".events FINAL")
	load(6)
	start()
	want := strconv.Itoa(total)
	waitFor(t, srv, "SELECT count() FROM "+db+".events FINAL", want, 90*time.Second)
	for q, want := range map[string]string{
		"SELECT uniqExact(event_id) FROM " + db + ".events": want,
		"SELECT sum(c) FROM (SELECT toStartOfMinute(event_time) AS m, type, count() AS c FROM " + db + ".events FINAL GROUP BY m, type)": want,
	} {
		if got := query(t, srv, q); got != want {
			t.Errorf("%s = %s, want %s", q, got, want)
		}
	}
	t.Logf("killed with %s of %d events in ClickHouse; all %d counted once after restart", landed, total, total)
}

// TestSinkRebalancesUnderLoad starts a second sink mid-stream and then
// stops the first, so partitions move twice while batches are in flight:
// every event is still counted once.
func TestSinkRebalancesUnderLoad(t *testing.T) {
	srv := chs.Server(t)
	db, _ := migrated(t, srv)
	b := kafkatest.New(t)
	cl := producer(t, b)
	cfg := SinkConfig{Brokers: b.Addrs(), DSN: srv.DSN(db), BatchRows: 3000, BatchWait: 200 * time.Millisecond}

	var produced atomic.Int64
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			produce(t, cl, eventRecords(testEvents("rb"+strconv.Itoa(i), 200)))
			produced.Add(200)
			time.Sleep(10 * time.Millisecond)
		}
	})
	defer func() { stopLoad(); wg.Wait() }()

	stop1 := startSink(t, cfg, prometheus.NewRegistry())
	time.Sleep(2 * time.Second)
	startSink(t, cfg, prometheus.NewRegistry())
	time.Sleep(2 * time.Second)
	stop1()
	time.Sleep(2 * time.Second)
	stopLoad()
	wg.Wait()
	want := strconv.FormatInt(produced.Load(), 10)
	waitFor(t, srv, "SELECT count() FROM "+db+".events FINAL", want, 60*time.Second)
	if got := query(t, srv, "SELECT uniqExact(event_id) FROM "+db+".events"); got != want {
		t.Fatalf("distinct ids %s, want %s", got, want)
	}
}
