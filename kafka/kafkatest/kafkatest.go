// Package kafkatest starts a real Kafka-protocol broker (the embedded kfake
// broker, in-process, on a free loopback port) for tests. Nothing here is a
// mock: clients talk the Kafka protocol over TCP.
package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/questline/questline/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Broker is a running test broker.
type Broker struct {
	*kafka.Embedded
	Dir string
}

// Option configures New.
type Option func(*options)

type options struct {
	partitions int32
	dir        string
	topics     []kafka.Topic
}

// Partitions sets the partition count of the created topics. Default 4.
func Partitions(n int32) Option { return func(o *options) { o.partitions = n } }

// DataDir reuses dir as the broker's data directory (to restart a broker
// on the data of a previous one). Default: a fresh t.TempDir().
func DataDir(dir string) Option { return func(o *options) { o.dir = dir } }

// Topics adds topics to create besides kafka.CoreTopics.
func Topics(ts ...kafka.Topic) Option { return func(o *options) { o.topics = append(o.topics, ts...) } }

// New starts a broker on 127.0.0.1 with a free port and its data on disk,
// creates kafka.CoreTopics (and any Topics), and closes it at cleanup.
func New(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	o := options{partitions: 4}
	for _, opt := range opts {
		opt(&o)
	}
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	e, err := kafka.StartEmbedded(kafka.EmbeddedAddr("127.0.0.1:0"), kafka.EmbeddedDataDir(o.dir))
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	t.Cleanup(e.Close)
	cl, err := kafka.NewClient(e.Addrs(), nil)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := append(append([]kafka.Topic{}, kafka.CoreTopics...), o.topics...)
	if err := kafka.EnsureTopics(ctx, cl, o.partitions, 1, topics...); err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	return &Broker{Embedded: e, Dir: o.dir}
}

// CommittedAtEnd reports whether group has committed the end offset of
// every partition of topic: a consumer has worked through all of it. An
// error talking to the broker counts as not yet.
func CommittedAtEnd(t testing.TB, brokers []string, group, topic string) bool {
	t.Helper()
	ends := EndOffsets(t, brokers, topic)
	return ends != nil && CommittedAtLeast(t, brokers, group, topic, ends)
}

// EndOffsets returns the end offset of every partition of topic, or nil
// when the broker cannot tell.
func EndOffsets(t testing.TB, brokers []string, topic string) map[int32]int64 {
	t.Helper()
	adm, ctx, done := admin(t, brokers)
	defer done()
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil
	}
	ends := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			ends[o.Partition] = o.Offset
		}
	})
	return ends
}

// Records returns every record of topic up to its end offsets at the
// call, in offset order within each partition; it fails t when they are
// not all read within 30 s.
func Records(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ends := EndOffsets(t, brokers, topic)
	cl, err := kafka.NewClient(brokers, nil, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	next := map[int32]int64{}
	for {
		done := true
		for p, end := range ends {
			if next[p] < end {
				done = false
			}
		}
		if done {
			return out
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s timed out", topic)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < ends[r.Partition] {
				out = append(out, r)
			}
			next[r.Partition] = r.Offset + 1
		})
	}
}

// CommittedAtLeast reports whether group has committed, for every partition
// in want, at least that offset of topic: a consumer has worked through
// the topic as it was when want was taken. An error counts as not yet.
func CommittedAtLeast(t testing.TB, brokers []string, group, topic string, want map[int32]int64) bool {
	t.Helper()
	adm, ctx, done := admin(t, brokers)
	defer done()
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return false
	}
	for p, end := range want {
		if end == 0 {
			continue // nothing to consume
		}
		c, ok := committed.Lookup(topic, p)
		if !ok || c.At < end {
			return false
		}
	}
	return true
}

// admin returns an admin client of brokers and a context for its calls
// (30 s); done releases both.
func admin(t testing.TB, brokers []string) (*kadm.Client, context.Context, func()) {
	t.Helper()
	cl, err := kafka.NewClient(brokers, nil)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	return kadm.NewClient(cl), ctx, func() { cancel(); cl.Close() }
}
