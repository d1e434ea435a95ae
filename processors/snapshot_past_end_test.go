package processors

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/pipeline"
)

// TestSnapshotPastTheLogsEnd: a snapshot whose offset is past its
// partition's end was taken from another log (the topic created again,
// the broker's data lost while the snapshots stayed); each stage rebuilds
// such a partition from its start, where fetching from the snapshot's
// offset would reset to the start and skip every record below it as if
// it were in the state. A snapshot within the log is restored as before.
func TestSnapshotPastTheLogsEnd(t *testing.T) {
	b := kafkatest.New(t, kafkatest.Partitions(2), kafkatest.Topics(Topics...))
	brokers := b.Addrs()
	var recs []*kgo.Record
	for _, topic := range []string{kafka.TopicEvents, TopicDevices, TopicPartials} {
		for p := range int32(2) {
			for range 5 {
				// Records no stage is asked to apply here: only the ends count.
				recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: []byte("k"), Value: []byte{0}})
			}
		}
	}
	produceAt(t, brokers, recs)
	// Partition 0's snapshots are past the end (5), partition 1's within.
	nexts := map[int32]int64{0: 1000, 1: 3}

	cfg := Config{Brokers: brokers, ClickHouseDSN: "unused", SnapshotDir: t.TempDir(), Group: "past-end"}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	m := newMetrics(prometheus.NewRegistry(), nil)

	// The snapshots before the stages: a client may join its group at once.
	for p, next := range nexts {
		bc := cfg.Pipeline.Bots
		bc.Entity = bots.EntityDevice
		bp, err := bots.New(bc, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		dp := newDevicePart(bp, 2)
		dp.next = next
		if err := writeDeviceSnapshot(cfg.SnapshotDir, p, dp.freeze(bc.Window), func() bool { return true }); err != nil {
			t.Fatal(err)
		}
		st := newMergeState(2)
		st.next = next
		if err := writeMergeSnapshot(cfg.SnapshotDir, p, st.freeze(), func() bool { return true }); err != nil {
			t.Fatal(err)
		}
		pp, err := pipeline.New(*cfg.Pipeline, catalog.New())
		if err != nil {
			t.Fatal(err)
		}
		if err := writeSnapshot(cfg.SnapshotDir, p, next, pp.Freeze(), func() bool { return true }); err != nil {
			t.Fatal(err)
		}
	}

	dev, err := newDeviceStage(&cfg, log, m, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.cl.Close()
	mrg, err := newMergeStage(&cfg, log, m, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer mrg.cl.Close()
	src, err := newSource(&cfg, log, m, nil, catalog.New(), 2, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer src.cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, stage := range []struct {
		name string
		cl   *kgo.Client
		mu   interface {
			Lock()
			Unlock()
		}
		nextOf func(int32) (int64, bool)
	}{
		{"device", dev.cl, &dev.mu, func(p int32) (int64, bool) {
			dp := dev.parts[p]
			return func() int64 {
				if dp == nil {
					return 0
				}
				return dp.next
			}(), dp != nil
		}},
		{"merge", mrg.cl, &mrg.mu, func(p int32) (int64, bool) {
			st := mrg.states[p]
			return func() int64 {
				if st == nil {
					return 0
				}
				return st.next
			}(), st != nil
		}},
		{"source", src.cl, &src.mu, func(p int32) (int64, bool) {
			pt := src.parts[p]
			return func() int64 {
				if pt == nil {
					return 0
				}
				return pt.next
			}(), pt != nil
		}},
	} {
		// Poll until both partitions are assigned: assign restores them.
		for {
			stage.cl.PollRecords(ctx, 1)
			stage.cl.AllowRebalance()
			stage.mu.Lock()
			n0, ok0 := stage.nextOf(0)
			n1, ok1 := stage.nextOf(1)
			stage.mu.Unlock()
			if ok0 && ok1 {
				if n0 > 5 || n1 != 3 {
					t.Errorf("%s stage: restored at %d and %d, want 0..5 (rebuilt: the snapshot is past the end) and 3", stage.name, n0, n1)
				}
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s stage: partitions not assigned", stage.name)
			}
		}
	}
}
