package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/questline/questline/event"
)

// metrics of the ingest handler. Names follow Prometheus conventions: base
// units, _total for counters.
type metrics struct {
	requests     *prometheus.CounterVec   // by HTTP status code
	accepted     *prometheus.CounterVec   // by source
	rejected     *prometheus.CounterVec   // by reason (dead-letter kind)
	deduplicated prometheus.Counter       // accepted events the recent-id cache kept off Kafka
	rateLimited  *prometheus.CounterVec   // by limit (ip, key, device)
	deadLetters  *prometheus.CounterVec   // dead letters written, by kind
	batchEvents  prometheus.Histogram     // events per request
	bodyBytes    *prometheus.HistogramVec // body size, by form (sent, decoded)
	produce      prometheus.Histogram     // time to Kafka's ack of a batch
	inFlight     prometheus.Gauge
	buffered     prometheus.GaugeFunc // set by New: the Handler's buffered bytes
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_ingest_requests_total",
			Help: "POST /v1/events requests answered, by HTTP status code.",
		}, []string{"code"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_ingest_events_accepted_total",
			Help: "Events accepted and acknowledged by Kafka, by source (client, server).",
		}, []string{"source"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_ingest_events_rejected_total",
			Help: "Events rejected one by one (and sent to the dead-letter topic), by reason.",
		}, []string{"reason"}),
		deduplicated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "questline_ingest_events_deduplicated_total",
			Help: "Accepted events not produced again because their event_id was acknowledged recently (client retries).",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_ingest_rate_limited_requests_total",
			Help: "Requests answered 429, by the limit that refused them (ip, ip_in_flight, key, device).",
		}, []string{"limit"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_ingest_dead_letters_total",
			Help: "Records written to questline.events.dlq, by kind.",
		}, []string{"kind"}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "questline_ingest_batch_events",
			Help:    "Events per request.",
			Buckets: []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000},
		}),
		bodyBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "questline_ingest_request_body_bytes",
			Help:    "Request body size, as sent and after gzip decoding.",
			Buckets: prometheus.ExponentialBuckets(256, 4, 9),
		}, []string{"form"}),
		produce: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "questline_ingest_produce_duration_seconds",
			Help:    "Time from producing a batch's records to Kafka's acknowledgement of all of them.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15),
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "questline_ingest_in_flight_requests",
			Help: "Requests being read, parsed or produced.",
		}),
	}
	// Accepted events of each source exist from the start at 0: an
	// instance that rejects every event would otherwise have no accepted
	// series, and QuestlineIngestRejectsHigh (alerts/), a ratio over it,
	// no value.
	for _, s := range []event.Source{event.SourceClient, event.SourceServer} {
		m.accepted.WithLabelValues(s.String())
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.accepted, m.rejected, m.deduplicated, m.rateLimited,
			m.deadLetters, m.batchEvents, m.bodyBytes, m.produce, m.inFlight)
	}
	return m
}
