package api

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/kafka"
)

// errNotReady is answered (503) while an instance re-reads questline.claims.
var errNotReady = errors.New("this API instance is still reading the claims log; retry shortly")

// sequencer reads every partition of questline.claims from the start
// (direct partition consumption, no group) and folds each partition in
// log order. A decision is read from the fold once it has applied the
// partition up to the deciding record. It also appends the records
// (append), placing each drop's by its drop_id among the layout's
// partitions, not the topic's current count: partitions added to the
// topic would otherwise move a drop to a partition where its state
// (granted so far) is unknown, and a new start there would grant its
// inventory again.
type sequencer struct {
	cl        *kgo.Client
	m         *metrics
	log       *slog.Logger
	retention time.Duration // the folds forget drops closed longer ago (0: never)
	snapDir   string        // where fold snapshots are written and restored ("": none)
	snapEvery time.Duration // how often changed partitions' folds are written

	// Snapshots: written by run (the folds' only writer) and its writer
	// goroutine.
	topicID    [16]byte
	nparts     int32
	lastSnap   time.Time
	snapped    map[int32]int64  // partition → offset of its last snapshot written
	snapMu     sync.Mutex       // held while snapshot files are written
	snapFailed []int32          // partitions whose file failed (under snapMu)
	restored   map[int32]int64  // partition → offset its fold was restored at (start)
	lastSum    map[int32]uint32 // partition → CRC-32C of the last record folded (snapshots name it)
	brokers    []string

	// byKey places a keyed record as Kafka's default partitioner does
	// (murmur2 of the key); made once, not per claim.
	byKey kgo.TopicPartitioner

	mu       sync.RWMutex
	folds    map[int32]*Fold
	advanced chan struct{} // closed (and replaced) whenever folds advance
	ready    chan struct{} // closed once caught up with the ends at start
	stopped  chan struct{} // closed when run returns: nothing advances any more
	readyAt  time.Duration
	layout   int32 // partitions drops are placed among (the first layout record's); 0: none yet
	asked    bool  // this instance is appending a layout record
}

func newSequencer(brokers []string, cfg *config, m *metrics, log *slog.Logger) (*sequencer, error) {
	cl, err := kafka.NewClient(brokers, log,
		// run adds every partition of questline.claims, each at its
		// snapshot's offset or at the start.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.MetadataMinAge(time.Second),
		// append places every record itself (the layout's partition).
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		return nil, err
	}
	return &sequencer{
		cl: cl, m: m, log: log, retention: cfg.claimsRetention,
		snapDir: cfg.snapshotDir, snapEvery: cfg.snapshotInterval,
		snapped: map[int32]int64{}, restored: map[int32]int64{}, lastSum: map[int32]uint32{}, brokers: brokers,
		byKey:    kgo.StickyKeyPartitioner(nil).ForTopic(kafka.TopicClaims), // keyed records only: no sticky state shared
		folds:    map[int32]*Fold{},
		advanced: make(chan struct{}),
		ready:    make(chan struct{}),
		stopped:  make(chan struct{}),
	}, nil
}

