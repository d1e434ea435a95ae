package processors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"

	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/questline/questline/event"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/latency"
	"github.com/questline/questline/processors/lift"
	"github.com/questline/questline/processors/pipeline"
	"github.com/questline/questline/processors/quest"
	"github.com/questline/questline/processors/tables"
	"github.com/questline/questline/processors/window"
	"github.com/questline/questline/processors/yield"
	ch "github.com/questline/questline/sinks/clickhouse"
)

// part is one assigned partition of questline.events.
type part struct {
	p    *pipeline.Partition
	next int64 // the next offset to apply: records below it are in the state
	// lastRecord is the wall-clock time (Unix ms) of the last record
	// applied or watermark record written: idleness is measured from it.
	lastRecord int64
	markWM     int64 // the watermark last sent to the device stage
	markDone   int64 // the Done watermark last sent to the merge stage
	// cleanTaken is the clean pass's progress at the last flush, and
	// cleanFree the last flush (Unix ms) at which it was not held back
	// beyond the watermark (pipeline.Partition.CleanProgress).
	cleanTaken uint64
	cleanFree  int64
	// flagsStarted is set once a partition that had read no flag was
	// moved to the flags log's start (readFlags).
	flagsStarted bool
	// snapAt is when the partition's last snapshot was written (or it was
	// assigned): it is due for the next SnapshotInterval after.
	snapAt time.Time
}

// source is the first stage: questline.events → pipelines → partials,
// direct rows, snapshots.
type source struct {
	cfg      *Config
	log      *slog.Logger
	m        *metrics
	cl       *kgo.Client
	master   *catalog.Catalog
	partials int32 // partition count of the partials topic
	devices  int32 // partition count of the devices topic
	sources  int32 // partition count of questline.events

	convs *ch.Writer[latency.Conversion]
	late  *ch.Writer[pipeline.Late]
	bots  *ch.Writer[bots.Row]
	refs  *refusals

	// reads is the clean pass's client (logReader) and flags': not cl,
	// whose consumer's long polls would hold its fetches back.
	reads *kgo.Client
	flags *flagsReader // nil without device flags (readFlags)

	mu      sync.Mutex
	parts   map[int32]*part
	forward []*kgo.Record // catalog events seen, for questline.catalog
	snaps   snapshotWriter
	// ready is closed once cl is set: the group may join, and call
	// assign, before the constructor returns.
	ready chan struct{}
	// ctx ends with run's: the clean pass's log readers fetch under it
	// (they are made in assign, which may come before run).
	ctx    context.Context
	stop   context.CancelFunc
	decomp kgo.Decompressor
}

