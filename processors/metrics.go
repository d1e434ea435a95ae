package processors

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/questline/questline/processors/tables"
)

type metrics struct {
	events        prometheus.Counter
	late          *prometheus.CounterVec
	watermarkLag  *lagCollector
	cleanLag      *lagCollector
	cleanStuck    *lagCollector
	emitted       *prometheus.CounterVec
	stateEvents   prometheus.Gauge
	state         *prometheus.GaugeVec
	restore       prometheus.Histogram
	snapshot      prometheus.Histogram
	snapshotPause prometheus.Histogram
	cleanFetch    prometheus.Histogram
	// snapshotFailures counts failed snapshot writes by stage.
	snapshotFailures *prometheus.CounterVec
	rebalances       prometheus.Counter
	idle             prometheus.Counter
	refused          *prometheus.CounterVec
	// The device stage's.
	deviceRestore  prometheus.Histogram
	deviceSnapshot prometheus.Histogram
	devicePause    prometheus.Histogram
	deviceRecords  prometheus.Counter
	flagsSent      prometheus.Counter
	flagsFetch     prometheus.Histogram
	// The merge stage's.
	mergeRestore  prometheus.Histogram
	mergeSnapshot prometheus.Histogram
	mergeRecords  prometheus.Counter
	yield         *yieldGauges
}

// newMetrics returns the processors' metrics, registered with reg (nil: not
// registered); now is the wall clock of the watermark lag (nil: time.Now).
func newMetrics(reg prometheus.Registerer, now func() time.Time) *metrics {
	if now == nil {
		now = time.Now
	}
	m := &metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "questline_processor_events_total", Help: "Events processed by the window processors (the copies of a catalog event in every partition count once, as the event).",
		}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_processor_late_events_total", Help: "Events that missed at least one closed window, by processor.",
		}, []string{"processor"}),
		watermarkLag: newLagCollector(now, prometheus.GaugeOpts{Name: "questline_processor_watermark_lag_seconds",
			Help: "Wall clock at the scrape minus the partition's event-time watermark as of its last flush (so it grows while the stage is stuck)."}),
		cleanLag: newLagCollector(now, prometheus.GaugeOpts{Name: "questline_processor_clean_lag_seconds",
			Help: "Wall clock at the scrape minus the partition's clean-pass watermark plus the clean lag (21 min by default), as of its last flush: how far the clean rows are behind beyond their designed lag. Grows while the clean pass waits for the device stage's markers or cannot read the log, and in fast catch-ups (replays, backfills)."}),
		cleanStuck: newLagCollector(now, prometheus.GaugeOpts{Name: "questline_processor_clean_stuck_seconds",
			Help: "Wall clock at the scrape minus the last flush at which the partition's clean pass was not held back beyond the watermark (nothing it may take waiting, or it took some since the flush before): how long it has waited for the device stage's markers. About the flush interval when healthy."}),
		emitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_processor_rows_emitted_total", Help: "Window rows emitted (partials and direct rows), by table.",
		}, []string{"table"}),
		stateEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "questline_processor_clean_pending_events", Help: "Events held for the lagged clean pass.",
		}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "questline_processor_state_entries", Help: "State held by this process's partitions, by kind (panes, attribution_users, auctions, lift_users, flagged, seen_ids: event ids remembered for de-duplication, merge_identities: window rows the merge stage still holds).",
		}, []string{"kind"}),
		restore: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "questline_processor_restore_duration_seconds", Help: "Time to restore a partition from its snapshot.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		snapshot: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "questline_processor_snapshot_duration_seconds", Help: "Time to take and write a partition snapshot (most of it in the background: see questline_processor_snapshot_pause_seconds).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		snapshotPause: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "questline_processor_snapshot_pause_seconds", Help: "Time the source stage stops processing to freeze a partition's state for a snapshot.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		cleanFetch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "questline_processor_clean_fetch_duration_seconds", Help: "Fetch requests of the clean pass, which reads its events again from questline.events about the clean lag after the main pass (up to 1 MiB each).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
		snapshotFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_processor_snapshot_failures_total", Help: "Partition snapshots that could not be written (the stage goes on; the partition keeps its previous snapshot), by stage (source, device, merge).",
		}, []string{"stage"}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "questline_processor_rebalances_total", Help: "Partition assignments and revocations.",
		}),
		idle: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "questline_processor_idle_watermarks_total", Help: "Watermark records written into idle partitions of questline.events.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_processor_rows_refused_total", Help: "Window rows ClickHouse refused, dead-lettered to questline.events.dlq (kind processor_refused), by table.",
		}, []string{"table"}),
		deviceRestore: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "questline_processor_device_restore_duration_seconds", Help: "Time to restore a partition of questline.devices from its snapshot (or to find it has none) on assignment.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		deviceSnapshot: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "questline_processor_device_snapshot_duration_seconds", Help: "Time to take and write a snapshot of a partition of questline.devices (the write in the background).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		devicePause: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "questline_processor_device_snapshot_pause_seconds", Help: "Time the device stage stops processing to copy a partition's state for a snapshot.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		deviceRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "questline_processor_device_records_total", Help: "Records of questline.devices applied by the device stage, re-reads after an assignment included.",
		}),
		flagsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "questline_processor_device_flags_sent_total", Help: "Flags the device stage sent to the clean pass: one per user of a device flagged in a closed device window (markers not counted).",
		}),
		flagsFetch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "questline_processor_device_flags_fetch_duration_seconds", Help: "Fetch requests of the source stage reading its partitions of questline.device-flags (once per flush interval each).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
		mergeRestore: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "questline_processor_merge_restore_duration_seconds", Help: "Time to restore a partition of the partials topic from its snapshot (or to find it has none) on assignment.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		mergeSnapshot: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "questline_processor_merge_snapshot_duration_seconds", Help: "Time to take and write a snapshot of a partition of the partials topic (the write in the background).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		mergeRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "questline_processor_merge_records_total", Help: "Partials and markers (not tombstones) of the partials topic applied by the merge stage, re-reads after an assignment included.",
		}),
		yield: newYieldGauges(),
	}
	// Every table's counter exists from the start at 0: increase() sees
	// nothing of a series whose first sample is already 1, so
	// QuestlineRowsDeadLettered (alerts/) would miss a process's first
	// refused rows.
	for _, t := range []string{tables.QuestCompletion.Name, tables.ConversionLatency.Name, tables.QuestConversions.Name,
		tables.CreatorLift.Name, tables.OfferYield.Name, tables.BidstreamIntegrity.Name, tables.BotSignals.Name, tables.LateEvents.Name} {
		m.refused.WithLabelValues(t)
	}
	for _, stage := range []string{"source", "device", "merge"} { // at 0, for increase()
		m.snapshotFailures.WithLabelValues(stage)
	}
	if reg != nil {
		reg.MustRegister(m.events, m.late, m.watermarkLag, m.cleanLag, m.cleanStuck, m.emitted, m.stateEvents, m.state, m.restore, m.snapshot, m.snapshotPause, m.cleanFetch, m.snapshotFailures, m.rebalances, m.idle, m.refused,
			m.deviceRestore, m.deviceSnapshot, m.devicePause, m.deviceRecords, m.flagsSent, m.flagsFetch, m.mergeRestore, m.mergeSnapshot, m.mergeRecords)
		reg.MustRegister(m.yield)
	}
	return m
}

