package processors

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/pipeline"
	ch "github.com/questline/questline/sinks/clickhouse"
)

// TestFlagsAfterRetention (helper-51): once retention has removed the
// start of a partition of questline.device-flags, a source partition that
// has read no flag (built from nothing) starts at the log's start instead
// of stopping the stage at every restart; one restored from a snapshot
// whose next offset is gone stops with an error naming the topic.
func TestFlagsAfterRetention(t *testing.T) {
	b := kafkatest.New(t, kafkatest.Partitions(1), kafkatest.Topics(kafka.Topic{Name: TopicDeviceFlags}))
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Topic: TopicDeviceFlags, Partition: 0, Value: pipeline.DeviceMarkerValue(0, int64(1000*(i+1)))})
	}
	produceAt(t, b.Addrs(), recs)
	cl, err := kafka.NewClient(b.Addrs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	del := kadm.Offsets{}
	del.AddOffset(TopicDeviceFlags, 0, 5, -1) // as retention.ms takes the oldest
	if _, err := kadm.NewClient(cl).DeleteRecords(ctx, del); err != nil {
		t.Fatal(err)
	}
	readFrom := func(next int64) (*pipeline.Partition, error) {
		cfg := pipeline.DefaultConfig()
		cfg.DevicePartitions = 1
		p, err := pipeline.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if next > 0 {
			p.StartDeviceFlagsAt(next) // as a restored snapshot's offset
		}
		log := slog.New(slog.DiscardHandler)
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h"})
		s := &source{log: log, reads: cl, ctx: ctx, parts: map[int32]*part{0: {p: p}},
			flags: &flagsReader{cl: cl, ctx: ctx, fetched: h, decomp: kgo.DefaultDecompressor()}}
		return p, s.readFlags()
	}
	p, err := readFrom(0)
	if err != nil || p.DeviceFlagsNext() != 10 {
		t.Fatalf("a partition that read no flag: %v, next offset %d, want none and 10", err, p.DeviceFlagsNext())
	}
	if _, err := readFrom(3); err == nil || !strings.Contains(err.Error(), "gone from the log of "+TopicDeviceFlags) {
		t.Fatalf("a partition whose next offset is gone: %v, want an error naming %s", err, TopicDeviceFlags)
	}
}

// TestFlagsOneFetchPerLeader: readFlags asks each broker once per flush
// for all the partitions it leads (not once per partition in turn: a
// round trip each under the stage's lock), and reads every partition's
// flags to its end, the first time and again once more are written.
func TestFlagsOneFetchPerLeader(t *testing.T) {
	const partitions = 8
	c, cl := flagsCluster(t, 3, partitions)
	ctx := context.Background()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, TopicDeviceFlags)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]bool{}
	for _, p := range topics[TopicDeviceFlags].Partitions {
		leaders[p.Leader] = true
	}
	if len(leaders) < 2 {
		t.Fatalf("the partitions' leaders: %v, want two brokers or more", leaders)
	}
	written := 0
	write := func(n int) {
		var recs []*kgo.Record
		for p := range int32(partitions) {
			for range n + int(p) {
				written++
				recs = append(recs, &kgo.Record{Topic: TopicDeviceFlags, Partition: p, Value: pipeline.DeviceMarkerValue(0, int64(1000*written))})
			}
		}
		produceAt(t, c.ListenAddrs(), recs)
	}
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h"})
	s := flagsSource(cl, h, slog.New(slog.DiscardHandler), partitions)
	fetches := 0.0
	for round, n := range []int{5, 3} {
		write(n)
		if err := s.readFlags(); err != nil {
			t.Fatal(err)
		}
		m := &dto.Metric{}
		if err := h.Write(m); err != nil {
			t.Fatal(err)
		}
		got := float64(m.GetHistogram().GetSampleCount()) - fetches
		fetches += got
		if got != float64(len(leaders)) {
			t.Errorf("round %d: %v Fetch requests for %d partitions led by %d brokers, want one per broker", round, got, partitions, len(leaders))
		}
		for p, end := range kafkatest.EndOffsets(t, c.ListenAddrs(), TopicDeviceFlags) {
			if next := s.parts[p].p.DeviceFlagsNext(); next != end {
				t.Errorf("round %d: partition %d read up to %d, the log ends at %d", round, p, next, end)
			}
		}
	}
}

