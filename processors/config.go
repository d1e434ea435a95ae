// Package processors is the runnable window-processor role: it consumes
// questline.events in a consumer group, runs a pipeline per assigned
// partition, snapshots state with the input offset it reflects, and writes
// the rows to ClickHouse through the shared writer; a second stage merges
// the partial rows of all source partitions (docs/processors.md).
package processors

import (
	"context"
	"errors"
	"time"

	"github.com/questline/questline/processors/pipeline"
)

// Topic names of the role (all prefixed questline.).
const (
	// TopicPartials carries partial window rows, keyed by table, row
	// identity and source partition.
	TopicPartials = "questline.window.partials"
	// TopicCatalog carries catalog and drop lifecycle events, forwarded
	// there by the source stage from questline.events (compacted, keyed by
	// event id); every process reads all of it at start.
	TopicCatalog = "questline.catalog"
)

// Config configures Run.
type Config struct {
	// Brokers are the Kafka brokers. Required.
	Brokers []string
	// ClickHouseDSN is the database the rows go to. Required.
	ClickHouseDSN string
	// SnapshotDir holds the partition snapshots; the processes of a group
	// should see the same directory (one that does not restores an older
	// snapshot, or none, and re-reads more of the log). Required.
	SnapshotDir string
	// Group is the consumer group. Default "questline-processors"; the
	// merge stage uses Group + "-merge".
	Group string
	// Pipeline configures the metrics. Default pipeline.DefaultConfig().
	Pipeline *pipeline.Config
	// FlushInterval is how often rows are emitted and written. Default 1 s.
	FlushInterval time.Duration
	// SnapshotInterval is how often each partition's state is snapshotted
	// and its offset committed. At most one partition's snapshot is taken
	// per flush (the one waiting longest) and one is written at a time, so
	// a process owning many partitions snapshots each one every partitions
	// × max(FlushInterval, a snapshot's write time) at least. Default 1 min.
	// Processing stops only while a snapshot's state is frozen (the
	// per-user state copied); the encoding and the write happen in the
	// background.
	SnapshotInterval time.Duration
	// IdleTimeout: a partition that has had no record for this long, and
	// has none left to read, gets a watermark record (kafka.WatermarkRecord)
	// at the wall clock less the out-of-orderness bound, so its windows
	// close, its conversions are attributed and its final lift rows are
	// written without further events. The record is part of the log: every
	// reader applies it at the same place, so results stay exact across
	// replays and restarts. Default 10 s. Raise it for a backfill of old
	// events that pauses between batches (events older than a watermark
	// record by more than a window's lateness are late).
	IdleTimeout time.Duration
	// Partitions and Replication create the role's topics (Topics) when
	// they are missing. Default 4 and 1.
	Partitions  int32
	Replication int16
	// Now is the wall clock. Default time.Now.
	Now func() time.Time
	// ReadyCheck, if set, receives the role's readiness checks by name,
	// on the role's own clients, once it has them: "kafka" and
	// "clickhouse". Default none.
	ReadyCheck func(name string, check func(context.Context) error)
}

func (c *Config) validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("processors: no brokers")
	case c.ClickHouseDSN == "":
		return errors.New("processors: no ClickHouse DSN")
	case c.SnapshotDir == "":
		return errors.New("processors: no snapshot directory")
	}
	if c.Group == "" {
		c.Group = "questline-processors"
	}
	if c.Pipeline == nil {
		p := pipeline.DefaultConfig()
		c.Pipeline = &p
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = time.Second
	}
	if c.SnapshotInterval <= 0 {
		c.SnapshotInterval = time.Minute
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Partitions <= 0 {
		c.Partitions = 4
	}
	if c.Replication <= 0 {
		c.Replication = 1
	}
	return nil
}
