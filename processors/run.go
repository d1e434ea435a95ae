package processors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/processors/catalog"
	ch "github.com/questline/questline/sinks/clickhouse"
)

// Run runs the processor role until ctx ends: the source stage (every
// partition of questline.events this process is assigned) and the merge
// stage (every partition of the partials topic it is assigned). Run more
// processes with the same Config to scale out. When ctx ends Run returns
// without flushing, as after a crash: the snapshots and the determinism of
// the pipelines make that safe (docs/processors.md).
func Run(ctx context.Context, cfg Config, reg prometheus.Registerer, logger *slog.Logger) error {
	err := run(ctx, cfg, reg, logger)
	if ctx.Err() != nil {
		return nil // stopped, at whatever step: not an error
	}
	return err
}

func run(ctx context.Context, cfg Config, reg prometheus.Registerer, logger *slog.Logger) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := newMetrics(reg, cfg.Now)

	admin, err := kafka.NewClient(cfg.Brokers, logger)
	if err != nil {
		return err
	}
	defer admin.Close()
	if cfg.ReadyCheck != nil {
		cfg.ReadyCheck("kafka", admin.Ping)
	}
	sources, err := kafka.PartitionCount(ctx, admin, kafka.TopicEvents)
	if err != nil {
		return err
	}
	// The device flags go to the partition of questline.events that holds
	// the user's events: the topic is made with as many partitions, and
	// one made before must have them.
	topics := slices.Clone(Topics)
	for i := range topics {
		if topics[i].Name == TopicDeviceFlags {
			topics[i].Partitions = sources
		}
	}
	if err := kafka.EnsureTopics(ctx, admin, cfg.Partitions, cfg.Replication, topics...); err != nil {
		return err
	}
	partials, err := kafka.PartitionCount(ctx, admin, TopicPartials)
	if err != nil {
		return err
	}
	devices, err := kafka.PartitionCount(ctx, admin, TopicDevices)
	if err != nil {
		return err
	}
	if n, err := kafka.PartitionCount(ctx, admin, TopicDeviceFlags); err != nil {
		return err
	} else if n != sources {
		return fmt.Errorf("processors: %s has %d partitions and %s %d: they must be equal (add partitions to %s)", TopicDeviceFlags, n, kafka.TopicEvents, sources, TopicDeviceFlags)
	}
	if cfg.Pipeline.Clean {
		short, events, flags, err := flagsRetentionShort(ctx, admin)
		switch {
		case err != nil:
			logger.Warn("processors: could not compare the retention of the device flags with the events'", "err", err)
		case short:
			logger.Warn("processors: "+TopicDeviceFlags+" may keep its records less long than "+kafka.TopicEvents+": a partition rebuilt without a snapshot would miss the device flags of its oldest events and count those users in the clean scope; set its retention.ms to at least the events' (or -1)",
				"events_retention_ms", events, "device_flags_retention_ms", flags)
		}
	}
	pcfg := *cfg.Pipeline
	pcfg.ForwardDevices = true
	pcfg.DevicePartitions = int(devices)
	cfg.Pipeline = &pcfg
	master := catalog.New()
	if err := loadCatalog(ctx, cfg.Brokers, logger, admin, master); err != nil {
		return err
	}

	c, err := ch.Open(ctx, cfg.ClickHouseDSN, reg, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	if cfg.ReadyCheck != nil {
		cfg.ReadyCheck("clickhouse", func(ctx context.Context) error { return c.Conn().Ping(ctx) })
	}
	if n, err := removeStaleTemps(cfg.SnapshotDir, cfg.Now()); err != nil || n > 0 {
		logger.Info("processors: removed temporary snapshot files left by a crashed writer", "count", n, "err", err)
	}
	src, err := newSource(&cfg, logger, m, c, master, partials, devices, sources)
	if err != nil {
		return err
	}
	mrg, err := newMergeStage(&cfg, logger, m, c, sources)
	if err != nil {
		src.close()
		return err
	}
	dev, err := newDeviceStage(&cfg, logger, m, c, sources)
	if err != nil {
		src.close()
		mrg.cl.Close()
		return err
	}

	var wg sync.WaitGroup
	errs := make([]error, 3)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i, fn := range []func(context.Context) error{src.run, mrg.run, dev.run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil {
				errs[i] = err
				cancel()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Topics are the topics the role needs besides kafka.CoreTopics.
var Topics = []kafka.Topic{{Name: TopicPartials, Compact: true}, {Name: TopicCatalog, Compact: true}, {Name: TopicDevices}, {Name: TopicDeviceFlags}}

// loadCatalog reads the catalog topic up to its current end into cat.
func loadCatalog(ctx context.Context, brokers []string, logger *slog.Logger, admin *kgo.Client, cat *catalog.Catalog) error {
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, TopicCatalog)
	if err != nil {
		return err
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl, err := kafka.NewClient(brokers, logger, kgo.ConsumeTopics(TopicCatalog), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	var e event.Event
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for len(want) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("processors: reading the catalog: %w", err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if event.DecodeBinary(r.Value, &e) == nil {
				cat.Apply(&e)
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return nil
}

// commitPolled commits the offsets of the records polled so far, once the
// rows they produced are written. The merge and device stages resume where
// their snapshots say (from the start without one), so these commits never
// decide where they resume: they show the stages' consumer lag to
// operators and tell tests that a stage has caught up.
func commitPolled(ctx context.Context, cl *kgo.Client, log *slog.Logger, stage string) {
	if err := cl.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
		log.Warn("processors: offset commit failed (informational only)", "stage", stage, "err", err)
	}
}
