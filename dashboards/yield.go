package dashboards

// yieldBoard shows offer yield per placement and bidder and bidstream
// integrity (SPEC §5), from offer_yield and bidstream_integrity.
func yieldBoard() board {
	perPlacement := func(column string) string {
		return `SELECT window_end AS time, placement, ` + column + `
FROM questline.offer_yield FINAL
WHERE scope = ${scope:sqlstring} AND placement != '' AND bidder_id = '' AND $__timeFilter(window_end)
ORDER BY time, placement`
	}
	return board{
		uid:   "questline-yield",
		title: "questline / Offer yield and bidstream integrity",
		description: "Sponsor offers sold by auction: revenue per thousand auctions (rpm), fill rate, eCPM, win rate and bid latency " +
			"per placement, and integrity violations per auction, from offer_yield and bidstream_integrity (read with FINAL). " +
			"Windows of 5 min every minute, by bid_request time; amounts in currency units (one currency per deployment).",
		tags:  []string{"questline", "yield", "clickhouse"},
		scope: true,
		rows: []row{
			{title: "Yield by placement", panels: []panel{
				{
					title:       "RPM by placement",
					description: "rpm = revenue / auctions × 1000: the yield of an offer opportunity.",
					viz:         vizTimeSeries, unit: unitShort,
					sql: &sqlQuery{text: perPlacement("rpm"), columns: []string{"time", "placement", "rpm"}},
				},
				{
					title:       "Fill rate by placement",
					description: "fill_rate = impressions / auctions.",
					viz:         vizTimeSeries, unit: unitPercent,
					sql: &sqlQuery{text: perPlacement("fill_rate"), columns: []string{"time", "placement", "fill_rate"}},
				},
				{
					title:       "eCPM by placement",
					description: "ecpm = revenue / impressions × 1000.",
					viz:         vizTimeSeries, unit: unitShort,
					sql: &sqlQuery{text: perPlacement("ecpm"), columns: []string{"time", "placement", "ecpm"}},
				},
				{
					title:       "Win rate by placement",
					description: "win_rate = wins / bids.",
					viz:         vizTimeSeries, unit: unitPercent,
					sql: &sqlQuery{text: perPlacement("win_rate"), columns: []string{"time", "placement", "win_rate"}},
				},
				{
					title:       "Bid latency p50 / p99 by placement",
					description: "Percentiles of the bidders' answer latency (latency_ms of every bid, no-bid, timeout and error).",
					viz:         vizTimeSeries, width: 24, unit: unitMs,
					sql: &sqlQuery{
						text:    perPlacement("bid_latency_p50_ms, bid_latency_p99_ms"),
						columns: []string{"time", "placement", "bid_latency_p50_ms", "bid_latency_p99_ms"},
					},
				},
				{
					title:       "Placements over the range",
					description: "Per placement; ratios from the sums. " + tilingNote,
					viz:         vizTable, width: 24,
					sql: &sqlQuery{
						text: `SELECT placement, sum(auctions) AS total_auctions, sum(bids) AS total_bids, sum(wins) AS total_wins,
  sum(impressions) AS total_impressions, sum(clicks) AS total_clicks, sum(revenue_micros) / 1000000 AS revenue,
  if(total_auctions = 0, NULL, revenue / total_auctions * 1000) AS range_rpm,
  if(total_auctions = 0, NULL, total_impressions / total_auctions) AS range_fill_rate,
  if(total_impressions = 0, NULL, revenue / total_impressions * 1000) AS range_ecpm,
  if(total_bids = 0, NULL, total_wins / total_bids) AS range_win_rate
FROM questline.offer_yield FINAL
WHERE scope = ${scope:sqlstring} AND placement != '' AND bidder_id = ''
  AND ` + tilingWindows("offer_yield") + `
GROUP BY placement
ORDER BY revenue DESC, placement`,
						columns: []string{"placement", "total_auctions", "total_bids", "total_wins", "total_impressions", "total_clicks",
							"revenue", "range_rpm", "range_fill_rate", "range_ecpm", "range_win_rate"},
					},
					columnUnits: []colUnit{{"range_fill_rate", unitPercent}, {"range_win_rate", unitPercent}},
				},
				{
					title:       "Bidders over the range",
					description: "Per bidder, all placements. " + tilingNote,
					viz:         vizTable, width: 24,
					sql: &sqlQuery{
						text: `SELECT bidder_id, sum(auctions) AS answered_auctions, sum(bids) AS total_bids, sum(no_bids) AS total_no_bids,
  sum(timeouts) AS total_timeouts, sum(wins) AS total_wins,
  if(total_bids = 0, NULL, total_wins / total_bids) AS range_win_rate,
  max(bid_latency_p99_ms) AS worst_window_p99_ms
FROM questline.offer_yield FINAL
WHERE scope = ${scope:sqlstring} AND placement = '' AND bidder_id != ''
  AND ` + tilingWindows("offer_yield") + `
GROUP BY bidder_id
ORDER BY total_wins DESC, bidder_id`,
						columns: []string{"bidder_id", "answered_auctions", "total_bids", "total_no_bids", "total_timeouts",
							"total_wins", "range_win_rate", "worst_window_p99_ms"},
					},
					columnUnits: []colUnit{{"range_win_rate", unitPercent}, {"worst_window_p99_ms", unitMs}},
				},
			}},
			{title: "Bidstream integrity", panels: []panel{
				{
					title:       "Integrity violations by kind (all placements)",
					description: "Auctions with a violation of each kind, per window (an auction counts once per kind).",
					viz:         vizTimeSeries,
					sql: &sqlQuery{
						text: `SELECT window_end AS time, kind, violations
FROM questline.bidstream_integrity FINAL
WHERE scope = ${scope:sqlstring} AND placement = '' AND $__timeFilter(window_end)
ORDER BY time, kind`,
						columns: []string{"time", "kind", "violations"},
					},
				},
				{
					title:       "Integrity ratio by placement",
					description: "integrity_ratio = auctions without violation / auctions, per window (the same on each kind's row).",
					viz:         vizTimeSeries, unit: unitPercent,
					sql: &sqlQuery{
						text: `SELECT window_end AS time, placement, max(integrity_ratio) AS ratio
FROM questline.bidstream_integrity FINAL
WHERE scope = ${scope:sqlstring} AND placement != '' AND $__timeFilter(window_end)
GROUP BY window_end, placement
ORDER BY time, placement`,
						columns: []string{"time", "placement", "ratio"},
					},
				},
				{
					title:       "Violations by placement and kind over the range",
					description: tilingNote + " Kinds without violations are left out.",
					viz:         vizTable, width: 24,
					sql: &sqlQuery{
						text: `SELECT placement, kind, sum(violations) AS total_violations
FROM questline.bidstream_integrity FINAL
WHERE scope = ${scope:sqlstring} AND placement != '' AND violations > 0
  AND ` + tilingWindows("bidstream_integrity") + `
GROUP BY placement, kind
ORDER BY total_violations DESC, placement, kind`,
						columns: []string{"placement", "kind", "total_violations"},
					},
				},
			}},
		},
	}
}
