package dashboards

// operationsBoard is the on-call view of the pipeline, on the Prometheus
// data source, from the metrics every questline process exports
// (docs/ingest.md, docs/sink.md, docs/processors.md). $__rate_interval is
// Grafana's rate window for the panel's resolution.
func operationsBoard() board {
	return board{
		uid:   "questline-operations",
		title: "questline / Operations",
		description: "Pipeline health from the questline processes' /metrics: ingest, dead letters, sink lag, " +
			"processor watermarks and late events, snapshots and restores, the quest/drop API, ClickHouse inserts.",
		tags: []string{"questline", "operations", "prometheus"},
		rows: []row{
			{title: "Ingest", panels: []panel{
				{
					title: "Events accepted and rejected", viz: vizTimeSeries, unit: unitOps,
					description: "Events per second acknowledged by Kafka, by source, and rejected one by one, by reason.",
					prom: []promQuery{
						{`sum by (source) (rate(questline_ingest_events_accepted_total[$__rate_interval]))`, "accepted {{source}}"},
						{`sum by (reason) (rate(questline_ingest_events_rejected_total[$__rate_interval]))`, "rejected {{reason}}"},
					},
				},
				{
					title: "Dead letters and rate limits", viz: vizTimeSeries, unit: unitOps,
					description: "Records written to questline.events.dlq by kind, and requests answered 429 by the limit that refused them.",
					prom: []promQuery{
						{`sum by (kind) (rate(questline_ingest_dead_letters_total[$__rate_interval]))`, "dead letters {{kind}}"},
						{`sum by (limit) (rate(questline_ingest_rate_limited_requests_total[$__rate_interval]))`, "429 {{limit}}"},
					},
				},
				{
					title: "Requests by status", viz: vizTimeSeries, unit: unitOps,
					prom: []promQuery{
						{`sum by (code) (rate(questline_ingest_requests_total[$__rate_interval]))`, "{{code}}"},
					},
				},
				{
					title: "Kafka acknowledgement latency", viz: vizTimeSeries, unit: unitSeconds,
					description: "Time from producing a batch to Kafka's acknowledgement of all its records (acks=all).",
					prom: []promQuery{
						{`histogram_quantile(0.5, sum by (le) (rate(questline_ingest_produce_duration_seconds_bucket[$__rate_interval])))`, "p50"},
						{`histogram_quantile(0.99, sum by (le) (rate(questline_ingest_produce_duration_seconds_bucket[$__rate_interval])))`, "p99"},
					},
				},
			}},
			{title: "Sink", panels: []panel{
				{
					title: "Sink consumer lag", viz: vizTimeSeries, unit: unitShort,
					description: "Records not yet consumed by the ClickHouse sink, by topic.",
					prom: []promQuery{
						{`sum by (topic) (questline_sink_consumer_lag_records)`, "{{topic}}"},
					},
				},
				{
					title: "Sink records and dead letters", viz: vizTimeSeries, unit: unitOps,
					prom: []promQuery{
						{`sum by (topic) (rate(questline_sink_records_total[$__rate_interval]))`, "consumed {{topic}}"},
						{`sum by (reason) (rate(questline_sink_dead_lettered_total[$__rate_interval]))`, "dead-lettered {{reason}}"},
					},
				},
			}},
			{title: "Processors", panels: []panel{
				{
					title: "Watermark lag", viz: vizTimeSeries, unit: unitSeconds,
					description: "Wall clock − event-time watermark, worst partition and median partition. Windows close this much after real time (plus their size). The clean pass's, beyond its designed lag (21 min by default): clean rows trail all rows by that much more; stuck: how long the clean pass has waited for the device stage (about the flush interval when healthy).",
					prom: []promQuery{
						{`max(questline_processor_watermark_lag_seconds)`, "worst partition"},
						{`quantile(0.5, questline_processor_watermark_lag_seconds)`, "median partition"},
						{`max(questline_processor_clean_lag_seconds)`, "clean pass, worst partition"},
						{`max(questline_processor_clean_stuck_seconds)`, "clean pass stuck (waiting for the device stage)"},
					},
				},
				{
					title: "Late events", viz: vizTimeSeries, unit: unitOps,
					description: "Events that missed at least one closed window (they are still in the events table), by processor.",
					prom: []promQuery{
						{`sum by (processor) (rate(questline_processor_late_events_total[$__rate_interval]))`, "{{processor}}"},
					},
				},
				{
					title: "Window rows emitted and refused", viz: vizTimeSeries, unit: unitOps,
					description: "Window rows emitted by table, and rows ClickHouse refused (dead-lettered as processor_refused).",
					prom: []promQuery{
						{`sum by (table) (rate(questline_processor_rows_emitted_total[$__rate_interval]))`, "emitted {{table}}"},
						{`sum by (table) (rate(questline_processor_rows_refused_total[$__rate_interval]))`, "refused {{table}}"},
					},
				},
				{
					title: "Processor state", viz: vizTimeSeries, unit: unitShort,
					prom: []promQuery{
						{`sum by (kind) (questline_processor_state_entries)`, "{{kind}}"},
						{`sum(questline_processor_clean_pending_events)`, "clean pass pending events"},
					},
				},
				{
					title: "Snapshot, restore and clean-pass read durations (p99)", viz: vizTimeSeries, width: 24, unit: unitSeconds,
					description: "Time to take and write a partition snapshot, the pause it costs the source stage, the time to restore a partition, and the clean pass's Fetch requests (it reads its events again from questline.events, about the clean lag after the main pass; the stage waits for each).",
					prom: []promQuery{
						{`histogram_quantile(0.99, sum by (le) (rate(questline_processor_snapshot_duration_seconds_bucket[$__rate_interval])))`, "snapshot"},
						{`histogram_quantile(0.99, sum by (le) (rate(questline_processor_snapshot_pause_seconds_bucket[$__rate_interval])))`, "snapshot pause"},
						{`histogram_quantile(0.99, sum by (le) (rate(questline_processor_restore_duration_seconds_bucket[$__rate_interval])))`, "restore"},
						{`histogram_quantile(0.99, sum by (le) (rate(questline_processor_clean_fetch_duration_seconds_bucket[$__rate_interval])))`, "clean pass fetch"},
					},
				},
				{
					title: "Snapshot failures", viz: vizTimeSeries, width: 24, unit: unitOps,
					description: "Partition snapshots that could not be written, by stage. The stage goes on (results are unaffected) but restarts re-read from older snapshots; QuestlineSnapshotsFailing opens a ticket when it lasts.",
					prom: []promQuery{
						{`sum by (stage) (rate(questline_processor_snapshot_failures_total[$__rate_interval]))`, "{{stage}}"},
					},
				},
			}},
			{title: "Quest/drop API", panels: []panel{
				{
					title: "API requests by status", viz: vizTimeSeries, unit: unitOps,
					prom: []promQuery{
						{`sum by (code) (rate(questline_api_requests_total[$__rate_interval]))`, "{{code}}"},
						{`sum by (limit) (rate(questline_api_rate_limited_total[$__rate_interval]))`, "429 {{limit}}"},
					},
				},
				{
					title: "Claims by outcome", viz: vizTimeSeries, unit: unitOps,
					description: "Claims answered: granted, sold_out, not_live, or conflict (a claim_id reused for another user or drop); repeats included.",
					prom: []promQuery{
						{`sum by (outcome) (rate(questline_api_claims_total[$__rate_interval]))`, "{{outcome}}"},
					},
				},
				{
					title: "Claim decision wait (p50, p99)", viz: vizTimeSeries, unit: unitSeconds,
					description: "From appending a claim to questline.claims to its decision in the instance's fold: the claims log's round trip.",
					prom: []promQuery{
						{`histogram_quantile(0.5, sum by (le) (rate(questline_api_claim_decision_wait_seconds_bucket[$__rate_interval])))`, "p50"},
						{`histogram_quantile(0.99, sum by (le) (rate(questline_api_claim_decision_wait_seconds_bucket[$__rate_interval])))`, "p99"},
					},
				},
				{
					title: "Claims log readers and outcome relay", viz: vizTimeSeries, unit: unitShort,
					description: "Instances caught up with questline.claims (answering claims), and failed attempts of the outcome relay, which writes every decided claim's outcome event (retried).",
					prom: []promQuery{
						{`sum(questline_api_claims_ready)`, "instances answering claims"},
						{`sum(rate(questline_api_relay_failures_total[$__rate_interval]))`, "relay failures/s"},
					},
				},
				{
					title: "Claims decisions held per instance", viz: vizTimeSeries, width: 24, unit: unitShort,
					description: "Decisions in each instance's claims fold, about 200 bytes of heap each: those of drops live or closed within the claims retention (-api-claims-retention, 7 days), the older ones forgotten; a restart restores the fold from its snapshot (-api-snapshot-dir) and reads the claims log on from there, or the whole log without one (about 3.5 s per million records; docs/api.md).",
					prom: []promQuery{
						{`max by (instance) (questline_api_claims_decisions)`, "{{instance}}"},
					},
				},
			}},
			{title: "Offer yield: what the alerts read", panels: []panel{
				{
					title: "RPM of the latest complete window", viz: vizTimeSeries, unit: unitShort,
					description: "Per placement, revenue per thousand auctions of its latest complete yield window (recording rule of alerts/questline.rules.yml; QuestlineYieldDrop pages when it falls under half its hour's average).",
					prom: []promQuery{
						{`questline:yield_rpm:latest`, "{{placement}}"},
					},
				},
				{
					title: "Integrity ratio of the latest complete window", viz: vizTimeSeries, unit: unitPercent,
					description: "Per placement, auctions without integrity violation / auctions (QuestlineIntegrityRatioLow pages under 90 % with 100 auctions or more).",
					prom: []promQuery{
						{`questline:yield_integrity_ratio:latest`, "{{placement}}"},
					},
				},
				{
					title: "Auctions of the latest complete window", viz: vizTimeSeries, unit: unitShort,
					description: "Per placement, auctions of its latest complete yield window (the yield alerts need 100 or more).",
					prom: []promQuery{
						{`questline:yield_auctions:latest`, "{{placement}}"},
					},
				},
				{
					title: "Fill rate of the latest complete window", viz: vizTimeSeries, unit: unitPercent,
					description: "Per placement, impressions / auctions of its latest complete yield window (on an axis of its own: on the auctions' it read as a flat line near 0).",
					prom: []promQuery{
						{`questline:yield_fill_rate:latest`, "{{placement}}"},
					},
				},
				{
					title: "Age of the newest complete yield window", viz: vizStat, unit: unitSeconds,
					description: "Wall clock − the end of the newest complete yield window (QuestlineYieldStale pages above 15 minutes).",
					prom: []promQuery{
						{`time() - max(questline:yield_window_end_timestamp_seconds:latest)`, "age"},
					},
				},
			}},
			{title: "ClickHouse", panels: []panel{
				{
					title: "Insert errors", viz: vizTimeSeries, unit: unitOps,
					description: "Failed INSERT attempts by table and kind (unavailable, server, refused, fatal, split: a block over the server's partitions limit, schema: a column type changed by hand; docs/sink.md).",
					prom: []promQuery{
						{`sum by (table, kind) (rate(questline_clickhouse_insert_errors_total[$__rate_interval]))`, "{{table}} {{kind}}"},
					},
				},
				{
					title: "Insert duration", viz: vizTimeSeries, unit: unitSeconds,
					prom: []promQuery{
						{`histogram_quantile(0.5, sum by (le, table) (rate(questline_clickhouse_insert_duration_seconds_bucket[$__rate_interval])))`, "p50 {{table}}"},
						{`histogram_quantile(0.99, sum by (le, table) (rate(questline_clickhouse_insert_duration_seconds_bucket[$__rate_interval])))`, "p99 {{table}}"},
					},
				},
				{
					title: "Rows written and refused", viz: vizTimeSeries, unit: unitOps,
					prom: []promQuery{
						{`sum by (table) (rate(questline_clickhouse_rows_written_total[$__rate_interval]))`, "written {{table}}"},
						{`sum by (table) (rate(questline_clickhouse_rows_refused_total[$__rate_interval]))`, "refused {{table}}"},
					},
				},
				{
					title: "Writers blocked", viz: vizStat, unit: unitShort,
					description: "Tables whose writer is retrying a batch ClickHouse does not accept (ClickHouse down or failing). Nothing is lost; rows wait.",
					prom: []promQuery{
						{`max by (table) (questline_clickhouse_insert_blocked)`, "{{table}}"},
					},
				},
			}},
		},
	}
}
