package clickhouse

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/questline/questline/kafka"
)

// sinkMetrics are the sink role's own series; inserts are counted by the
// writer metrics.
type sinkMetrics struct {
	records      *prometheus.CounterVec
	lag          *prometheus.GaugeVec
	deadLettered *prometheus.CounterVec
	dropped      prometheus.Counter
	commits      *prometheus.CounterVec
	fetchErrors  prometheus.Counter
}

func newSinkMetrics(reg prometheus.Registerer) (*sinkMetrics, error) {
	m := &sinkMetrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_sink_records_total",
			Help: "Kafka records consumed by the ClickHouse sink, by topic.",
		}, []string{"topic"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "questline_sink_consumer_lag_records",
			Help: "Records in the partition after the last one the sink consumed (high watermark - next offset), by topic and partition.",
		}, []string{"topic", "partition"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_sink_dead_lettered_total",
			Help: "Events the sink sent to the dead-letter topic, by reason: refused (ClickHouse refused the row), undecodable (corrupt record).",
		}, []string{"reason"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "questline_sink_dropped_total",
			Help: "Dead letters ClickHouse refused even in their reduced form; they are logged and skipped (a dead letter is never dead-lettered again).",
		}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_sink_commits_total",
			Help: "Offset commits after acknowledged batches, by result (ok, error). A failed commit only means re-delivery, which the tables absorb.",
		}, []string{"result"}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "questline_sink_fetch_errors_total",
			Help: "Errors returned by Kafka fetches.",
		}),
	}
	// The counters the alerts read with rate() and increase() exist from
	// the start at 0: increase() sees nothing of a series whose first
	// sample is already 1 (QuestlineRowsDeadLettered would miss the first
	// dead letters), and a sink stuck before its first records has a
	// rate of 0 rather than none (QuestlineSinkLagging).
	for _, reason := range []string{"refused", "undecodable"} {
		m.deadLettered.WithLabelValues(reason)
	}
	for _, topic := range []string{kafka.TopicEvents, kafka.TopicDLQ} {
		m.records.WithLabelValues(topic)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.records, m.lag, m.deadLettered, m.dropped, m.commits, m.fetchErrors} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
