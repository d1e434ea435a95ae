package processors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cleanFetchBytes is the most a logReader asks for in one Fetch, and so
// about what it holds per partition (compressed; its records decompressed,
// and a logRecord each, take more).
const cleanFetchBytes = 1 << 20

// cleanRetryFor is how long a logReader retries a record before it gives
// up with an error (which stops the source stage, and a restart tries
// again): long enough for a leader election, short enough that a broker
// or topic that stays wrong does not hold the stage, its lock and its
// group's rebalances without a word.
var cleanRetryFor = time.Minute

// logReader reads the records of one partition of questline.events again,
// by offset, for the clean pass (pipeline.Partition.ReadCleanFrom), which
// takes an event about the clean lag (21 min by default) after the main
// pass did: so the pass holds each waiting event's offset, a few bytes,
// not its record. It issues plain Fetch requests to the partition's
// leader from the asked offset, one response at a time, on the caller's
// goroutine: it never reads ahead of what the clean pass asks for, holds
// one response's records (up to cleanFetchBytes), and needs no consumer
// of its own to pause, seek or rebalance.
//
// cl must not be the stage's consumer: a broker answers a connection's
// requests in order, and kgo sends a client's fetches on one connection
// per broker, where the consumer's long poll (up to 5 s) would hold
// every read back (measured: 5 s a read, the processors' tests 4× slower).
type logReader struct {
	cl        *kgo.Client
	ctx       context.Context // the source stage's: canceled at its end
	topic     string
	known     bool     // whether id and leader are looked up
	id        [16]byte // the topic's id (Fetch v13 and later name topics by id; zero from a broker without ids)
	leader    int32    // the partition's leader
	partition int32
	fetched   prometheus.Histogram // the Fetch requests' durations
	decomp    kgo.Decompressor
	log       *slog.Logger

	recs []logRecord // the last response's, from offset
	i    int         // the next to look at
}

// read returns the value of the record at offset. The records between the
// last one asked for and offset (duplicates, catalog events, watermark
// records: none of them queued) are passed over. An error means the
// record is not in the log any more (retention shorter than the clean lag
// plus the snapshot's age), the stage is stopping, or a retriable error
// lasted cleanRetryFor (fetch).
func (r *logReader) read(offset int64) ([]byte, error) {
	for {
		for r.i < len(r.recs) && r.recs[r.i].offset < offset {
			r.i++
		}
		if r.i < len(r.recs) {
			rec := r.recs[r.i]
			if rec.offset != offset {
				return nil, fmt.Errorf("partition %d: no record at offset %d (the log goes from %d to %d)", r.partition, offset, r.recs[0].offset, rec.offset)
			}
			r.i++
			if r.i == len(r.recs) {
				// (rec stays valid): an idle partition holds no response.
				clear(r.recs)
				r.recs = r.recs[:0]
			}
			return rec.value, nil
		}
		recs, err := r.fetch(offset)
		if err != nil {
			return nil, err
		}
		r.recs, r.i = recs, 0
	}
}

