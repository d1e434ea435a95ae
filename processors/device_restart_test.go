package processors

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/kafka/kafkatest"
	"github.com/questline/questline/processors/pipeline"
)

// TestDeviceRestartTime measures what a restart costs a device partition
// with a long history: QUESTLINE_DEVICE_RESTART_RECORDS device events (and
// the markers of 4 sources) of 100k devices over QUESTLINE_DEVICE_RESTART_SPAN
// of event time (default 5h; the state is the last 11 minutes of it) in
// one partition of questline.devices, then 1,000 more after the first run stopped; the time
// from start to caught up (every record applied and its rows written)
// with the first run's snapshot against without it (a re-read from the
// start, as before snapshots). Skipped without the variable;
// docs/processors.md has the figures and the command.
func TestDeviceRestartTime(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("QUESTLINE_DEVICE_RESTART_RECORDS"))
	if n <= 0 {
		t.Skip("set QUESTLINE_DEVICE_RESTART_RECORDS to measure")
	}
	const sources = 4
	brokers := kafkatest.New(t, kafkatest.Partitions(1), kafkatest.Topics(Topics...)).Addrs()
	srv := chs.Server(t)
	f := &fixture{brokers: brokers, srv: srv}
	rng := rand.New(rand.NewPCG(1, 2))
	span := 5 * time.Hour
	if v := os.Getenv("QUESTLINE_DEVICE_RESTART_SPAN"); v != "" {
		var err error
		if span, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	step := float64(span.Milliseconds()) / float64(n)
	var offs [sources]int64
	var maxT [sources]int64
	records := func(from, count int) []*kgo.Record {
		var out []*kgo.Record
		for i := from; i < from+count; i++ {
			src := rng.IntN(sources)
			e := event.Event{Type: event.QuestStarted, UserID: fmt.Sprint("u", rng.IntN(200_000)), DeviceID: fmt.Sprint("d", rng.IntN(100_000)),
				EventTime: t0 + int64(float64(i)*step) - rng.Int64N(5_000)}
			v := deviceEventValue(int32(src), &pipeline.DeviceEvent{Offset: offs[src], Lo: math.MinInt64, Record: event.AppendBinary(nil, &e)})
			offs[src]++
			maxT[src] = max(maxT[src], e.EventTime)
			out = append(out, &kgo.Record{Topic: TopicDevices, Key: []byte(e.DeviceID), Value: v})
			if i%1000 == 999 {
				for s := range sources {
					if maxT[s] > 0 {
						out = append(out, &kgo.Record{Topic: TopicDevices, Value: deviceMarkerValue(int32(s), maxT[s]-10_000)})
					}
				}
			}
		}
		return out
	}
	const more = 1000
	start := time.Now()
	for i := 0; i < n; i += 100_000 {
		produceAt(t, brokers, records(i, min(100_000, n-i)))
	}
	t.Logf("%d records produced in %v", kafkatest.EndOffsets(t, brokers, TopicDevices)[0], time.Since(start).Round(time.Millisecond))

	db := f.newDB(t)
	// run runs the stage in group until it has caught up with the
	// partition, and returns how long that took and the restore time.
	run := func(group, dir string, stop func() bool) (caughtUp time.Duration, restore, pause float64) {
		cfg := f.config(t, db, group, dir)
		cfg.Pipeline = nil // the defaults
		reg := prometheus.NewRegistry()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- runDeviceStage(ctx, cfg, sources, reg) }()
		ends := kafkatest.EndOffsets(t, brokers, TopicDevices)
		for !kafkatest.CommittedAtLeast(t, brokers, group+"-devices", TopicDevices, ends) {
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
			switch h := mf.Metric[0].GetHistogram(); mf.GetName() {
			case "questline_processor_device_restore_duration_seconds":
				restore = h.GetSampleSum()
			case "questline_processor_device_snapshot_pause_seconds":
				if h.GetSampleCount() > 0 {
					pause = h.GetSampleSum() / float64(h.GetSampleCount())
				}
			}
		}
		return caughtUp, restore, pause
	}
	dir := t.TempDir()
	end := kafkatest.EndOffsets(t, brokers, TopicDevices)[0]
	first, _, pause := run("first", dir, func() bool {
		dp, ok, err := readDeviceSnapshot(dir, 0, f.deviceBots(Config{Pipeline: ptr(pipeline.DefaultConfig())}), sources)
		return err == nil && ok && dp.next == end
	})
	fi, err := os.Stat(deviceSnapshotPath(dir, 0))
	if err != nil {
		t.Fatal(err)
	}
	produceAt(t, brokers, records(n, more))
	with, restore, _ := run("with", dir, nil)
	without, _, _ := run("without", t.TempDir(), nil)
	t.Logf("first run (from the start): caught up in %v; snapshot %d bytes, the loop paused %.3f s per snapshot", first.Round(time.Millisecond), fi.Size(), pause)
	t.Logf("restart with its snapshot: caught up in %v (restore %.3f s)", with.Round(time.Millisecond), restore)
	t.Logf("restart without a snapshot (re-read from the start): caught up in %v", without.Round(time.Millisecond))
}

func ptr[T any](v T) *T { return &v }