func newSource(cfg *Config, log *slog.Logger, m *metrics, c *ch.Client, master *catalog.Catalog, partials, devices, sources int32) (*source, error) {
	s := &source{ready: make(chan struct{}), cfg: cfg, log: log, m: m, master: master, partials: partials, devices: devices, sources: sources, parts: map[int32]*part{}, snaps: newSnapshotWriter("source", log, m),
		decomp: kgo.DefaultDecompressor()}
	s.ctx, s.stop = context.WithCancel(context.Background())
	var err error
	if s.convs, err = ch.NewWriter(c, tables.QuestConversions); err != nil {
		return nil, err
	}
	if s.late, err = ch.NewWriter(c, tables.LateEvents); err != nil {
		return nil, err
	}
	if s.bots, err = ch.NewWriter(c, tables.BotSignals); err != nil {
		return nil, err
	}
	// Before the consumer: its assign hands s.reads to the log readers.
	if s.reads, err = kafka.NewClient(cfg.Brokers, log); err != nil {
		close(s.ready)
		return nil, err
	}
	if cfg.Pipeline.Clean && cfg.Pipeline.DevicePartitions > 0 {
		s.flags = &flagsReader{cl: s.reads, ctx: s.ctx, fetched: m.flagsFetch, decomp: s.decomp}
	}
	s.cl, err = kafka.NewClient(cfg.Brokers, log,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(kafka.TopicEvents),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AdjustFetchOffsetsFn(s.assign),
		kgo.OnPartitionsRevoked(s.revoke),
		kgo.OnPartitionsLost(s.revoke),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	close(s.ready)
	if err != nil {
		s.reads.Close()
		return nil, err
	}
	s.refs = &refusals{cl: s.cl, log: log, m: m, now: cfg.Now}
	return s, nil
}

// assign restores each newly assigned partition from its snapshot and
// starts fetching at the snapshot's offset; without a snapshot (or with
// one that does not restore or is past the partition's end: pastEnd),
// from the start of the partition, so state is always a function of the
// records.
func (s *source) assign(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	<-s.ready
	ends := logEnds(ctx, s.cl, s.log, kafka.TopicEvents)
	s.mu.Lock()
	defer s.mu.Unlock()
	for partition := range offsets[kafka.TopicEvents] {
		start := time.Now()
		p, next, ok, err := readSnapshot(s.cfg.SnapshotDir, partition, *s.cfg.Pipeline)
		if ok && err == nil {
			err = pastEnd(ends, partition, next)
		}
		if err != nil {
			s.log.Error("processors: unreadable snapshot; rebuilding the partition from its start", "partition", partition, "err", err)
		}
		if !ok || err != nil {
			if p, err = pipeline.New(*s.cfg.Pipeline, catalog.New()); err != nil {
				return nil, err
			}
			next = 0
			// From nothing: the catalog of the past, which the start of
			// the retained log may no longer hold. A restored partition
			// has its catalog in the snapshot and learns the rest from
			// its log.
			p.Catalog().Merge(s.master)
		}
		if s.cfg.Pipeline.Clean {
			// The clean pass reads its events again from the log: it
			// holds their offsets, not their records.
			r := &logReader{cl: s.reads, ctx: s.ctx, topic: kafka.TopicEvents, partition: partition, fetched: s.m.cleanFetch, decomp: s.decomp, log: s.log}
			p.ReadCleanFrom(r.read)
		}
		s.m.restore.Observe(time.Since(start).Seconds())
		s.m.rebalances.Inc()
		now := s.cfg.Now()
		s.parts[partition] = &part{p: p, next: next, lastRecord: now.UnixMilli(), markWM: window.None, markDone: window.None, snapAt: now}
		offsets[kafka.TopicEvents][partition] = kgo.NewOffset().At(next).WithEpoch(-1)
	}
	return offsets, nil
}

// revoke drops the state of partitions this process no longer owns,
// without flushing: the next owner restores the last snapshot.
func (s *source) revoke(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, partition := range revoked[kafka.TopicEvents] {
		delete(s.parts, partition)
		s.m.watermarkLag.drop(partition)
		s.m.cleanLag.drop(partition)
		s.m.cleanStuck.drop(partition)
		s.m.rebalances.Inc()
		// Its new owner may write a newer snapshot first: ours would
		// replace it with an older one (valid, but a longer replay).
		s.snaps.revoked(partition)
	}
}

// close stops the log readers and closes the stage's clients. The
// consumer's close allows a rebalance the loop may not have allowed (a
// panic in step): with BlockRebalanceOnPoll a plain Close would hang
// there, and the panic would never be printed.
func (s *source) close() {
	s.stop()
	s.cl.CloseAllowingRebalance()
	s.reads.Close()
}

func (s *source) run(ctx context.Context) error {
	defer s.close()
	stop := context.AfterFunc(ctx, s.stop)
	defer stop()
	defer s.snaps.wait(&s.mu)
	var e event.Event
	lastFlush := s.cfg.Now()
	for {
		pctx, cancel := context.WithTimeout(ctx, s.cfg.FlushInterval)
		fetches := s.cl.PollRecords(pctx, 10_000)
		cancel()
		if ctx.Err() != nil {
			s.cl.AllowRebalance()
			return nil // like a crash: nothing is flushed
		}
		var fatal error
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			s.log.Warn("processors: fetch", "topic", topic, "partition", partition, "err", err)
			if errors.Is(err, kgo.ErrClientClosed) {
				fatal = err
			}
		})
		if fatal != nil {
			return fatal
		}
		err := s.step(ctx, fetches, &lastFlush, &e)
		s.cl.AllowRebalance()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// step applies a poll's records and, every FlushInterval, flushes and
// takes a snapshot: the stage's work under s.mu, released on the way out
// whatever happens (run's deferred wait for the snapshot in flight takes
// the lock: a panic here crashes the process with its stack rather than
// hanging it).
func (s *source) step(ctx context.Context, fetches kgo.Fetches, lastFlush *time.Time, e *event.Event) error {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var fatal error
	fetches.EachRecord(func(r *kgo.Record) {
		pt := s.parts[r.Partition]
		if pt == nil || r.Offset < pt.next {
			return // not ours, or already in the restored state
		}
		pt.next = r.Offset + 1
		pt.lastRecord = now.UnixMilli()
		if w, ok := kafka.Watermark(r); ok {
			if w > 0 {
				pt.p.Advance(w) // see idle
				fatal = cmp.Or(fatal, pt.p.Err())
			}
			return
		}
		// The event's strings are the record's bytes: the pipeline
		// clones what it keeps.
		if err := event.DecodeBinaryShared(r.Value, e); err != nil {
			s.log.Warn("processors: undecodable record skipped", "partition", r.Partition, "offset", r.Offset, "err", err)
			return
		}
		if e.Type.ServerOnly() && !kafka.IsCatalogCopy(r) {
			// Catalog and lifecycle events: every partition needs
			// them, at a place in its own log (copies: made by the
			// producer when the original says so, else here, and
			// here for partitions added after the producer counted
			// them: kafka.MissingCopies), and a partition starting
			// from nothing needs those of the past
			// (questline.catalog, compacted).
			v := slices.Clone(r.Value)
			s.forward = append(s.forward, &kgo.Record{Topic: TopicCatalog, Key: []byte(e.ID), Value: v})
			s.forward = append(s.forward, kafka.MissingCopies(&kgo.Record{Partition: r.Partition, Key: slices.Clone(r.Key), Value: v, Headers: r.Headers}, s.sources)...)
		}
		pt.p.AddRecord(r.Value, e, r.Offset)
		fatal = cmp.Or(fatal, pt.p.Err())
		if !kafka.IsCatalogCopy(r) {
			s.m.events.Inc() // a copy is the same event again, in another partition
		}
	})
	if fatal != nil {
		// The clean pass could not read its events again (pipeline Err):
		// stop, and a restart restores the partition from its snapshot
		// (or says the same, if the log lost them).
		return fmt.Errorf("processors: %w", fatal)
	}
	if now.Sub(*lastFlush) >= s.cfg.FlushInterval {
		*lastFlush = now
		if err := s.readFlags(); err != nil {
			return fmt.Errorf("processors: %w", err)
		}
		if err := s.flush(ctx, now); err != nil {
			return err
		}
		s.snapshot(ctx, now)
	}
	return nil
}

func (s *source) sortedParts() []int32 {
	ps := make([]int32, 0, len(s.parts))
	for p := range s.parts {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// flush emits every partition's rows: window rows as partials to the merge
// stage, the rest straight to ClickHouse. Called with s.mu held.
func (s *source) flush(ctx context.Context, now time.Time) error {
	recs := append(s.forward, s.idle(ctx, now)...)
	s.forward = nil
	for _, partition := range s.sortedParts() {
		pt := s.parts[partition]
		wm := pt.p.Watermark()
		o := pt.p.Flush(wm)
		if wm != window.None {
			s.m.watermarkLag.set(partition, wm)
		}
		if cwm := pt.p.CleanWatermark(); cwm != window.None {
			s.m.cleanLag.set(partition, cwm+s.cfg.Pipeline.Lag().Milliseconds())
		}
		if s.cfg.Pipeline.Clean {
			taken, held := pt.p.CleanProgress()
			if !held || taken != pt.cleanTaken || pt.cleanFree == 0 {
				pt.cleanFree = now.UnixMilli()
			}
			pt.cleanTaken = taken
			s.m.cleanStuck.set(partition, pt.cleanFree)
		}
		add := func(p partial, err error) error {
			if err != nil {
				return err
			}
			v := p.appendBinary(make([]byte, 0, 32+len(p.Table)+len(p.Identity)+len(p.Row)))
			recs = append(recs, &kgo.Record{Topic: TopicPartials, Key: []byte(p.key()), Value: v, Partition: s.partitionOf(p.Table+"|"+p.Identity, s.partials)})
			s.m.emitted.WithLabelValues(p.Table).Inc()
			return nil
		}
		if err := s.rowPartials(partition, o, add); err != nil {
			return err
		}
		var e event.Event
		for i := range o.Devices {
			d := &o.Devices[i]
			// Only the key is needed, and it is copied.
			if event.DecodeBinaryShared(d.Record, &e) != nil {
				continue
			}
			recs = append(recs, &kgo.Record{Topic: TopicDevices, Key: []byte(e.DeviceID), Value: deviceEventValue(partition, d), Partition: s.partitionOf(e.DeviceID, s.devices)})
		}
		if wm != window.None && wm != pt.markWM {
			// The device stage keeps the highest watermark of each source,
			// so only a change needs sending (a new owner sends its first).
			dv := deviceMarkerValue(partition, wm)
			for dp := range s.devices {
				recs = append(recs, &kgo.Record{Topic: TopicDevices, Value: dv, Partition: dp})
			}
			pt.markWM = wm
		}
		if done := pt.p.Done(); done != window.None && done != pt.markDone {
			// The merge stage forgets identities every source is done
			// with: Done, not the watermark, since the clean pass trails it.
			marker := partial{Source: partition, Watermark: done}
			mv := marker.appendBinary(nil)
			for pp := range s.partials {
				recs = append(recs, &kgo.Record{Topic: TopicPartials, Key: []byte(marker.key()), Value: mv, Partition: pp})
			}
			pt.markDone = done
		}
		s.convs.Add(o.Conversions...)
		s.late.Add(o.Late...)
		s.bots.Add(o.Bots...)
		for _, l := range o.Late {
			s.m.late.WithLabelValues(l.Processor).Inc()
		}
		s.m.emitted.WithLabelValues("quest_conversions").Add(float64(len(o.Conversions)))
		s.m.emitted.WithLabelValues("bot_signals").Add(float64(len(o.Bots)))
		pt.p.Reset()
	}
	if len(recs) > 0 {
		if err := s.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return err
		}
	}
	if err := flushRefusing(ctx, s.convs, tables.QuestConversions.Name, s.refs); err != nil {
		return err
	}
	if err := flushRefusing(ctx, s.late, tables.LateEvents.Name, s.refs); err != nil {
		return err
	}
	if err := flushRefusing(ctx, s.bots, tables.BotSignals.Name, s.refs); err != nil {
		return err
	}
	var sum pipeline.Stats
	for _, pt := range s.parts {
		st := pt.p.Stats()
		sum.CleanPending += st.CleanPending
		sum.Panes += st.Panes
		sum.AttributionUsers += st.AttributionUsers
		sum.Auctions += st.Auctions
		sum.LiftUsers += st.LiftUsers
		sum.Flagged += st.Flagged
		sum.SeenIDs += st.SeenIDs
	}
	s.m.stateEvents.Set(float64(sum.CleanPending))
	for kind, n := range map[string]int{"panes": sum.Panes, "attribution_users": sum.AttributionUsers,
		"auctions": sum.Auctions, "lift_users": sum.LiftUsers, "flagged": sum.Flagged, "seen_ids": sum.SeenIDs} {
		s.m.state.WithLabelValues(kind).Set(float64(n))
	}
	return nil
}

// rowPartials passes add every window row of o, a flush of partition, as a
// partial: with its identity, its version and the watermark from which its
// source never emits it again (partial.Until, against Partition.Done).
func (s *source) rowPartials(partition int32, o *pipeline.Output, add func(partial, error) error) error {
	pc := s.cfg.Pipeline
	for _, err := range []error{
		addPartials(o.Quest, tQuest, partition, add, func(r *quest.Row) (string, uint64, int64) {
			return questIdentity(r), r.Version, s.until(r.Scope, r.End, pc.Quest.Window.Lateness)
		}),
		addPartials(o.Latency, tLatency, partition, add, func(r *latency.Row) (string, uint64, int64) {
			return latencyIdentity(r), r.Version, s.until(r.Scope, r.End, pc.Latency.Window.Lateness)
		}),
		addPartials(o.Yield, tYield, partition, add, func(r *yield.Row) (string, uint64, int64) {
			return yieldIdentity(r), r.Version, s.until(r.Scope, r.End, pc.Yield.Window.Lateness)
		}),
		addPartials(o.Integrity, tIntegrity, partition, add, func(r *yield.IntegrityRow) (string, uint64, int64) {
			return integrityIdentity(r), r.Version, s.until(r.Scope, r.End, pc.Yield.Window.Lateness)
		}),
		addPartials(o.Lift, tLift, partition, add, func(r *lift.Row) (string, uint64, int64) {
			// An update row is made once, when the watermark passes its
			// cutoff; the final row when it passes the cutoff + lateness.
			var late time.Duration
			if r.Final {
				late = pc.Lift.Lateness
			}
			return liftIdentity(r), r.Version, s.until(r.Scope, r.UpdatedAt, late)
		}),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// idle returns a watermark record for every owned partition that has had
// no record for IdleTimeout, has none left to read and still holds state
// that a watermark would emit or finalize (pipeline.Drained; a drained
// partition gets one per bot window, for the device stage): windows close on
// idle partitions (SPEC §5) because the watermark moves, and because the
// record is in the partition's log, every reader applies it at the same
// place, so the results still depend on the log alone. The watermark is
// the wall clock less the out-of-orderness bound, where an event arriving
// now would put it (ingest refuses event times from the future). A
// partition with unread records is not idle, however long its fetch
// takes: its records may be older than that watermark. Called with s.mu
// held.
func (s *source) idle(ctx context.Context, now time.Time) []*kgo.Record {
	ms := now.UnixMilli()
	w := ms - s.cfg.Pipeline.OutOfOrder.Milliseconds()
	var quiet []int32
	for _, partition := range s.sortedParts() {
		pt := s.parts[partition]
		wm := pt.p.Watermark()
		if ms-pt.lastRecord < s.cfg.IdleTimeout.Milliseconds() || w <= wm {
			continue
		}
		// A drained partition only needs its watermark to move for the
		// device stage, whose watermark is the minimum over all sources:
		// once per bot window is enough there.
		if wm != window.None && pt.p.Drained() && w-wm < s.cfg.Pipeline.Bots.Window.Size.Milliseconds() {
			continue
		}
		quiet = append(quiet, partition)
	}
	if len(quiet) == 0 {
		return nil
	}
	ends, err := kadm.NewClient(s.cl).ListEndOffsets(ctx, kafka.TopicEvents)
	if err != nil {
		s.log.Warn("processors: listing end offsets for idle partitions", "err", err)
		return nil
	}
	var recs []*kgo.Record
	for _, partition := range quiet {
		pt := s.parts[partition]
		pt.lastRecord = ms // check again after another IdleTimeout
		if end, ok := ends.Lookup(kafka.TopicEvents, partition); !ok || end.Err != nil || end.Offset != pt.next {
			continue // records left to read: not idle
		}
		recs = append(recs, kafka.WatermarkRecord(partition, w))
		s.m.idle.Inc()
	}
	return recs
}

// until is the Done watermark of the partition (pipeline.Partition.Done)
// from which a row of scope whose window ends (or lift cutoff is) at end
// is never emitted again: end + lateness, and in the clean scope also the
// clean pass's lag.
func (s *source) until(scope string, end int64, lateness time.Duration) int64 {
	u := end + lateness.Milliseconds()
	if scope == window.ScopeClean {
		u += s.cfg.Pipeline.Lag().Milliseconds()
	}
	return u
}

// partitionOf places every record of one key in one partition of n:
// every partial of one identity, whatever its source; every event of one
// device.
func (s *source) partitionOf(key string, n int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int32(h.Sum32() % uint32(n))
}

// snapshot takes the snapshot of one partition due for it (the one whose
// last snapshot is oldest, once SnapshotInterval has passed since) and
// writes it in the background with its next offset; once written, a later
// call commits that offset (informational: the snapshot is the source of
// truth). The partition stops only while its state is frozen (the per-user
// state copied; the event ids and the clean queue, most of a high-rate
// state, only referenced: pipeline.Frozen). One snapshot at a time,
// one partition per flush at most. Called after flush, with s.mu held.
func (s *source) snapshot(ctx context.Context, now time.Time) {
	j, busy := s.snaps.finished()
	if busy {
		return // still writing: the next flush looks again
	}
	if j != nil && !j.revoked.Load() {
		commit := map[string]map[int32]kgo.EpochOffset{kafka.TopicEvents: {j.partition: {Epoch: -1, Offset: j.next}}}
		s.cl.CommitOffsets(ctx, commit, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
			if err != nil && ctx.Err() == nil {
				s.log.Warn("processors: offset commit failed (snapshots hold the offsets)", "err", err)
			}
		})
	}
	due := oldestDue(s.parts, func(pt *part) time.Time { return pt.snapAt }, now, s.cfg.SnapshotInterval)
	if due < 0 {
		return
	}
	pt := s.parts[due]
	start := time.Now()
	f := pt.p.Freeze()
	s.m.snapshotPause.Observe(time.Since(start).Seconds())
	pt.snapAt = now
	next := pt.next
	s.snaps.start(due, next, func(keep func() bool) error {
		return writeSnapshot(s.cfg.SnapshotDir, due, next, f, keep)
	}, func() { s.m.snapshot.Observe(time.Since(start).Seconds()) })
}
