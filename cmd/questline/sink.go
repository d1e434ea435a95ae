package main

import (
	"context"
	"flag"
	"io"
	"time"

	"github.com/questline/questline/kafka"
	"github.com/questline/questline/sinks/clickhouse"
)

// sinkFlags are the sink role's own flags, with QUESTLINE_SINK_* variables.
type sinkFlags struct {
	group     string
	batchRows int
	batchWait time.Duration
}

func (f *sinkFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.group, "sink-group", "questline-sink", "Kafka consumer group of the ClickHouse sink; sink processes in one group share the partitions")
	fs.IntVar(&f.batchRows, "sink-batch-rows", 100_000, "most records per ClickHouse batch")
	fs.DurationVar(&f.batchWait, "sink-batch-wait", time.Second, "longest a consumed record waits for its batch to be written")
}

// runSink is the sink role: questline.events and questline.events.dlq into
// the ClickHouse tables events and rejected_events.
func runSink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f sinkFlags
	a, err := newApp("sink", args, stderr, f.register)
	if err != nil {
		return err
	}
	defer a.close()
	brokers, err := a.kafkaBrokers(ctx)
	if err != nil {
		return err
	}
	if err := a.ensureTopics(ctx, brokers, kafka.CoreTopics...); err != nil {
		return err
	}
	if err := a.serveAdmin(); err != nil {
		return err
	}
	s, err := clickhouse.NewSink(ctx, clickhouse.SinkConfig{
		Brokers:   brokers,
		DSN:       a.cfg.ClickHouseDSN,
		Group:     f.group,
		BatchRows: f.batchRows,
		BatchWait: f.batchWait,
	}, a.reg, a.log)
	if err != nil {
		return err
	}
	a.onClose(s.Close)
	a.readyCheck("clickhouse", s.Ready)
	a.log.Info("sink started", "group", f.group)
	return s.Run(ctx)
}
