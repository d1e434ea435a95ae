package processors

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/pipeline"
	"github.com/questline/questline/processors/tables"
	"github.com/questline/questline/processors/window"
	ch "github.com/questline/questline/sinks/clickhouse"
)

// TopicDevices carries the events re-keyed by device_id for the device bot
// signals, and the source partitions' watermarks. Not compacted.
const TopicDevices = "questline.devices"

// Device record values: a kind byte, the source partition, then
//
//	event:  source offset, first open window start, the event's device
//	        record (the fields the device signals read: pipeline.DeviceEvent)
//	marker: the source partition's watermark
const (
	devEvent  byte = 1
	devMarker byte = 2
)

func deviceEventValue(source int32, d *pipeline.DeviceEvent) []byte {
	b := make([]byte, 0, 21+len(d.Record))
	b = append(b, devEvent)
	b = binary.BigEndian.AppendUint32(b, uint32(source))
	b = binary.BigEndian.AppendUint64(b, uint64(d.Offset))
	b = binary.BigEndian.AppendUint64(b, uint64(d.Lo))
	return append(b, d.Record...)
}

func deviceMarkerValue(source int32, wm int64) []byte {
	b := make([]byte, 0, 13)
	b = append(b, devMarker)
	b = binary.BigEndian.AppendUint32(b, uint32(source))
	return binary.BigEndian.AppendUint64(b, uint64(wm))
}

// TopicDeviceFlags carries the device stage's flags back to the source
// stage's clean pass: a flag per user of a device flagged in a closed
// device window, in the partition of questline.events that holds the
// user's events, and every device partition's markers in every partition
// (pipeline.AddDeviceFlags). It has as many partitions as questline.events.
// Not compacted.
const TopicDeviceFlags = "questline.device-flags"

// devicePart is the state of one partition of questline.devices.
type devicePart struct {
	p       *bots.Processor
	maxOff  map[int32]int64 // per source partition: the highest offset applied
	srcWM   map[int32]int64 // per source partition: its watermark
	sources int
	next    int64 // the next offset of the devices partition to apply
	// pending are the device windows emitted flagged and not yet closed,
	// by window start, then device, with their users (sorted); marked is
	// the watermark of the last marker sent (window.None before the
	// first).
	pending map[int64]map[string][]string
	marked  int64
	// snapAt is when the partition's last snapshot was taken (or it was
	// assigned): it is due for the next SnapshotInterval after.
	snapAt time.Time
}

func newDevicePart(p *bots.Processor, sources int) *devicePart {
	return &devicePart{p: p, maxOff: map[int32]int64{}, srcWM: map[int32]int64{}, sources: sources, pending: map[int64]map[string][]string{}, marked: window.None}
}

// watermark is the minimum over all source partitions, None until every
// source has sent one: a device window closes only when no source can
// still forward an event of it.
func (d *devicePart) watermark() int64 {
	if len(d.srcWM) < d.sources {
		return window.None
	}
	wm := int64(1<<63 - 1)
	for _, w := range d.srcWM {
		wm = min(wm, w)
	}
	return wm
}

// apply applies v, the record at offset of the partition, decoding its
// event (if any) into e.
func (d *devicePart) apply(offset int64, v []byte, e *event.Event) {
	d.next = offset + 1
	if len(v) < 13 {
		return
	}
	source := int32(binary.BigEndian.Uint32(v[1:5]))
	switch v[0] {
	case devMarker:
		wm := int64(binary.BigEndian.Uint64(v[5:13]))
		if old, ok := d.srcWM[source]; !ok || wm > old {
			d.srcWM[source] = wm
			if w := d.watermark(); w != window.None {
				d.p.Advance(w)
			}
		}
	case devEvent:
		if len(v) < 21 {
			return
		}
		off, lo := int64(binary.BigEndian.Uint64(v[5:13])), int64(binary.BigEndian.Uint64(v[13:21]))
		if max, ok := d.maxOff[source]; ok && off <= max {
			return // re-sent after a source restore
		}
		d.maxOff[source] = off
		// The event's strings are the record's bytes, as in the source
		// stage: the bots processor clones what it keeps.
		if event.DecodeBinaryShared(v[21:], e) != nil {
			return
		}
		d.p.AddRange(e, d.watermark(), window.Range{Lo: lo, Hi: 1<<63 - 1})
	}
}

// track keeps the flagged device windows of rows, the partition's
// emissions: a later emission of a window replaces an earlier one.
func (d *devicePart) track(rows []bots.Row) {
	for i := range rows {
		r := &rows[i]
		if r.Flagged {
			d.setPending(r.Start, r.EntityID, *r.Users) // set for every flagged device row
			continue
		}
		if w := d.pending[r.Start]; w != nil {
			delete(w, r.EntityID)
			if len(w) == 0 {
				delete(d.pending, r.Start)
			}
		}
	}
}

// setPending keeps device's window at start as flagged, with its users.
func (d *devicePart) setPending(start int64, device string, users []string) {
	w := d.pending[start]
	if w == nil {
		w = map[string][]string{}
		d.pending[start] = w
	}
	w[device] = users
}

