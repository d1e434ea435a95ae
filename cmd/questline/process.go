package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/questline/questline/processors"
	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/pipeline"
)

// processFlags are the processor role's own flags (QUESTLINE_PROCESS_* and
// QUESTLINE_SNAPSHOT_DIR).
type processFlags struct {
	group            string
	snapshotDir      string
	flushInterval    time.Duration
	snapshotInterval time.Duration
	idleTimeout      time.Duration
	outOfOrder       time.Duration
	botThreshold     botThreshold
}

// botThreshold is -process-bot-threshold: a score in (0, 1], checked when
// it is set (from the flag or QUESTLINE_PROCESS_BOT_THRESHOLD).
type botThreshold float64

func (t *botThreshold) String() string { return strconv.FormatFloat(float64(*t), 'g', -1, 64) }

func (t *botThreshold) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return errors.New("not a number")
	}
	if err := bots.ValidThreshold(v); err != nil {
		return err
	}
	*t = botThreshold(v)
	return nil
}

func (f *processFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.group, "process-group", "questline-processors", "Kafka consumer group of the processors; processes in one group share the partitions")
	fs.StringVar(&f.snapshotDir, "snapshot-dir", "", "where partition state snapshots live; every processor process must see the same directory (default <data-dir>/snapshots)")
	fs.DurationVar(&f.flushInterval, "process-flush-interval", time.Second, "how often window rows are emitted and written")
	fs.DurationVar(&f.snapshotInterval, "process-snapshot-interval", time.Minute, "how often each partition's state is snapshotted and its offset committed (one partition per flush at most, the one waiting longest)")
	fs.DurationVar(&f.idleTimeout, "process-idle-timeout", 10*time.Second, "a partition without records this long, and none left to read, gets a watermark record (wall clock − the out-of-order bound) so its windows close; raise it for backfills of old events")
	f.botThreshold = botThreshold(bots.DefaultConfig().Threshold)
	fs.Var(&f.botThreshold, "process-bot-threshold", "a `score` in (0, 1]: bot_signals flags an entity (user or device) whose score reaches it, and flagged users leave the clean scope (SPEC §5's configurable threshold)")
	fs.DurationVar(&f.outOfOrder, "process-out-of-order", 30*time.Second, "the watermark's bound on disorder: a window's first row is written this long after its end; events later than that still update it until the allowed lateness (10 min), so a smaller bound gives fresher first rows at the cost of more row rewrites")
}

// config returns the processors' configuration for the app.
func (f *processFlags) config(a *app, brokers []string) processors.Config {
	dir := f.snapshotDir
	if dir == "" {
		dir = filepath.Join(a.cfg.DataDir, "snapshots")
	}
	pc := pipeline.DefaultConfig()
	pc.OutOfOrder = f.outOfOrder
	pc.Bots.Threshold = float64(f.botThreshold)
	return processors.Config{
		Pipeline:         &pc,
		Brokers:          brokers,
		ClickHouseDSN:    a.cfg.ClickHouseDSN,
		SnapshotDir:      dir,
		Group:            f.group,
		FlushInterval:    f.flushInterval,
		SnapshotInterval: f.snapshotInterval,
		IdleTimeout:      f.idleTimeout,
		Partitions:       int32(a.cfg.KafkaPartitions),
		Replication:      int16(a.cfg.KafkaReplication),
	}
}

// runProcess is the processor role: questline.events through the window
// processors into the ClickHouse window tables.
func runProcess(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f processFlags
	a, err := newApp("process", args, stderr, f.register)
	if err != nil {
		return err
	}
	defer a.close()
	brokers, err := a.kafka(ctx, processors.Topics...)
	if err != nil {
		return err
	}
	// /readyz: Kafka and ClickHouse answer, on the processors' own clients
	// (with no check it was always "ready", also while neither did);
	// until the processors have their clients, not ready.
	starting := func(context.Context) error { return errors.New("starting") }
	a.readyCheck("kafka", starting)
	a.readyCheck("clickhouse", starting)
	cfg := f.config(a, brokers)
	cfg.ReadyCheck = a.readyCheck
	if err := a.serveAdmin(); err != nil {
		return err
	}
	return processors.Run(ctx, cfg, a.reg, a.log)
}