// flagsCluster starts a kfake cluster of brokers with TopicDeviceFlags
// of partitions, and a client of it, both closed at the test's end.
func flagsCluster(t *testing.T, brokers int, partitions int32) (*kfake.Cluster, *kgo.Client) {
	c, err := kfake.NewCluster(kfake.NumBrokers(brokers), kfake.SeedTopics(partitions, TopicDeviceFlags))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kafka.NewClient(c.ListenAddrs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, cl
}

// flagsSource returns a source stage of the partitions 0 to n-1 that
// reads their device flags (from one device partition) with cl, timing
// its Fetch requests in h.
func flagsSource(cl *kgo.Client, h prometheus.Histogram, log *slog.Logger, n int32) *source {
	ctx := context.Background()
	s := &source{log: log, reads: cl, ctx: ctx, parts: map[int32]*part{},
		flags: &flagsReader{cl: cl, ctx: ctx, fetched: h, decomp: kgo.DefaultDecompressor()}}
	cfg := pipeline.DefaultConfig()
	cfg.DevicePartitions = 1
	for p := range n {
		pp, err := pipeline.New(cfg, nil)
		if err != nil {
			panic(err)
		}
		s.parts[p] = &part{p: pp}
	}
	return s
}

// TestFlagsBacklogPastTheByteLimit (helper-53): a leader's answer stops at
// its byte limit (8 MiB for 8 partitions or more); the partitions it left
// without records are asked again first, so a backlog of 12 partitions
// of ~2.4 MiB each (a rebuild reading the log from its start) is read in
// one flush, without a warning. (At first they were dropped for the
// flush, or taken for an error, and the last ones waited flush after
// flush.)
func TestFlagsBacklogPastTheByteLimit(t *testing.T) {
	const partitions, each = 12, 600
	c, cl := flagsCluster(t, 1, partitions)
	rnd := rand.New(rand.NewPCG(1, 2))
	user := make([]byte, 4000) // random: compression does not shrink it
	var recs []*kgo.Record
	for p := range int32(partitions) {
		for i := range each {
			for j := range user {
				user[j] = byte('a' + rnd.IntN(26))
			}
			recs = append(recs, &kgo.Record{Topic: TopicDeviceFlags, Partition: p, Value: pipeline.DeviceFlagValue(string(user), int64(i))})
		}
	}
	produceAt(t, c.ListenAddrs(), recs)
	var logged strings.Builder
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h"})
	s := flagsSource(cl, h, slog.New(slog.NewTextHandler(&logged, nil)), partitions)
	if err := s.readFlags(); err != nil {
		t.Fatal(err)
	}
	for p := range int32(partitions) {
		if next := s.parts[p].p.DeviceFlagsNext(); next != each {
			t.Errorf("partition %d: read to offset %d in one flush, the log ends at %d", p, next, each)
		}
	}
	if logged.Len() > 0 {
		t.Errorf("logged: %s", logged.String())
	}
}

// TestFlagsRetention: the start warns when questline.device-flags may
// keep its records less long than questline.events (a partition rebuilt
// without a snapshot would miss its oldest events' flags).
func TestFlagsRetention(t *testing.T) {
	b := kafkatest.New(t, kafkatest.Partitions(1), kafkatest.Topics(kafka.Topic{Name: TopicDeviceFlags}))
	cl, err := kafka.NewClient(b.Addrs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	set := func(topic, ms string) {
		t.Helper()
		resp, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &ms}}, topic)
		if err == nil {
			_, err = resp.On(topic, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	const month, week = "2592000000", "604800000"
	for _, c := range []struct {
		events, flags string // "" leaves it as it is
		short         bool
	}{
		{"", "", false}, // both the broker's default (7 days)
		{month, "", true},
		{"", month, false},
		{"", week, true},
		{"-1", "", true},
		{"", "-1", false},
		{month, "", false}, // the flags kept for ever
	} {
		if c.events != "" {
			set(kafka.TopicEvents, c.events)
		}
		if c.flags != "" {
			set(TopicDeviceFlags, c.flags)
		}
		short, events, flags, err := flagsRetentionShort(ctx, cl)
		if err != nil || short != c.short {
			t.Errorf("events retention.ms %q, device flags %q: short %v (%v), want %v", events, flags, short, err, c.short)
		}
	}
}

// TestCleanStuckWithoutDeviceStage: a source stage whose device stage
// does not run shows its clean pass stuck
// (questline_processor_clean_stuck_seconds grows: QuestlineCleanRowsBehind),
// and about a flush interval once the device stage runs.
func TestCleanStuckWithoutDeviceStage(t *testing.T) {
	f := newFixture(t, 2000, true)
	cfg := f.config(t, f.newDB(t), "stuck", t.TempDir())
	pc := *cfg.Pipeline
	pc.ForwardDevices, pc.DevicePartitions = true, partitions // as Run sets them
	cfg.Pipeline = &pc
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2)
	go func() {
		done <- runStageAlone(ctx, cfg, partitions, reg, func(c *Config, log *slog.Logger, m *metrics, ch *ch.Client, sources int32) (*source, error) {
			return newSource(c, log, m, ch, catalog.New(), partitions, partitions, sources)
		})
	}()
	stuck := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		worst := -1.0
		for _, mf := range mfs {
			if mf.GetName() == "questline_processor_clean_stuck_seconds" {
				for _, m := range mf.Metric {
					worst = max(worst, m.GetGauge().GetValue())
				}
			}
		}
		return worst
	}
	wait := func(what string, ok func(float64) bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for v := stuck(); !ok(v); v = stuck() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the worst partition's clean pass stuck for %v s", what, v)
			}
			select {
			case err := <-done:
				t.Fatalf("a stage stopped: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	wait("without the device stage", func(v float64) bool { return v > 3 })
	go func() { done <- runDeviceStage(ctx, cfg, partitions, nil) }()
	wait("with it", func(v float64) bool { return v >= 0 && v < 1 })
}
