package api

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests         *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	rateLimited      *prometheus.CounterVec
	claims           *prometheus.CounterVec
	applied          prometheus.Counter
	badRecords       prometheus.Counter
	catchUp          prometheus.Gauge
	ready            prometheus.Gauge
	decisions        prometheus.Gauge
	goneDrops        prometheus.Gauge
	retention        prometheus.Gauge
	restored         prometheus.Gauge
	snapshotSeconds  prometheus.Gauge
	snapshotFailures prometheus.Counter
	relayed          prometheus.Counter
	relayFailures    prometheus.Counter
	decisionWait     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_api_requests_total",
			Help: "Quest/drop API requests answered, by route pattern and HTTP status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "questline_api_request_duration_seconds",
			Help:    "Time to answer a quest/drop API request, by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_api_rate_limited_total",
			Help: "API requests refused with 429, by the limit hit (ip, ip_in_flight, key, device).",
		}, []string{"limit"}),
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "questline_api_claims_total",
			Help: "Claims answered, by outcome (granted, sold_out, not_live, conflict); repeats included.",
		}, []string{"outcome"}),
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "questline_api_claims_log_records_applied_total",
			Help: "Records of questline.claims folded into this instance's claims state.",
		}),
		badRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "questline_api_claims_log_bad_records_total",
			Help: "Records of questline.claims that did not decode and were skipped (every instance skips them alike).",
		}),
		catchUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "questline_api_claims_catch_up_seconds",
			Help: "Time this instance took to re-read questline.claims up to its end at start (0 until done).",
		}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "questline_api_claims_ready",
			Help: "1 once this instance has caught up with questline.claims and answers claims.",
		}),
		decisions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "questline_api_claims_decisions",
			Help: "Claim decisions held by this instance's claims fold (about 240 bytes of heap each, on every instance); those of drops closed more than the claims retention ago are forgotten.",
		}),
		goneDrops: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "questline_api_claims_forgotten_drops",
			Help: "Drops this instance's claims fold forgot (closed more than the claims retention ago): only their ids are kept, and their claims are answered 410.",
		}),
		retention: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "questline_api_claims_retention_seconds",
			Help: "The claims retention of this instance (-api-claims-retention; 0: never forget); every API instance must have the same.",
		}),
		restored: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "questline_api_claims_snapshot_restored_partitions",
			Help: "Partitions of questline.claims whose fold this instance restored from a snapshot at start (the others were read from the start).",
		}),
		snapshotSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "questline_api_claims_snapshot_seconds",
			Help: "Time the last claims fold snapshot paused folding (and so claims' decisions) to take its view of the folds; encoding and writing follow in the background.",
		}),
		snapshotFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "questline_api_claims_snapshot_failures_total",
			Help: "Claims fold snapshots that could not be written, or were refused at start (unreadable, another version, not matching the log).",
		}),
		relayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "questline_api_relay_outcome_events_total",
			Help: "Claim outcome and drop lifecycle events written by the outcome relay (duplicates of the answering instance's included).",
		}),
		relayFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "questline_api_relay_failures_total",
			Help: "Failed outcome relay produce or commit attempts (retried).",
		}),
		decisionWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "questline_api_claim_decision_wait_seconds",
			Help:    "Time from appending a claim to questline.claims to its decision in this instance's fold.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.rateLimited, m.claims, m.applied, m.badRecords,
			m.catchUp, m.ready, m.decisions, m.goneDrops, m.retention, m.restored, m.snapshotSeconds, m.snapshotFailures, m.relayed, m.relayFailures, m.decisionWait)
	}
	return m
}