// run folds the log until ctx ends, then closes the client.
func (s *sequencer) run(ctx context.Context) error {
	defer close(s.stopped)
	defer s.cl.Close()
	t0 := time.Now()
	ends, err := s.endOffsets(ctx)
	if err != nil {
		return err
	}
	s.restore(ctx, ends)
	parts := map[int32]kgo.Offset{}
	for p := range ends {
		parts[p] = kgo.NewOffset().AtStart()
		if f := s.folds[p]; f != nil {
			parts[p] = kgo.NewOffset().At(f.next)
		}
	}
	s.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{kafka.TopicClaims: parts})
	s.checkReady(ctx, ends, t0)
	for {
		// With a snapshot pending, the poll returns when it is due.
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if due, ok := s.snapshotDue(); ok {
			pctx, cancel = context.WithDeadline(ctx, due)
		}
		fs := s.cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			s.snapshot(true) // a clean stop: the next start reads from here
			return ctx.Err()
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				s.log.Warn("reading the claims log", "topic", t, "partition", p, "err", err)
			}
		})
		var lost error
		s.mu.Lock()
		fs.EachPartition(func(ft kgo.FetchTopicPartition) {
			if ft.Topic != kafka.TopicClaims || ft.Partition < 0 {
				return // the poll's own error (its deadline: a snapshot due)
			}
			f := s.folds[ft.Partition]
			if f == nil {
				f = NewFoldRetention(ft.Partition, s.retention)
				s.folds[ft.Partition] = f
			}
			for _, r := range ft.Records {
				if r.Offset != f.next && lost == nil {
					// Offsets of this log are contiguous (no transactions,
					// no compaction): a jump is records deleted under the
					// reader (kgo resets to the start of what is left).
					lost = errLost(r.Partition, f.next, r.Offset)
				}
				if lost != nil {
					return
				}
				rec, err := ParseRecord(r.Value)
				if err != nil {
					s.m.badRecords.Inc()
					s.log.Warn("skipping a claims record that does not decode", "partition", r.Partition, "offset", r.Offset, "err", err)
					f.next = r.Offset + 1
					continue
				}
				if rec.Kind == KindLayout && r.Partition == 0 && s.layout == 0 {
					s.layout = rec.Partitions
				}
				f.Apply(r.Offset, &rec)
				s.m.applied.Inc()
			}
			if s.snapDir != "" && len(ft.Records) > 0 {
				// A snapshot names the last record folded (not each one's).
				s.lastSum[ft.Partition] = crc32.Checksum(ft.Records[len(ft.Records)-1].Value, crcTable)
			}
		})
		s.setGauges()
		close(s.advanced)
		s.advanced = make(chan struct{})
		s.mu.Unlock()
		if lost != nil {
			return lost
		}
		s.checkReady(ctx, ends, t0)
		s.snapshot(false)
	}
}

// setGauges sets the decisions and forgotten drops gauges from the folds.
func (s *sequencer) setGauges() {
	decisions, gone := 0, 0
	for _, f := range s.folds {
		decisions += f.Decisions()
		gone += f.GoneDrops()
	}
	s.m.decisions.Set(float64(decisions))
	s.m.goneDrops.Set(float64(gone))
}

