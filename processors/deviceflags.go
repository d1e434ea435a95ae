package processors

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/questline/questline/kafka"
)

// maxFlagFetches bounds the rounds of Fetch requests readFlags makes in
// one call: a partition with more to read is asked again, up to this many
// times (1 MiB each, at most 8 MiB a leader), and a leader's answer
// holds at most this many MiB; the rest waits for the next flush.
const maxFlagFetches = 8

// readFlags applies to every owned partition of questline.events the
// records of its partition of TopicDeviceFlags written since it last
// looked (the device stage's flags and markers, pipeline.AddDeviceFlags),
// which lets the clean pass go on. A retriable fetch error is logged and
// left to the next flush: the clean pass waits meanwhile, which only
// delays clean rows. An error is one that stops the stage: the flags
// log no longer holds the offset the partition's snapshot resumes from,
// or the clean pass could not read its events (pipeline.Partition.Err).
// Called once per flush, with s.mu held.
func (s *source) readFlags() error {
	if s.flags == nil {
		return nil
	}
	var asks []int32 // the partitions to read, in the order asked
	var starts kadm.ListedOffsets
	for _, partition := range s.sortedParts() {
		pt := s.parts[partition]
		if pt.p.DeviceFlagsNext() == 0 && !pt.flagsStarted {
			// A partition that has read no flag (built from nothing, or
			// from a snapshot of version 5) reads from the log's start,
			// where retention left it: the flags of the events it will
			// read came after them (helper-51).
			if starts == nil {
				var err error
				if starts, err = kadm.NewClient(s.reads).ListStartOffsets(s.ctx, TopicDeviceFlags); err != nil {
					s.log.Warn("processors: listing the device flags' start offsets; the clean pass waits for them", "err", err)
					return nil
				}
			}
			o, ok := starts.Lookup(TopicDeviceFlags, partition)
			if !ok || o.Err != nil {
				s.log.Warn("processors: the device flags' start offset; the clean pass waits for them", "partition", partition, "err", o.Err)
				continue
			}
			pt.p.StartDeviceFlagsAt(o.Offset)
			pt.flagsStarted = true
		}
		asks = append(asks, partition)
	}
	for range maxFlagFetches {
		if len(asks) == 0 {
			break
		}
		next := make([]flagsAsk, len(asks))
		for i, partition := range asks {
			next[i] = flagsAsk{partition, s.parts[partition].p.DeviceFlagsNext()}
		}
		answers := s.flags.read(next)
		// Asked again: first the partitions a leader's byte limit left
		// without records (a response fills its partitions in the
		// order asked: helper-53), then those whose records it cut.
		var starved, cut []int32
		for _, partition := range asks {
			a, pt := answers[partition], s.parts[partition]
			if a.err != nil && a.retry {
				s.log.Warn("processors: reading device flags; the clean pass waits for them", "partition", partition, "offset", pt.p.DeviceFlagsNext(), "err", a.err)
				s.flags.known = false // look the leaders up again
				continue
			}
			if a.err != nil {
				return a.err
			}
			for _, r := range a.recs {
				if err := pt.p.AddDeviceFlags(r.offset, r.value); err != nil {
					s.log.Warn("processors: device flag record skipped", "partition", partition, "offset", r.offset, "err", err)
				}
			}
			if err := pt.p.Err(); err != nil {
				return err
			}
			switch {
			case a.left:
				starved = append(starved, partition)
			case a.more:
				cut = append(cut, partition)
			}
		}
		asks = append(starved, cut...)
	}
	return nil
}

// flagsRetentionShort reports, with the two topics' retention.ms (as the
// broker reports them, defaults included; "" if it reports none), when
// TopicDeviceFlags may keep its records less long than
// questline.events: a partition rebuilt without a snapshot reads its
// events from the log's start and its flags from theirs, and would miss
// the flags of its oldest events, counting those users in the clean
// scope. Unknown counts as short: the caller warns.
func flagsRetentionShort(ctx context.Context, cl *kgo.Client) (short bool, events, flags string, err error) {
	ev, evSet, err := kafka.Retention(ctx, cl, kafka.TopicEvents)
	if err != nil {
		return false, "", "", err
	}
	fl, flSet, err := kafka.Retention(ctx, cl, TopicDeviceFlags)
	if err != nil {
		return false, "", "", err
	}
	show := func(ms int64, set bool) string {
		if !set {
			return ""
		}
		return strconv.FormatInt(ms, 10)
	}
	long := flSet && fl == -1 || evSet && flSet && ev != -1 && fl >= ev
	return !long, show(ev, evSet), show(fl, flSet), nil
}

