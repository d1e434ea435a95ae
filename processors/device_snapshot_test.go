package processors

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/pipeline"
	ch "github.com/questline/questline/sinks/clickhouse"
)

// runStageAlone runs one stage alone (as Run does beside the other
// stages) for sources source partitions, until ctx ends.
func runStageAlone[S interface{ run(context.Context) error }](ctx context.Context, cfg Config, sources int32, reg prometheus.Registerer,
	newStage func(*Config, *slog.Logger, *metrics, *ch.Client, int32) (S, error)) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	c, err := ch.Open(ctx, cfg.ClickHouseDSN, nil, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := newStage(&cfg, slog.New(slog.DiscardHandler), newMetrics(reg, nil), c, sources)
	if err != nil {
		return err
	}
	return s.run(ctx)
}

// runDeviceStage runs the device stage alone.
func runDeviceStage(ctx context.Context, cfg Config, sources int32, reg prometheus.Registerer) error {
	return runStageAlone(ctx, cfg, sources, reg, newDeviceStage)
}

const deviceRowsQuery = "SELECT window_start, entity_id, score, reasons, flagged, version FROM %s.bot_signals FINAL WHERE entity_type = 'device' AND score > 0 ORDER BY entity_id, window_start"

func (f *fixture) deviceRows(t *testing.T, db string) string {
	out, err := f.query(fmt.Sprintf(deviceRowsQuery, db))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readTopic returns every record of topic, by partition in offset order,
// as records to produce again.
func readTopic(t *testing.T, brokers []string, topic string) map[int32][]*kgo.Record {
	out := map[int32][]*kgo.Record{}
	for _, r := range kafkatest.Records(t, brokers, topic) {
		out[r.Partition] = append(out[r.Partition], &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value})
	}
	return out
}

// produceAt produces copies of recs into their partitions.
func produceAt(t testing.TB, brokers []string, recs []*kgo.Record) {
	cl, err := kafka.NewClient(brokers, nil, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cp := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		c := *r
		cp[i] = &c
	}
	if err := cl.ProduceSync(context.Background(), cp...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestDeviceStageRestoresItsSnapshot: the device stage stopped after the
// first half of every partition of questline.devices and restarted once
// the second half is there restores its snapshots and reads only the
// second half (counted by questline_processor_device_records_total), and
// bot_signals' device rows end identical to those of an uninterrupted
// run. With snapshots damaged (a flipped bit, a truncated file) or
// missing, those partitions are re-read from their start, with the same
// rows.
func TestDeviceStageRestoresItsSnapshot(t *testing.T) {
	f := newFixture(t, 6000, true)
	ref := f.newDB(t)
	f.runUntilStable(t, f.config(t, ref, "devref", t.TempDir()), 1)
	want := f.deviceRows(t, ref)
	if !strings.Contains(want, "shared_device") {
		t.Fatalf("the reference has no shared_device row:\n%.1000s", want)
	}
	f.restartHalfway(t, stageRestart{
		topic: TopicDevices, group: "-devices", path: deviceSnapshotPath,
		records: "questline_processor_device_records_total",
		run: func(ctx context.Context, cfg Config, reg prometheus.Registerer) error {
			return runDeviceStage(ctx, cfg, partitions, reg)
		},
		next: func(cfg Config, dir string, p int32) (int64, bool, error) {
			dp, ok, err := readDeviceSnapshot(dir, p, f.deviceBots(cfg), partitions)
			if !ok {
				return 0, ok, err
			}
			return dp.next, ok, err
		},
		rows: f.deviceRows, want: want,
	})
}

// stageRestart is a stage of the processors run alone over a copy of its
// input topic, for restartHalfway.
type stageRestart struct {
	topic, group string // the stage's input topic and group suffix
	path         func(dir string, partition int32) string
	records      string                 // the counter of records the stage applies
	counts       func(*kgo.Record) bool // whether it counts a record (nil: all)
	run          func(ctx context.Context, cfg Config, reg prometheus.Registerer) error
	// next returns the offset the partition's snapshot in dir holds.
	next func(cfg Config, dir string, partition int32) (int64, bool, error)
	rows func(t *testing.T, db string) string
	want string // rows of an uninterrupted run
}

// restartHalfway runs s over the first half of every partition of its
// topic (copied from f's broker into a new one), stops it (as by a crash)
// once every partition's snapshot holds that half, adds the second half
// and restarts it: it must read only the second half and end with the
// uninterrupted run's rows. Then the same with the snapshots of three
// partitions damaged (a flipped bit, a truncated file) or missing: those
// three are re-read from their start, with the same rows.
func (f *fixture) restartHalfway(t *testing.T, s stageRestart) {
	recs := readTopic(t, f.brokers, s.topic)
	half := map[int32]int{}
	for p, rs := range recs {
		half[p] = len(rs) / 2
	}
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, dir string) (reread []int32)
	}{
		{"intact", nil},
		{"damaged or missing", func(t *testing.T, dir string) []int32 {
			path := s.path(dir, 0)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x10
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(s.path(dir, 1)); err != nil {
				t.Fatal(err)
			}
			path = s.path(dir, 2)
			if b, err = os.ReadFile(path); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b[:len(b)-6], 0o644); err != nil {
				t.Fatal(err)
			}
			return []int32{0, 1, 2}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := *f
			g.brokers = kafkatest.New(t, kafkatest.Partitions(partitions), kafkatest.Topics(Topics...)).Addrs()
			db, dir := g.newDB(t), t.TempDir()
			cfg := g.config(t, db, "restart", dir)
			var first, second []*kgo.Record
			for p, rs := range recs {
				first = append(first, rs[:half[p]]...)
				second = append(second, rs[half[p]:]...)
			}
			produceAt(t, g.brokers, first)

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.run(ctx, cfg, nil) }()
			deadline := time.Now().Add(time.Minute)
			for p := range int32(partitions) {
				for {
					next, ok, err := s.next(cfg, dir, p)
					if err != nil {
						t.Fatal(err)
					}
					if ok && next == int64(half[p]) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("partition %d: no snapshot at offset %d", p, half[p])
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}

			count := func(rs []*kgo.Record) int {
				n := 0
				for _, r := range rs {
					if s.counts == nil || s.counts(r) {
						n++
					}
				}
				return n
			}
			wantRead := count(second)
			if c.damage != nil {
				for _, p := range c.damage(t, dir) {
					wantRead += count(recs[p][:half[p]])
				}
			}
			produceAt(t, g.brokers, second)
			reg := prometheus.NewRegistry()
			ctx, cancel = context.WithCancel(context.Background())
			go func() { done <- s.run(ctx, cfg, reg) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			ends := kafkatest.EndOffsets(t, g.brokers, s.topic)
			for !kafkatest.CommittedAtLeast(t, g.brokers, cfg.Group+s.group, s.topic, ends) {
				if time.Now().After(deadline.Add(time.Minute)) {
					t.Fatal("the restarted stage did not catch up")
				}
				time.Sleep(100 * time.Millisecond)
			}
			read, _ := metric(t, reg, s.records, "")
			t.Logf("records applied after the restart: %.0f (want %d; %d in the topic, %d in its second half)", read, wantRead, len(first)+len(second), len(second))
			if int(read) != wantRead {
				t.Errorf("the restarted stage read %.0f records, want %d", read, wantRead)
			}
			if got := s.rows(t, db); got != s.want {
				t.Fatalf("rows differ from an uninterrupted run's:\n%s", firstDiff(s.want, got))
			}
		})
	}
}

