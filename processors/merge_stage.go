package processors

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/kafka"
	"github.com/questline/questline/processors/window"
	ch "github.com/questline/questline/sinks/clickhouse"
)

// mergeStage is the second stage: it keeps the latest partial of every
// (identity, source partition) and writes the merged rows. Each partition
// is snapshotted every SnapshotInterval (merge_snapshot.go) with the offset
// it reflects; on assignment it is restored from its snapshot and read on
// from that offset, or, without a usable snapshot, read from the start of
// the compacted partials topic. Either way its state is complete and the
// merged rows it writes are a function of the partials (idempotent); the
// offsets it commits once its rows are written are for lag monitoring only
// (commitPolled).
type mergeStage struct {
	cfg     *Config
	log     *slog.Logger
	cl      *kgo.Client
	mergers map[string]merger
	sources int // partitions of questline.events
	m       *metrics

	mu     sync.Mutex
	states map[int32]*mergeState
	snaps  snapshotWriter
	// ready is closed once cl is set: the group may join, and call
	// assign, before the constructor returns.
	ready chan struct{}
}

func newMergeStage(cfg *Config, log *slog.Logger, m *metrics, c *ch.Client, sources int32) (*mergeStage, error) {
	refs := &refusals{log: log, m: m, now: cfg.Now}
	ms, err := newMergers(c, refs, m.yield)
	if err != nil {
		return nil, err
	}
	s := &mergeStage{ready: make(chan struct{}), cfg: cfg, log: log, mergers: ms, sources: int(sources), m: m, states: map[int32]*mergeState{}, snaps: newSnapshotWriter("merge", log, m)}
	s.cl, err = kafka.NewClient(cfg.Brokers, log,
		kgo.ConsumerGroup(cfg.Group+"-merge"),
		kgo.ConsumeTopics(TopicPartials),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AdjustFetchOffsetsFn(s.assign),
		kgo.OnPartitionsRevoked(s.revoke),
		kgo.OnPartitionsLost(s.revoke),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), // tombstones go where their partials are
	)
	close(s.ready)
	refs.cl = s.cl
	return s, err
}

func (s *mergeStage) assign(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	<-s.ready
	ends := logEnds(ctx, s.cl, s.log, TopicPartials)
	s.mu.Lock()
	defer s.mu.Unlock()
	for partition := range offsets[TopicPartials] {
		st := s.restore(partition, ends)
		s.states[partition] = st
		offsets[TopicPartials][partition] = kgo.NewOffset().At(st.next).WithEpoch(-1)
	}
	return offsets, nil
}

func (s *mergeStage) revoke(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range revoked[TopicPartials] {
		delete(s.states, p)
		s.snaps.revoked(p) // its new owner may write a newer one first
	}
	s.m.yield.revoke(revoked[TopicPartials])
}

// low returns the lowest source watermark of the stage's partitions
// (window.None while one has not heard from every source).
func (s *mergeStage) low() int64 {
	low := int64(window.None)
	for _, st := range s.states {
		l := st.low()
		if l == window.None {
			return window.None
		}
		if low == window.None || l < low {
			low = l
		}
	}
	return low
}

func (s *mergeStage) run(ctx context.Context) error {
	defer s.cl.Close()
	defer s.snaps.wait(&s.mu)
	for {
		pctx, cancel := context.WithTimeout(ctx, s.cfg.FlushInterval)
		fetches := s.cl.PollRecords(pctx, 50_000)
		cancel()
		if ctx.Err() != nil {
			s.cl.AllowRebalance()
			return nil
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				s.log.Warn("processors: merge fetch", "partition", partition, "err", err)
			}
		})
		s.mu.Lock()
		var err error
		fetches.EachRecord(func(r *kgo.Record) {
			st := s.states[r.Partition]
			if st == nil || err != nil || r.Offset < st.next {
				return // not ours, or already in the restored state
			}
			st.next = r.Offset + 1
			if len(r.Value) == 0 {
				return // a tombstone: its identity was evicted
			}
			s.m.mergeRecords.Inc()
			var p partial
			if e := decodePartial(r.Value, &p); e != nil {
				s.log.Warn("processors: undecodable partial skipped", "partition", r.Partition, "offset", r.Offset, "err", e)
				return
			}
			st.add(p)
		})
		for partition, st := range s.states {
			if err == nil {
				s.m.yield.from = partition
				err = st.emit(s.mergers)
			}
		}
		if err == nil {
			for _, m := range s.mergers {
				if err = m.flush(ctx); err != nil {
					break
				}
			}
		}
		var tombs []*kgo.Record
		if err == nil {
			n := 0
			for partition, st := range s.states {
				for _, k := range st.evict() {
					tombs = append(tombs, &kgo.Record{Topic: TopicPartials, Partition: partition, Key: []byte(k)})
				}
				n += len(st.latest)
			}
			s.m.state.WithLabelValues("merge_identities").Set(float64(n))
			s.m.yield.publish(s.low()) // the rows are written
			if len(tombs) > 0 {
				// Compaction then drops the evicted partials, so a stage
				// re-reading the topic does not rebuild them.
				err = s.cl.ProduceSync(ctx, tombs...).FirstErr()
			}
		}
		if err == nil && !fetches.Empty() {
			commitPolled(ctx, s.cl, s.log, "merge")
		}
		if err == nil {
			s.snapshot(s.cfg.Now())
		}
		s.mu.Unlock()
		s.cl.AllowRebalance()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}