// endOffsets lists the end of every partition of questline.claims (and
// notes the topic's id and partition count for snapshots), retrying until
// the broker answers, and returns errLost when a partition no longer
// begins at offset 0.
func (s *sequencer) endOffsets(ctx context.Context) (map[int32]int64, error) {
	adm := kadm.NewClient(s.cl)
	for {
		listed, err := adm.ListEndOffsets(ctx, kafka.TopicClaims)
		if err == nil {
			err = listed.Error()
		}
		if err == nil {
			var topics kadm.TopicDetails
			if topics, err = adm.ListTopics(ctx, kafka.TopicClaims); err == nil {
				if err = topics.Error(); err == nil {
					s.topicID = topics[kafka.TopicClaims].ID
				}
			}
		}
		ends := map[int32]int64{}
		if err == nil {
			listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
			if len(ends) == 0 {
				err = errors.New("topic " + kafka.TopicClaims + " has no partitions")
			}
		}
		var starts kadm.ListedOffsets
		if err == nil {
			if starts, err = adm.ListStartOffsets(ctx, kafka.TopicClaims); err == nil {
				err = starts.Error()
			}
		}
		if err == nil {
			s.nparts = int32(len(ends))
			return ends, lostAtStart(starts)
		}
		s.log.Warn("listing the end of the claims log; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// errLost is the error of a claims log whose partition p lacks the
// records from offset want to got: decisions and drop state lost, so the
// instance must not decide or answer from the rest.
func errLost(p int32, want, got int64) error {
	return fmt.Errorf("questline.claims partition %d: records from offset %d up to %d were deleted (a retention or delete-records on the claims log): the claims decided there and their drops' state are lost, and deciding from the rest could grant an inventory again; restore the records or start a new log, and keep retention.ms=-1", p, want, got)
}

// lostAtStart returns errLost for a partition that no longer begins at
// offset 0.
func lostAtStart(starts kadm.ListedOffsets) error {
	var lost error
	starts.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 && lost == nil {
			lost = errLost(o.Partition, 0, o.Offset)
		}
	})
	return lost
}

// checkReady closes ready once the folds reached ends and the layout is
// known; caught up without a layout (a new log), it appends one with the
// topic's partition count, and is ready once that is folded.
func (s *sequencer) checkReady(ctx context.Context, ends map[int32]int64, t0 time.Time) {
	select {
	case <-s.ready:
		return
	default:
	}
	s.mu.Lock()
	for p, end := range ends {
		if end > 0 && (s.folds[p] == nil || s.folds[p].next < end) {
			s.mu.Unlock()
			return
		}
	}
	if s.layout == 0 {
		if !s.asked {
			s.asked = true
			go s.appendLayout(ctx, int32(len(ends)))
		}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.readyAt = time.Since(t0)
	s.m.catchUp.Set(s.readyAt.Seconds())
	s.m.ready.Set(1)
	s.log.Info("caught up with the claims log; answering claims", "took", s.readyAt.String())
	close(s.ready)
}

// appendLayout appends a layout record of n partitions to partition 0,
// retrying until Kafka acknowledged it or ctx ends. Instances starting
// together on a new log may each append one: the first in the log counts.
func (s *sequencer) appendLayout(ctx context.Context, n int32) {
	rec := &Record{Kind: KindLayout, Partitions: n}
	for {
		err := s.cl.ProduceSync(ctx, &kgo.Record{Topic: kafka.TopicClaims, Partition: 0, Value: rec.Marshal()}).FirstErr()
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Warn("appending the claims log's layout record; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// append appends r to its drop's partition of questline.claims (Kafka's
// murmur2 of drop_id among the layout's partitions) and returns where it
// landed once Kafka acknowledged it.
func (s *sequencer) append(ctx context.Context, r *Record) (partition int32, offset int64, err error) {
	s.mu.RLock()
	n := s.layout
	s.mu.RUnlock()
	if n == 0 {
		return 0, 0, errNotReady
	}
	rec := &kgo.Record{Topic: kafka.TopicClaims, Key: []byte(r.DropID), Value: r.Marshal()}
	rec.Partition = int32(s.byKey.Partition(rec, int(n)))
	res := s.cl.ProduceSync(ctx, rec)
	if err := res.FirstErr(); err != nil {
		return 0, 0, err
	}
	return res[0].Record.Partition, res[0].Record.Offset, nil
}

// Ready reports nil once caught up, else errNotReady.
func (s *sequencer) Ready(context.Context) error {
	select {
	case <-s.ready:
		return nil
	default:
		return errNotReady
	}
}

// errStopped is wait's error once the reader has stopped (the instance is
// shutting down): a request waiting for a decision gets 503 at once.
var errStopped = errors.New("the claims log reader stopped")

// wait returns once partition p is applied past offset, or ctx's error,
// or errStopped.
func (s *sequencer) wait(ctx context.Context, p int32, offset int64) error {
	for {
		s.mu.RLock()
		f, ch := s.folds[p], s.advanced
		done := f != nil && f.next > offset
		s.mu.RUnlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stopped:
			return errStopped
		case <-ch:
		}
	}
}

// claim returns a copy of the decision on claimID in partition p, if any.
func (s *sequencer) claim(p int32, claimID string) (Decision, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if f := s.folds[p]; f != nil {
		if d := f.Claim(claimID); d != nil {
			return *d, true
		}
	}
	return Decision{}, false
}

// applied returns the drop record of partition p that applied eventID,
// and its offset, if any.
func (s *sequencer) applied(p int32, eventID string) (Record, int64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if f := s.folds[p]; f != nil {
		return f.Applied(eventID)
	}
	return Record{}, 0, false
}

// appliedAnywhere reports whether a drop record with eventID was applied
// in any partition (a retry of a schedule, start or end).
func (s *sequencer) appliedAnywhere(eventID string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, f := range s.folds {
		if _, _, ok := f.Applied(eventID); ok {
			return true
		}
	}
	return false
}

// claimAnywhere returns a copy of the decision on claimID in any partition.
func (s *sequencer) claimAnywhere(claimID string) (Decision, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, f := range s.folds {
		if d := f.Claim(claimID); d != nil {
			return *d, true
		}
	}
	return Decision{}, false
}

// gone returns when drop id closed, if a fold forgot it (its claims are
// answered 410, and nothing is decided on it any more).
func (s *sequencer) gone(id string) (closedAt int64, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, f := range s.folds {
		if c, _, ok := f.Gone(id); ok {
			return c, true
		}
	}
	return 0, false
}

// drop returns a copy of drop id as folded, if any.
func (s *sequencer) drop(id string) (Drop, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, f := range s.folds {
		if d := f.Drop(id); d != nil {
			return *d, true
		}
	}
	return Drop{}, false
}
