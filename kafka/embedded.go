package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Embedded is the in-process Kafka-protocol broker of the default run
// (franz-go's kfake), with its data on disk so that it survives a restart.
// Any Kafka client (kcat, librdkafka, the JVM client) can connect to it.
type Embedded struct {
	c    *kfake.Cluster
	lock *os.File // the data directory's lock (nil: in memory)
}

// EmbeddedOpt configures StartEmbedded.
type EmbeddedOpt func(*embeddedCfg)

type embeddedCfg struct {
	addr       string
	dir        string
	syncWrites bool
	logger     *slog.Logger
	partitions int
}

// EmbeddedAddr sets the listen address; the broker advertises the same
// address to clients, so it must be a concrete interface, not 0.0.0.0.
// Default "127.0.0.1:9092". Port 0 picks a free port (see Addrs).
func EmbeddedAddr(addr string) EmbeddedOpt { return func(c *embeddedCfg) { c.addr = addr } }

// EmbeddedDataDir sets where the broker keeps its log segments and group
// offsets. Default "" keeps everything in memory (tests only).
func EmbeddedDataDir(dir string) EmbeddedOpt { return func(c *embeddedCfg) { c.dir = dir } }

// EmbeddedSyncWrites fsyncs every produced batch before acknowledging it,
// which survives a machine crash, not just a process crash. Default off:
// batches are written to the OS before the ack, which survives kill -9.
func EmbeddedSyncWrites(on bool) EmbeddedOpt { return func(c *embeddedCfg) { c.syncWrites = on } }

// EmbeddedLogger sets the logger for the broker's warnings. Default none.
func EmbeddedLogger(l *slog.Logger) EmbeddedOpt { return func(c *embeddedCfg) { c.logger = l } }

// EmbeddedDefaultPartitions sets the partition count of auto-created
// topics. Default 8.
func EmbeddedDefaultPartitions(n int) EmbeddedOpt { return func(c *embeddedCfg) { c.partitions = n } }

// StartEmbedded starts the embedded broker.
func StartEmbedded(opts ...EmbeddedOpt) (*Embedded, error) {
	cfg := embeddedCfg{addr: "127.0.0.1:9092", partitions: 8}
	for _, o := range opts {
		o(&cfg)
	}
	host, _, err := net.SplitHostPort(cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("kafka: embedded address %q: %w", cfg.addr, err)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return nil, fmt.Errorf("kafka: embedded address %q: the broker advertises its listen address, so it must be a concrete one (e.g. 127.0.0.1:9092)", cfg.addr)
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("questline-embedded"),
		kfake.DefaultNumPartitions(cfg.partitions),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, cfg.addr)
		}),
	}
	var lock *os.File
	if cfg.dir != "" {
		dir := filepath.Clean(cfg.dir)
		if lock, err = lockDataDir(dir, cfg.addr); err != nil {
			return nil, err
		}
		kopts = append(kopts, kfake.DataDir(dir))
	}
	if cfg.syncWrites {
		kopts = append(kopts, kfake.SyncWrites())
	}
	if cfg.logger != nil {
		kopts = append(kopts, kfake.WithLogger(kfakeLogger{cfg.logger}))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		unlock(lock)
		return nil, fmt.Errorf("kafka: start embedded broker: %w", err)
	}
	if err := keepCompacted(c.ListenAddrs()); err != nil {
		c.Close()
		unlock(lock)
		return nil, fmt.Errorf("kafka: start embedded broker: %w", err)
	}
	return &Embedded{c: c, lock: lock}, nil
}

// lockDataDir takes an exclusive lock on the data directory (its file
// .lock, see lockFile), held until Close: two brokers on one directory
// append to the same segment files, and one's acknowledged records are lost
// at the next start (kfake itself takes no lock). When another process
// holds it and serves addr, the error wraps syscall.EADDRINUSE, as if the
// port had been found taken: the caller connects to that broker as a
// client. A holder that is starting (locked, not yet listening) or
// stopping (no longer listening, still saving) is waited for up to 5 s.
func lockDataDir(dir, addr string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil { // the event log, snapshots: ours to read only
		return nil, err
	}
	// A directory made before session 14 (0755) is made private too:
	// kfake writes its files 0644 (helper-41). Best effort: a directory of
	// another user stays as it is.
	_ = os.Chmod(dir, 0o700)
	deadline := time.Now().Add(5 * time.Second)
	for {
		f, held, err := lockFile(filepath.Join(dir, ".lock"))
		switch {
		case err != nil:
			return nil, fmt.Errorf("kafka: embedded broker: locking %s: %w", dir, err)
		case !held:
			return f, nil
		}
		if c, derr := net.DialTimeout("tcp", addr, time.Second); derr == nil {
			c.Close()
			return nil, fmt.Errorf("kafka: embedded broker: %s is served by the process that holds %s: %w", addr, dir, syscall.EADDRINUSE)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("kafka: embedded broker: data directory %s is in use by another process, which does not serve %s: give this one another data directory, or that process's broker address", dir, addr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func unlock(f *os.File) {
	if f != nil {
		f.Close() // closing the descriptor releases the flock
	}
}

// keepCompacted sets retention.ms=-1 on the compacted topics of a data
// directory that lack it: EnsureTopics creates them so, but a directory
// written by an older questline has them with the broker's default
// retention (7 days), which kfake, unlike Kafka, applies to compacted
// topics too.
func keepCompacted(addrs []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return err
	}
	if len(topics) == 0 {
		return nil
	}
	described, err := adm.DescribeTopicConfigs(ctx, topics.Names()...)
	if err != nil {
		return err
	}
	forever := "-1"
	var alter []string
	for _, rc := range described {
		if rc.Err != nil {
			return rc.Err
		}
		policy, _ := configValue(rc.Configs, "cleanup.policy")
		retention, _ := configValue(rc.Configs, "retention.ms")
		if policy == "compact" && retention != forever {
			alter = append(alter, rc.Name)
		}
	}
	if len(alter) == 0 {
		return nil
	}
	resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &forever}}, alter...)
	if err != nil {
		return err
	}
	for _, r := range resp {
		if r.Err != nil {
			return fmt.Errorf("retention of %s: %w", r.Name, r.Err)
		}
	}
	return nil
}

// Addrs returns the broker addresses clients should use.
func (e *Embedded) Addrs() []string { return e.c.ListenAddrs() }

// ApplyRetention deletes now what the topics' retention no longer keeps
// (the broker does it by itself every hour: Kafka's log.cleaner.backoff.ms
// default). Topics keep 7 days (retention.ms, Kafka's default) unless
// created otherwise; questline's compacted topics keep everything
// (EnsureTopics).
func (e *Embedded) ApplyRetention() { e.c.ApplyRetention() }

// Close stops the broker, flushing its data to disk.
func (e *Embedded) Close() {
	e.c.Close()
	unlock(e.lock)
}

type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		k.l.Error(fmt.Sprintf(msg, args...), "component", "kafka-embedded")
	case kfake.LogLevelWarn:
		k.l.Warn(fmt.Sprintf(msg, args...), "component", "kafka-embedded")
	}
}
