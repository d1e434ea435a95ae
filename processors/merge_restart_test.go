package processors

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/kafka/kafkatest"
	"github.com/questline/questline/processors/quest"
)

// TestMergeRestartTime measures what a restart costs a partials partition
// with a long history: QUESTLINE_MERGE_RESTART_PARTIALS quest partials of
// 4 sources, each second of event time a partial of every open window (10
// of 1 minute's slide) of 5 quests from every source, and every source's
// marker, in one partition of the partials topic; then one more second's
// worth after the first run stopped. It times the stage from start to
// caught up with the first run's snapshot against without it (a read from
// the start of a topic not yet compacted: kfake compacts hourly, Kafka
// only closed segments). Skipped without the variable;
// docs/benchmarks/processors.md has the figures and the command.
func TestMergeRestartTime(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("QUESTLINE_MERGE_RESTART_PARTIALS"))
	if n <= 0 {
		t.Skip("set QUESTLINE_MERGE_RESTART_PARTIALS to measure")
	}
	const (
		sources = 4
		quests  = 5
		windows = 10
		slide   = int64(60_000)
		late    = int64(10 * 60_000)
	)
	brokers := kafkatest.New(t, kafkatest.Partitions(1), kafkatest.Topics(Topics...)).Addrs()
	f := &fixture{brokers: brokers, srv: chs.Server(t)}
	tick := 0
	second := func() []*kgo.Record {
		now := t0 + int64(tick)*1000
		tick++
		var out []*kgo.Record
		for src := range int32(sources) {
			for q := range quests {
				for w := range int64(windows) {
					start := now/slide*slide - w*slide // the windows holding now
					r := quest.Row{Start: start, End: start + windows*slide, QuestID: fmt.Sprint("q", q), Scope: "all",
						Counts: quest.Counts{Starts: uint64(tick), Completions: uint64(tick / 2)}, Version: uint64(tick)}
					p, err := newPartial(tQuest, questIdentity(&r), src, r.Version, r.End+late, &r)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, &kgo.Record{Topic: TopicPartials, Key: []byte(p.key()), Value: p.appendBinary(nil)})
				}
			}
			m := partial{Source: src, Watermark: now - 5_000}
			out = append(out, &kgo.Record{Topic: TopicPartials, Key: []byte(m.key()), Value: m.appendBinary(nil)})
		}
		return out
	}
	start := time.Now()
	var batch []*kgo.Record
	for produced := 0; produced < n; {
		recs := second()
		produced += len(recs)
		if batch = append(batch, recs...); len(batch) >= 100_000 {
			produceAt(t, brokers, batch)
			batch = batch[:0]
		}
	}
	produceAt(t, brokers, batch)
	t.Logf("%d records (%d s of event time) produced in %v", kafkatest.EndOffsets(t, brokers, TopicPartials)[0], tick, time.Since(start).Round(time.Millisecond))

	db := f.newDB(t)
	run := func(group, dir string, stop func() bool) (caughtUp time.Duration, restore float64) {
		cfg := f.config(t, db, group, dir)
		reg := prometheus.NewRegistry()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- runMergeStage(ctx, cfg, sources, reg) }()
		ends := kafkatest.EndOffsets(t, brokers, TopicPartials)
		for !kafkatest.CommittedAtLeast(t, brokers, group+"-merge", TopicPartials, ends) {
			time.Sleep(20 * time.Millisecond)
		}
		caughtUp = time.Since(start)
		for stop != nil && !stop() {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "questline_processor_merge_restore_duration_seconds" {
				restore = mf.Metric[0].GetHistogram().GetSampleSum()
			}
		}
		return caughtUp, restore
	}
	dir := t.TempDir()
	end := kafkatest.EndOffsets(t, brokers, TopicPartials)[0]
	ms, err := newMergers(nil, nil, newYieldGauges())
	if err != nil {
		t.Fatal(err)
	}
	first, _ := run("first", dir, func() bool {
		st, ok, err := readMergeSnapshot(dir, 0, ms, sources)
		return err == nil && ok && st.next >= end
	})
	fi, err := os.Stat(mergeSnapshotPath(dir, 0))
	if err != nil {
		t.Fatal(err)
	}
	produceAt(t, brokers, second())
	with, restore := run("with", dir, nil)
	without, _ := run("without", t.TempDir(), nil)
	t.Logf("first run (from the start): caught up in %v; snapshot %d bytes", first.Round(time.Millisecond), fi.Size())
	t.Logf("restart with its snapshot: caught up in %v (restore %.3f s)", with.Round(time.Millisecond), restore)
	t.Logf("restart without a snapshot (read from the start): caught up in %v", without.Round(time.Millisecond))
}