// flagsReader reads the source stage's partitions of TopicDeviceFlags for
// readFlags: one Fetch for all the partitions a broker leads, to every
// leader at once, none waiting for records (a poll of logs that may have
// nothing new), so a flush waits about one round trip however many
// partitions the process owns. (A Fetch per partition in turn, as the
// clean pass's logReader reads, took 0.6 ms for 32 partitions on loopback,
// helper-51; at a network's round trips, 16–64 ms of every flush, under
// the stage's lock.)
type flagsReader struct {
	cl      *kgo.Client // not the stage's consumer (see logReader)
	ctx     context.Context
	fetched prometheus.Histogram // the Fetch requests' durations
	decomp  kgo.Decompressor

	known   bool            // whether id and leaders are looked up
	id      [16]byte        // the topic's id (see logReader)
	leaders map[int32]int32 // partition → its leader
}

// flagsAsk is a partition to read from offset.
type flagsAsk struct {
	partition int32
	offset    int64
}

// flagsAnswer is a partition's answer to one flagsReader.read.
type flagsAnswer struct {
	recs []logRecord // from the offset asked for
	// left is set when the answer holds no record batch though the log
	// has more, or the response left the partition out (kfake does when
	// its byte limit is reached before it); more when it holds some and
	// the log has more after them: ask again.
	left, more bool
	err        error
	retry      bool // err is worth trying again at the next flush
}

// read fetches each partition of next once from its offset, asking each
// leader for its partitions in next's order (a response fills them in
// that order up to its byte limit), and returns every partition's answer.
func (r *flagsReader) read(next []flagsAsk) map[int32]flagsAnswer {
	out := make(map[int32]flagsAnswer, len(next))
	if !r.known {
		var err error
		if r.id, r.leaders, err = topicLeaders(r.ctx, r.cl, TopicDeviceFlags); err != nil {
			for _, a := range next {
				out[a.partition] = flagsAnswer{err: err, retry: true}
			}
			return out
		}
		r.known = true
	}
	reqs := map[int32]*kmsg.FetchRequest{} // by leader
	for _, a := range next {
		leader, ok := r.leaders[a.partition]
		if !ok {
			out[a.partition] = flagsAnswer{err: fmt.Errorf("partition %d: no leader in the topic's metadata", a.partition), retry: true}
			continue
		}
		if reqs[leader] == nil {
			reqs[leader] = newFetch(TopicDeviceFlags, r.id, 0, 0)
		}
		addFetchPartition(reqs[leader], a.partition, a.offset)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for leader, req := range reqs {
		req.MaxBytes = cleanFetchBytes * int32(min(len(req.Topics[0].Partitions), maxFlagFetches))
		wg.Go(func() {
			answers := r.fetch(leader, req)
			mu.Lock()
			maps.Copy(out, answers)
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// fetch sends req to leader and returns the answer of each partition it
// asks for.
func (r *flagsReader) fetch(leader int32, req *kmsg.FetchRequest) map[int32]flagsAnswer {
	asked := req.Topics[0].Partitions
	out := make(map[int32]flagsAnswer, len(asked))
	start := time.Now()
	kr, err := r.cl.Broker(int(leader)).Request(r.ctx, req)
	r.fetched.Observe(time.Since(start).Seconds())
	retry := r.ctx.Err() == nil
	if err == nil {
		if err = kerr.ErrorForCode(kr.(*kmsg.FetchResponse).ErrorCode); err != nil {
			retry = kerr.IsRetriable(err)
		}
	}
	if err != nil {
		for _, a := range asked {
			out[a.Partition] = flagsAnswer{err: fmt.Errorf("partition %d: fetch at %d: %w", a.Partition, a.FetchOffset, err), retry: retry}
		}
		return out
	}
	offsets := make(map[int32]int64, len(asked))
	for _, a := range asked {
		offsets[a.Partition] = a.FetchOffset
	}
	for _, t := range kr.(*kmsg.FetchResponse).Topics {
		for i := range t.Partitions {
			p := &t.Partitions[i]
			offset, ok := offsets[p.Partition]
			if !ok {
				continue
			}
			delete(offsets, p.Partition)
			if retry, err := answerErr(r.ctx, r.cl, TopicDeviceFlags, p, offset); err != nil {
				out[p.Partition] = flagsAnswer{err: err, retry: retry}
				continue
			}
			recs, read, err := appendBatchRecords(nil, p.RecordBatches, offset, r.decomp)
			if err != nil {
				err = fmt.Errorf("partition %d: fetch at %d: %w", p.Partition, offset, err)
			}
			out[p.Partition] = flagsAnswer{recs: recs, left: read == offset && offset < p.HighWatermark, more: read > offset && read < p.HighWatermark, err: err}
		}
	}
	for p := range offsets { // left out: the response was full
		out[p] = flagsAnswer{left: true}
	}
	return out
}
