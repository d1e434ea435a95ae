package kafka

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Catalog and lifecycle events (the server-only types: quest_defined,
// drop_scheduled, drop_started, drop_ended) are keyed by quest or drop id
// and land in one partition of questline.events, while every partition's
// processor needs them at a fixed place in its own log. So every partition
// gets a copy (docs/processors.md, "Catalog"). Copies are made by whoever
// produces the event — ingest, the load generator's Kafka sender — before
// the original (ProducerCopies), so they sit in every partition at the
// time the event was accepted, whatever the processors are doing. An
// original without CatalogCopiedHeader (written by another producer, or by
// questline before producers made copies) is copied by the processor that
// reads it (MissingCopies), which puts the copies where that processor
// happens to be in the other partitions' logs.

// CatalogCopyHeader marks a copy of a catalog or lifecycle event in
// questline.events. Its value is the partition of the original when a
// processor made the copy, and empty when the event's producer did (it
// writes the copies first and does not know the original's partition).
// The sink skips copies (the original is the event); other consumers
// should too.
const CatalogCopyHeader = "questline.catalog-copy"

// CatalogCopiedHeader marks an original catalog or lifecycle event whose
// producer wrote a copy of it to every partition of its topic, and had
// every copy acknowledged, before writing it: a processor reading it makes
// no copies. Its value is the number of partitions copied to.
const CatalogCopiedHeader = "questline.catalog-copied"

// ProducerCopies returns copies of the catalog event r, about to be
// produced to r.Topic, for every one of the topic's partitions partitions
// (the original's own included: its partition is decided when it is
// produced), and marks r with CatalogCopiedHeader. Produce the copies,
// wait until every one is acknowledged, then produce r: a log that holds
// the original then holds every copy. The copies share r's key and value.
// A client producing them must place records by their Partition field
// when they carry CatalogCopyHeader (NewClient's partitioner does).
func ProducerCopies(r *kgo.Record, partitions int32) []*kgo.Record {
	out := make([]*kgo.Record, partitions)
	for p := range partitions {
		out[p] = &kgo.Record{
			Topic: r.Topic, Partition: p, Key: r.Key, Value: r.Value,
			Headers: []kgo.RecordHeader{{Key: CatalogCopyHeader}},
		}
	}
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: CatalogCopiedHeader, Value: []byte(strconv.Itoa(int(partitions)))})
	return out
}

// MissingCopies returns the copies of the catalog event record r (an
// original of questline.events) that its topic's partitions partitions
// lack, for the processor reading r to write: for every other partition
// when its producer made none (the copy's header then names r's
// partition), else for the partitions past the count it copied to
// (CatalogCopiedHeader), added to the topic after its producer looked the
// count up. A header that does not parse counts as no copies: a copy too
// many changes nothing.
func MissingCopies(r *kgo.Record, partitions int32) []*kgo.Record {
	var from int32 // the first partition without a copy
	if v, ok := header(r, CatalogCopiedHeader); ok {
		if n, err := strconv.Atoi(string(v)); err == nil && n > 0 {
			from = int32(min(n, math.MaxInt32))
		}
	}
	var out []*kgo.Record
	origin := []byte(strconv.Itoa(int(r.Partition)))
	for p := from; p < partitions; p++ {
		if p != r.Partition {
			out = append(out, &kgo.Record{
				Topic: TopicEvents, Partition: p, Key: r.Key, Value: r.Value,
				Headers: []kgo.RecordHeader{{Key: CatalogCopyHeader, Value: origin}},
			})
		}
	}
	return out
}

// IsCatalogCopy reports whether r is a copy made by MissingCopies or
// ProducerCopies.
func IsCatalogCopy(r *kgo.Record) bool {
	_, ok := header(r, CatalogCopyHeader)
	return ok
}

// IsCatalogCopied reports whether r is an original whose producer made its
// copies (ProducerCopies).
func IsCatalogCopied(r *kgo.Record) bool {
	_, ok := header(r, CatalogCopiedHeader)
	return ok
}

// Partitioner returns NewClient's partitioner: a catalog copy
// (CatalogCopyHeader) goes to the partition it names, every other record
// as kgo.StickyKeyPartitioner(nil) places it (Kafka's murmur2 of the key;
// records without a key stick to a partition per batch).
func Partitioner() kgo.Partitioner { return copyPartitioner{kgo.StickyKeyPartitioner(nil)} }

type copyPartitioner struct{ keys kgo.Partitioner }

func (c copyPartitioner) ForTopic(t string) kgo.TopicPartitioner {
	return &copyTopicPartitioner{c.keys.ForTopic(t)}
}

type copyTopicPartitioner struct{ keys kgo.TopicPartitioner }

func (c *copyTopicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return IsCatalogCopy(r) || c.keys.RequiresConsistency(r)
}

// Partition places a catalog copy in the partition it names. A copy for a
// partition the client does not know (its metadata predates partitions
// added to the topic, or the count the copies were made for is wrong) gets
// an invalid choice, so kgo fails it: placed by its key instead, it would
// sit twice in one partition and never in the one it was made for, whose
// processor, the original saying it was copied, would never learn it.
func (c *copyTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if IsCatalogCopy(r) {
		if r.Partition < 0 || int(r.Partition) >= n {
			return -1
		}
		return int(r.Partition)
	}
	return c.keys.Partition(r, n)
}

// OnNewBatch passes the sticky partitioner's signal on (kgo calls it when
// a record without a key would start a new batch).
func (c *copyTopicPartitioner) OnNewBatch() {
	if o, ok := c.keys.(kgo.TopicPartitionerOnNewBatch); ok {
		o.OnNewBatch()
	}
}

// PartitionCount returns the number of partitions of topic.
func PartitionCount(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return 0, err
	}
	t, ok := td[topic]
	if !ok || t.Err != nil || len(t.Partitions) == 0 {
		return 0, fmt.Errorf("kafka: topic %s missing (create it with the role's topics)", topic)
	}
	return int32(len(t.Partitions)), nil
}

// CopyMaker makes the copies that a producer of catalog events writes
// before each of them (ProducerCopies), for every partition of its topic.
// It looks the partition count up at most once a minute: partitions are
// added rarely, and the processors copy an original to those added since
// its producer counted (MissingCopies). Safe for concurrent use.
type CopyMaker struct {
	cl    *kgo.Client
	topic string
	mu    sync.Mutex
	n     int32 // 0: look it up
	at    time.Time
}

// NewCopyMaker returns a CopyMaker for records of topic produced by cl (a
// client of NewClient, whose partitioner places the copies).
func NewCopyMaker(cl *kgo.Client, topic string) *CopyMaker {
	return &CopyMaker{cl: cl, topic: topic}
}

// Copies returns r's copies for every partition of the topic and marks r
// as copied (ProducerCopies): produce them, wait for every
// acknowledgement, then produce r.
func (c *CopyMaker) Copies(ctx context.Context, r *kgo.Record) ([]*kgo.Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 || time.Since(c.at) >= time.Minute {
		n, err := PartitionCount(ctx, c.cl, c.topic)
		if err != nil {
			return nil, fmt.Errorf("kafka: partitions of %s: %w", c.topic, err)
		}
		c.n, c.at = n, time.Now()
	}
	return ProducerCopies(r, c.n), nil
}

// Failed is for a produce of copies that failed: a copy the client cannot
// place (Partitioner: its metadata older than the count) fails until both
// agree, so both are looked up again before the next copies.
func (c *CopyMaker) Failed() {
	c.mu.Lock()
	c.n = 0
	c.mu.Unlock()
	c.cl.ForceMetadataRefresh()
}
