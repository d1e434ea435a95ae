package main

import (
	"context"
	"flag"
	"io"
	"time"

	"github.com/questline/questline/sinks/clickhouse"
)

// sinkFlags are the sink role's own flags, with QUESTLINE_SINK_* variables.
type sinkFlags struct {
	group     string
	batchRows int
	batchWait time.Duration
	inFlight  int
}

func (f *sinkFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.group, "sink-group", "questline-sink", "Kafka consumer group of the ClickHouse sink; sink processes in one group share the partitions")
	fs.IntVar(&f.batchRows, "sink-batch-rows", 100_000, "most records per ClickHouse batch")
	fs.DurationVar(&f.batchWait, "sink-batch-wait", time.Second, "longest a consumed record waits for its batch to be written")
	fs.IntVar(&f.inFlight, "sink-inserts-in-flight", 2, "batches inserting at once while the next fills (each batch in memory costs about 340 bytes per record plus the record)")
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
	brokers, err := a.kafka(ctx)
	if err != nil {
		return err
	}
	if err := a.serveAdmin(); err != nil {
		return err
	}
	s, err := f.newSink(ctx, a, brokers)
	if err != nil {
		return err
	}
	a.log.Info("sink started", "group", f.group)
	return s.Run(ctx)
}

// newSink builds the sink from the flags, closed with the app and checked
// by /readyz.
func (f *sinkFlags) newSink(ctx context.Context, a *app, brokers []string) (*clickhouse.Sink, error) {
	s, err := clickhouse.NewSink(ctx, clickhouse.SinkConfig{
		Brokers:   brokers,
		DSN:       a.cfg.ClickHouseDSN,
		Group:     f.group,
		BatchRows: f.batchRows,
		BatchWait: f.batchWait,

		InsertsInFlight: f.inFlight,
	}, a.reg, a.log)
	if err != nil {
		return nil, err
	}
	a.onClose(s.Close)
	a.readyCheck("clickhouse", s.Ready)
	return s, nil
}