// fetch returns the records from offset in one Fetch response (at least
// one record), retrying for cleanRetryFor what a broker may answer while
// leadership moves (an empty response included: a new leader's high
// watermark still behind the offset the main pass read).
func (r *logReader) fetch(offset int64) ([]logRecord, error) {
	backoff := 50 * time.Millisecond
	deadline := time.Now().Add(cleanRetryFor)
	for attempt := 1; ; attempt++ {
		recs, retry, err := r.fetchOnce(offset)
		if err == nil && len(recs) > 0 {
			return recs, nil
		}
		if err == nil {
			err = fmt.Errorf("partition %d: offset %d: no records", r.partition, offset)
		}
		if !retry || time.Now().After(deadline) {
			return nil, fmt.Errorf("%w (attempt %d)", err, attempt)
		}
		if attempt == 1 || attempt%10 == 0 {
			r.log.Warn("processors: the clean pass's read failed; retrying", "partition", r.partition, "offset", offset, "attempt", attempt, "err", err)
		}
		r.known = false // look the leader up again
		select {
		case <-r.ctx.Done():
			return nil, fmt.Errorf("partition %d: offset %d: %w (last: %v)", r.partition, offset, r.ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// outOfRange explains an OffsetOutOfRange answer for offset in a
// partition of topic: a broker need not say where its log starts and ends
// in it (Kafka answers -1), so it asks.
func outOfRange(ctx context.Context, cl *kgo.Client, topic string, partition int32, offset int64, cause error) error {
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	var ends kadm.ListedOffsets
	if err == nil {
		ends, err = adm.ListEndOffsets(ctx, topic)
	}
	if err != nil {
		return fmt.Errorf("partition %d: offset %d is out of the log's range (listing its bounds: %v): %w", partition, offset, err, cause)
	}
	start, _ := starts.Lookup(topic, partition)
	end, _ := ends.Lookup(topic, partition)
	if offset < start.Offset {
		keep := "keep " + topic + " longer than the clean pass's lag plus the snapshots' age"
		if topic == TopicDeviceFlags {
			keep = "keep " + topic + " longer than the snapshots' age"
		}
		return fmt.Errorf("partition %d: offset %d is gone from the log of %s (it starts at %d): %s: %w",
			partition, offset, topic, start.Offset, keep, cause)
	}
	return fmt.Errorf("partition %d: offset %d is past the log's end (%d): not the log the offset came from: %w", partition, offset, end.Offset, cause)
}

// fetchOnce issues one Fetch and decodes its records. retry reports an
// error worth retrying.
func (r *logReader) fetchOnce(offset int64) (recs []logRecord, retry bool, err error) {
	p, retry, err := r.fetchPartition(offset)
	if err != nil {
		return nil, retry, err
	}
	// Into the last response's slice: its records were all read.
	if recs, _, err = appendBatchRecords(r.recs[:0], p.RecordBatches, offset, r.decomp); err != nil {
		return nil, false, fmt.Errorf("partition %d: fetch at %d: %w", r.partition, offset, err)
	}
	return recs, len(recs) == 0, nil // none: retried (see fetch)
}

// fetchPartition issues one Fetch and returns the partition's answer.
func (r *logReader) fetchPartition(offset int64) (_ *kmsg.FetchResponseTopicPartition, retry bool, err error) {
	if !r.known {
		id, leaders, err := topicLeaders(r.ctx, r.cl, r.topic)
		if err != nil {
			return nil, true, fmt.Errorf("partition %d: %w", r.partition, err)
		}
		leader, ok := leaders[r.partition]
		if !ok {
			return nil, true, fmt.Errorf("partition %d: no leader in the topic's metadata", r.partition)
		}
		r.id, r.leader, r.known = id, leader, true
	}
	// The records are there: a broker may wait up to 100 ms for one.
	req := newFetch(r.topic, r.id, 100, cleanFetchBytes)
	addFetchPartition(req, r.partition, offset)

	start := time.Now()
	kr, err := r.cl.Broker(int(r.leader)).Request(r.ctx, req)
	r.fetched.Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, r.ctx.Err() == nil, fmt.Errorf("partition %d: fetch at %d: %w", r.partition, offset, err)
	}
	resp := kr.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, kerr.IsRetriable(err), fmt.Errorf("partition %d: fetch at %d: %w", r.partition, offset, err)
	}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			p := &resp.Topics[i].Partitions[j]
			if p.Partition != r.partition {
				continue
			}
			if retry, err := answerErr(r.ctx, r.cl, r.topic, p, offset); err != nil {
				return nil, retry, err
			}
			return p, false, nil
		}
	}
	return nil, true, fmt.Errorf("partition %d: fetch at %d: not in the response", r.partition, offset)
}

// topicLeaders returns topic's id (Fetch v13 and later name topics by
// id; zero from a broker without ids) and the leader of each of its
// partitions that has one.
func topicLeaders(ctx context.Context, cl *kgo.Client, topic string) (id [16]byte, leaders map[int32]int32, err error) {
	topics, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err == nil {
		err = topics.Error()
	}
	if err != nil {
		return id, nil, fmt.Errorf("the metadata of %s: %w", topic, err)
	}
	t := topics[topic]
	leaders = map[int32]int32{}
	for p, d := range t.Partitions {
		if d.Err == nil && d.Leader >= 0 {
			leaders[p] = d.Leader
		}
	}
	return t.ID, leaders, nil
}

// answerErr returns the error of a partition's answer to a Fetch at
// offset in topic, if it has one, and whether it is worth retrying.
func answerErr(ctx context.Context, cl *kgo.Client, topic string, p *kmsg.FetchResponseTopicPartition, offset int64) (retry bool, _ error) {
	err := kerr.ErrorForCode(p.ErrorCode)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, kerr.OffsetOutOfRange):
		return false, outOfRange(ctx, cl, topic, p.Partition, offset, err)
	}
	return kerr.IsRetriable(err) || errors.Is(err, kerr.UnknownTopicID), fmt.Errorf("partition %d: fetch at %d: %w", p.Partition, offset, err)
}

// newFetch returns a Fetch request of one topic (named, and by id for
// Fetch v13 and later) answered after at most wait ms with at most
// maxBytes, outside any fetch session; addFetchPartition adds its
// partitions.
func newFetch(topic string, id [16]byte, wait, maxBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = wait
	req.MinBytes = 1
	req.MaxBytes = maxBytes
	req.SessionEpoch = -1 // no fetch session
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	req.Topics = append(req.Topics, rt)
	return req
}

// addFetchPartition asks req for the partition's records from offset, up
// to cleanFetchBytes.
func addFetchPartition(req *kmsg.FetchRequest, partition int32, offset int64) {
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, cleanFetchBytes
	rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
}