// lagCollector serves a gauge of the wall clock at the scrape minus a
// time each owned partition had at its last flush:
// questline_processor_watermark_lag_seconds (its watermark),
// questline_processor_clean_lag_seconds (the clean pass's, plus the
// lag), questline_processor_clean_stuck_seconds (the last flush at which
// the clean pass was not held back). Computed at the scrape, a source stage stuck in a flush
// (ClickHouse refusing its rows, Kafka not taking its partials) shows a
// lag that grows; a gauge set by the flush kept its last healthy value, so
// QuestlineWatermarkLagHigh (alerts/) could not fire for a stopped stage.
type lagCollector struct {
	desc *prometheus.Desc
	now  func() time.Time
	mu   sync.Mutex
	wm   map[int32]int64 // partition → its time (Unix ms)
}

func newLagCollector(now func() time.Time, opts prometheus.GaugeOpts) *lagCollector {
	return &lagCollector{
		desc: gaugeDesc(opts, "partition"),
		now:  now,
		wm:   map[int32]int64{},
	}
}

// set records partition's watermark at a flush.
func (c *lagCollector) set(partition int32, wm int64) {
	c.mu.Lock()
	c.wm[partition] = wm
	c.mu.Unlock()
}

// drop forgets a partition this process no longer owns.
func (c *lagCollector) drop(partition int32) {
	c.mu.Lock()
	delete(c.wm, partition)
	c.mu.Unlock()
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now().UnixMilli()
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, wm := range c.wm {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(now-wm)/1000, strconv.Itoa(int(p)))
	}
}
