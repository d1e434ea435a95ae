package kafka

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// NewClient returns a franz-go client for brokers with questline's shared
// settings, followed by opts (which win):
//   - acks=all with the idempotent producer (kgo's default, stated here so
//     that no role weakens it by accident): a produce that returns nil is
//     on every in-sync replica and never duplicated by a retry;
//   - records hashed to partitions by key with Kafka's murmur2 partitioner,
//     so non-Go producers (kcat, Kafka Connect) agree on user placement,
//     except catalog copies, placed where they say (Partitioner);
//   - a bounded produce linger (5 ms) and request timeouts, so a stuck
//     broker surfaces as an error instead of a hang.
func NewClient(brokers []string, logger *slog.Logger, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(Partitioner()),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.ProducerBatchMaxBytes(1 << 20),
		kgo.RecordDeliveryTimeout(30 * time.Second),
		kgo.RequestTimeoutOverhead(10 * time.Second),
		kgo.ClientID("questline"),
	}
	if logger != nil {
		base = append(base, kgo.WithLogger(kgoLogger{logger}))
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new client: %w", err)
	}
	return cl, nil
}

// kgoLogger adapts slog to kgo.Logger, passing on warnings and errors only:
// kgo's info level is per-connection chatter.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	switch level {
	case kgo.LogLevelError:
		k.l.Error(msg, keyvals...)
	default:
		k.l.Warn(msg, keyvals...)
	}
}