// deviceBots returns the device stage's bot config of cfg.
func (f *fixture) deviceBots(cfg Config) bots.Config {
	c := cfg.Pipeline.Bots
	c.Entity = bots.EntityDevice
	return c
}

// deviceStream returns n device events of two source partitions as the
// device stage receives them, interleaved, up to 4 minutes out of order
// (late for windows already emitted, within the lateness: updates, some
// held back by UpdateEvery), with each source's watermark every 25
// events and now and then one of a source's last records re-sent (as
// after a source restore).
func deviceStream(n int) [][]byte {
	rng := rand.New(rand.NewPCG(5, 8))
	types := []event.Type{event.QuestStarted, event.DropClaimed, event.QuestCompleted, event.ClaimRejected}
	var out [][]byte
	var sent [2][][]byte
	var maxT [2]int64
	for i := range n {
		src := rng.IntN(2)
		e := event.Event{Type: types[rng.IntN(len(types))], UserID: fmt.Sprint("u", rng.IntN(12)),
			DeviceID: fmt.Sprint("d", rng.IntN(15)), EventTime: t0 + int64(i)*300 - rng.Int64N(4*60_000)}
		if rng.IntN(8) == 0 {
			e.Country, e.EdgeCountry = []string{"FR", "PL", "US"}[rng.IntN(3)], "DE"
		}
		if e.Type == event.QuestCompleted {
			e.Has |= event.HasDurationMs | event.HasMinDurationMs
			e.DurationMs, e.MinDurationMs = rng.Int64N(200_000), 100_000
		}
		v := deviceEventValue(int32(src), &pipeline.DeviceEvent{Offset: int64(len(sent[src])), Lo: math.MinInt64, Record: event.AppendBinary(nil, &e)})
		sent[src] = append(sent[src], v)
		out = append(out, v)
		maxT[src] = max(maxT[src], e.EventTime)
		if i%25 == 24 {
			for s := range 2 {
				if maxT[s] > 0 {
					out = append(out, deviceMarkerValue(int32(s), maxT[s]-30_000))
				}
			}
		}
		if rng.IntN(10) == 0 {
			// As a source restored from an older snapshot does.
			out = append(out, sent[src][len(sent[src])-1-rng.IntN(min(20, len(sent[src])))])
		}
	}
	return out
}

