package clickhouse

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// writerMetrics are shared by every Writer of a Client, labelled by table.
type writerMetrics struct {
	rows     *prometheus.CounterVec
	batches  *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	errors   *prometheus.CounterVec
	refused  *prometheus.CounterVec
	retrying *prometheus.GaugeVec
}

func newWriterMetrics(reg prometheus.Registerer) (*writerMetrics, error) {
	m := &writerMetrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_clickhouse_rows_written_total",
			Help: "Rows acknowledged by ClickHouse, by table (re-inserted rows count again).",
		}, []string{"table"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_clickhouse_batches_total",
			Help: "INSERT batches acknowledged by ClickHouse, by table.",
		}, []string{"table"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "questline_clickhouse_insert_duration_seconds",
			Help:    "Duration of one INSERT attempt, successful or not, by table.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"table"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_clickhouse_insert_retries_total",
			Help: "INSERT attempts retried after a transient error, by table.",
		}, []string{"table"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_clickhouse_insert_errors_total",
			Help: "Failed INSERT attempts by table and kind: unavailable (network, server down), server (transient server error), refused (ClickHouse refused the data).",
		}, []string{"table", "kind"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_clickhouse_rows_refused_total",
			Help: "Rows ClickHouse refused for good (poison rows handed back to the caller), by table.",
		}, []string{"table"}),
		retrying: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "questline_clickhouse_insert_blocked",
			Help: "1 while a writer of the table is retrying a batch ClickHouse does not accept (ClickHouse down or failing), else 0.",
		}, []string{"table"}),
	}
	if reg == nil {
		return m, nil
	}
	// A second Client on the same registry shares the first one's series.
	var err error
	for _, r := range []func() error{
		func() (e error) { m.rows, e = register(reg, m.rows); return },
		func() (e error) { m.batches, e = register(reg, m.batches); return },
		func() (e error) { m.latency, e = register(reg, m.latency); return },
		func() (e error) { m.retries, e = register(reg, m.retries); return },
		func() (e error) { m.errors, e = register(reg, m.errors); return },
		func() (e error) { m.refused, e = register(reg, m.refused); return },
		func() (e error) { m.retrying, e = register(reg, m.retrying); return },
	} {
		if err = r(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same description.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