// flagRecords returns, once the partition's watermark has closed them
// (spec's lateness after their end), the flags of its pending windows, each
// user's to the partition of questline.events (of sources) that userPart
// says, then, if the watermark moved, its marker to every partition. The
// windows closed are forgotten. partition is the devices partition's.
func (d *devicePart) flagRecords(partition int32, spec window.Spec, sources int32, userPart func(user string) int32) []*kgo.Record {
	wm := d.watermark()
	if wm == window.None {
		return nil
	}
	var recs []*kgo.Record
	var closed []int64 // a few: the windows open are the lateness and a window's
	for start := range d.pending {
		if start+spec.Size.Milliseconds()+spec.Lateness.Milliseconds() <= wm {
			closed = append(closed, start)
		}
	}
	slices.Sort(closed)
	for _, start := range closed {
		w := d.pending[start]
		for _, device := range slices.Sorted(maps.Keys(w)) {
			for _, u := range w[device] {
				recs = append(recs, &kgo.Record{Topic: TopicDeviceFlags, Key: []byte(u), Value: pipeline.DeviceFlagValue(u, start), Partition: userPart(u)})
			}
		}
		delete(d.pending, start)
	}
	if wm > d.marked {
		v := pipeline.DeviceMarkerValue(partition, wm)
		for p := range sources {
			recs = append(recs, &kgo.Record{Topic: TopicDeviceFlags, Value: v, Partition: p})
		}
		d.marked = wm
	}
	return recs
}

// deviceStage computes bot signals per device. Sources forward only events
// on time for some bot window, with the first window open at the source;
// the stage's watermark never passes a source's, so the device windows an
// event reaches are exactly those open at its source (as a geo partner
// too: bots' geo marks keep their first window): the rows do not depend on
// how the sources' records interleave (their versions may: docs/processors.md). Records re-sent after a
// source restore are dropped by source offset. Each partition is
// snapshotted every SnapshotInterval (device_snapshot.go) with the offset
// it reflects; on assignment it is restored from its snapshot and read on
// from that offset, or, without a usable snapshot, re-read from the start.
// Its commits are for lag monitoring only (commitPolled).
type deviceStage struct {
	cfg     *Config
	log     *slog.Logger
	m       *metrics
	cl      *kgo.Client
	w       *ch.Writer[bots.Row]
	refs    *refusals
	sources int
	byUser  kgo.TopicPartitioner // keyed records only: no sticky state

	mu    sync.Mutex
	parts map[int32]*devicePart
	snaps snapshotWriter
	// ready is closed once cl is set: the group may join, and call
	// assign, before the constructor returns.
	ready chan struct{}
}

func newDeviceStage(cfg *Config, log *slog.Logger, m *metrics, c *ch.Client, sources int32) (*deviceStage, error) {
	w, err := ch.NewWriter(c, tables.BotSignals)
	if err != nil {
		return nil, err
	}
	s := &deviceStage{ready: make(chan struct{}), cfg: cfg, log: log, m: m, w: w, sources: int(sources), parts: map[int32]*devicePart{}, snaps: newSnapshotWriter("device", log, m),
		byUser: kgo.StickyKeyPartitioner(nil).ForTopic(kafka.TopicEvents)}
	s.cl, err = kafka.NewClient(cfg.Brokers, log,
		kgo.ConsumerGroup(cfg.Group+"-devices"),
		kgo.ConsumeTopics(TopicDevices),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AdjustFetchOffsetsFn(s.assign),
		kgo.OnPartitionsRevoked(s.revoke),
		kgo.OnPartitionsLost(s.revoke),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	close(s.ready)
	s.refs = &refusals{cl: s.cl, log: log, m: m, now: cfg.Now}
	return s, err
}

// userPartition is the partition of questline.events (of s.sources) that
// holds user's events: they are keyed by user (event.Event.Key), placed
// by Kafka's murmur2 as the producers' partitioner places them.
func (s *deviceStage) userPartition(user string) int32 {
	return int32(s.byUser.Partition(&kgo.Record{Key: []byte(user)}, s.sources))
}

func (s *deviceStage) deviceConfig() bots.Config {
	c := s.cfg.Pipeline.Bots
	c.Entity = bots.EntityDevice
	return c
}

func (s *deviceStage) assign(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	<-s.ready
	ends := logEnds(ctx, s.cl, s.log, TopicDevices)
	s.mu.Lock()
	defer s.mu.Unlock()
	for partition := range offsets[TopicDevices] {
		dp, err := s.restore(partition, ends)
		if err != nil {
			return nil, err
		}
		s.parts[partition] = dp
		offsets[TopicDevices][partition] = kgo.NewOffset().At(dp.next).WithEpoch(-1)
	}
	return offsets, nil
}

func (s *deviceStage) revoke(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range revoked[TopicDevices] {
		delete(s.parts, p)
		s.snaps.revoked(p) // its new owner may write a newer one first
	}
}

func (s *deviceStage) run(ctx context.Context) error {
	defer s.cl.Close()
	defer s.snaps.wait(&s.mu)
	var e event.Event
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
				s.log.Warn("processors: device fetch", "partition", partition, "err", err)
			}
		})
		s.mu.Lock()
		fetches.EachRecord(func(r *kgo.Record) {
			dp := s.parts[r.Partition]
			if dp == nil || r.Offset < dp.next {
				return // not ours, or already in the restored state
			}
			s.m.deviceRecords.Inc()
			dp.apply(r.Offset, r.Value, &e)
		})
		var flags []*kgo.Record
		for partition, dp := range s.parts {
			rows := dp.p.Flush(dp.watermark())
			dp.track(rows)
			s.w.Add(rows...)
			flags = append(flags, dp.flagRecords(partition, s.deviceConfig().Window, int32(s.sources), s.userPartition)...)
		}
		err := flushRefusing(ctx, s.w, tables.BotSignals.Name, s.refs)
		if err == nil && len(flags) > 0 {
			// Before the snapshot, which forgets the windows sent.
			if err = s.cl.ProduceSync(ctx, flags...).FirstErr(); err == nil {
				for _, r := range flags {
					if r.Key != nil { // not a marker
						s.m.flagsSent.Inc()
					}
				}
			}
		}
		if err == nil && !fetches.Empty() {
			commitPolled(ctx, s.cl, s.log, "device")
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