// TestDeviceSnapshotMidStream: a device partition snapshotted (through
// its file) and restored after every few flushes, between records of two
// interleaved sources, emits exactly the rows, versions included, that
// the uninterrupted partition emits at the same flushes: state, emitted
// windows, pending updates, offsets and watermarks all come back.
func TestDeviceSnapshotMidStream(t *testing.T) {
	stream := deviceStream(3000)
	pc := pipeline.DefaultConfig()
	cfg := pc.Bots
	cfg.Entity, cfg.Velocity, cfg.ClaimBurst, cfg.SharedDeviceUsers = bots.EntityDevice, 10, 2, 2
	const flushEvery, snapEvery = 7, 21 * 7
	dir := t.TempDir()
	var pending, updates int
	var flags []string // of the uninterrupted run, then the restored one
	userPart := func(u string) int32 { return int32(len(u) % 2) }
	run := func(restore bool) [][]bots.Row {
		flags = flags[:0]
		p, err := bots.New(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		dp := newDevicePart(p, 2)
		var flushes [][]bots.Row
		var e event.Event
		for i, v := range stream {
			if restore && i > 0 && i%snapEvery == 0 {
				st := dp.freeze(cfg.Window)
				pending += len(st.encoded().Bots.Engine.Pending)
				if err := writeDeviceSnapshot(dir, 0, st, func() bool { return true }); err != nil {
					t.Fatal(err)
				}
				was := dp
				var ok bool
				if dp, ok, err = readDeviceSnapshot(dir, 0, cfg, 2); !ok || err != nil {
					t.Fatalf("at %d: ok %v, %v", i, ok, err)
				}
				if dp.next != int64(i) || !maps.Equal(dp.maxOff, was.maxOff) || !maps.Equal(dp.srcWM, was.srcWM) {
					t.Fatalf("restored at offset %d, source offsets %v, watermarks %v; want %d, %v, %v", dp.next, dp.maxOff, dp.srcWM, i, was.maxOff, was.srcWM)
				}
			}
			dp.apply(int64(i), v, &e)
			if i%flushEvery == flushEvery-1 {
				rows := dp.p.Flush(dp.watermark())
				dp.track(rows)
				for _, r := range dp.flagRecords(0, cfg.Window, 2, userPart) {
					flags = append(flags, fmt.Sprint(i, r.Partition, r.Value))
				}
				flushes = append(flushes, slices.Clone(rows))
			}
		}
		return flushes
	}
	want := run(false)
	wantFlags := slices.Clone(flags)
	got := run(true)
	if !slices.Equal(flags, wantFlags) {
		t.Fatalf("restored partitions sent %d flag and marker records, want %d (the same)", len(flags), len(wantFlags))
	}
	users := 0
	for _, f := range wantFlags {
		users += strings.Count(f, "[1 ") // a flag's value starts with 1
	}
	t.Logf("%d flag and marker records, %d flags", len(wantFlags), users)
	if users == 0 {
		t.Fatal("the stream flags no device's users: the flags are not tested")
	}
	seen := map[string]bool{}
	for _, rows := range want {
		for _, r := range rows {
			k := fmt.Sprint(r.Start, r.EntityID)
			if seen[k] {
				updates++
			}
			seen[k] = true
		}
	}
	t.Logf("%d rows, %d of them updates; %d pending updates in the snapshots", len(seen), updates, pending)
	if updates == 0 || pending == 0 {
		t.Fatal("the stream must make updates, some of them pending at a snapshot, for the test to mean anything")
	}
	for i := range want {
		if (len(want[i]) > 0 || len(got[i]) > 0) && !reflect.DeepEqual(want[i], got[i]) {
			t.Fatalf("flush %d: restored partition emitted\n%v\nwant\n%v", i, got[i], want[i])
		}
	}
}

// TestDeviceFrozenWhileThePartitionGoesOn: a device partition's frozen
// state, encoded after the partition took the rest of its stream (as the
// background writer does), is the state at the freeze. Run it under -race
// too.
func TestDeviceFrozenWhileThePartitionGoesOn(t *testing.T) {
	stream := deviceStream(3000)
	cfg := pipeline.DefaultConfig().Bots
	cfg.Entity = bots.EntityDevice
	p, err := bots.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dp := newDevicePart(p, 2)
	var e event.Event
	for i, v := range stream[:len(stream)/2] {
		dp.apply(int64(i), v, &e)
		if i%7 == 6 {
			dp.p.Flush(dp.watermark())
		}
	}
	encode := func(st *deviceState) *deviceState {
		var b bytes.Buffer
		if err := gob.NewEncoder(&b).Encode(st.encoded()); err != nil {
			t.Fatal(err)
		}
		var out deviceState
		if err := gob.NewDecoder(&b).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return &out
	}
	st := dp.freeze(cfg.Window)
	want := encode(st)
	done := make(chan *deviceState)
	go func() { done <- encode(st) }() // beside the partition, as the writer runs
	for i, v := range stream[len(stream)/2:] {
		dp.apply(int64(len(stream)/2+i), v, &e)
		if i%7 == 6 {
			dp.p.Flush(dp.watermark())
		}
	}
	if got := <-done; !reflect.DeepEqual(got, want) {
		t.Fatal("the frozen state changed while the partition went on")
	}
	if got := encode(st); !reflect.DeepEqual(got, want) {
		t.Fatal("the frozen state changed after the partition went on")
	}
}
