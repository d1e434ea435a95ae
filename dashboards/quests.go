package dashboards

// tilingWindows keeps, of a hopping window table's rows, the windows whose
// start is a multiple of their size: consecutive windows that tile the
// time line without overlap (with the default slides, which divide the
// sizes). Sums over them count each event once; sums over every window
// would count it size/slide times. Only windows wholly inside the
// dashboard's range are summed, and in both scopes only up to the latest
// window of the clean scope (the clean pass trails the all scope by its
// lag, ~21 minutes: summed to the range's end, clean totals were lower
// by the windows not yet cleaned, which read as bot traffic; helper-45).
// With no clean window in the range (the clean pass off, or stopped before
// the range: helper-47), to the range's end; the subquery reads the
// range's clean rows only.
func tilingWindows(table string) string {
	return `toUInt32(window_start) % (toUInt32(window_end) - toUInt32(window_start)) = 0
  AND window_start >= $__fromTime AND window_end <= $__toTime
  AND window_end <= (SELECT if(count() = 0, $__toTime, max(window_end)) FROM questline.` + table + `
    WHERE scope = 'clean' AND window_end >= $__fromTime AND window_end <= $__toTime)`
}

// tilingNote is the descriptions' sentence on what tilingWindows sums.
const tilingNote = "Summed over the non-overlapping windows inside the range, up to the latest window of the clean scope in both scopes (clean trails all by ~21 min), so the scopes compare."

// questsBoard shows micro-quest completion and the latency from a quest's
// completion to the user's conversion (SPEC §5).
func questsBoard() board {
	return board{
		uid:   "questline-quests",
		title: "questline / Quests: completion and conversion latency",
		description: "Micro-quest starts, completions and completion rate, and completion-to-conversion latency, " +
			"from the window tables quest_completion, conversion_latency and quest_conversions (read with FINAL). " +
			"Time series points are sliding windows (10 min every minute) at their end.",
		tags:  []string{"questline", "quests", "clickhouse"},
		scope: true,
		rows: []row{
			{title: "Completion", panels: []panel{
				{
					title:       "Completion rate over the range",
					description: "Completions / starts of all quests. " + tilingNote,
					viz:         vizStat, width: 6, unit: unitPercent,
					sql: &sqlQuery{
						text: `SELECT sum(completions) AS completed, sum(starts) AS started,
  if(started = 0, NULL, completed / started) AS rate
FROM questline.quest_completion FINAL
WHERE scope = ${scope:sqlstring} AND quest_id = ''
  AND ` + tilingWindows("quest_completion"),
						columns: []string{"completed", "started", "rate"},
					},
					columnUnits: []colUnit{{"completed", unitShort}, {"started", unitShort}},
				},
				{
					title:       "Completion rate (sliding window)",
					description: "completion_rate of all quests per window: completions / starts of the window (a completion counts in the windows of its own time, so a window can exceed 100 %).",
					viz:         vizTimeSeries, width: 18, unit: unitPercent,
					sql: &sqlQuery{
						text: `SELECT window_end AS time, completion_rate
FROM questline.quest_completion FINAL
WHERE scope = ${scope:sqlstring} AND quest_id = '' AND $__timeFilter(window_end)
ORDER BY time`,
						columns: []string{"time", "completion_rate"},
					},
				},
				{
					title: "Starts by quest",
					viz:   vizTimeSeries,
					sql: &sqlQuery{
						text: `SELECT window_end AS time, quest_id, starts
FROM questline.quest_completion FINAL
WHERE scope = ${scope:sqlstring} AND quest_id != '' AND $__timeFilter(window_end)
ORDER BY time, quest_id`,
						columns: []string{"time", "quest_id", "starts"},
					},
				},
				{
					title: "Completions by quest",
					viz:   vizTimeSeries,
					sql: &sqlQuery{
						text: `SELECT window_end AS time, quest_id, completions
FROM questline.quest_completion FINAL
WHERE scope = ${scope:sqlstring} AND quest_id != '' AND $__timeFilter(window_end)
ORDER BY time, quest_id`,
						columns: []string{"time", "quest_id", "completions"},
					},
				},
				{
					title:       "Quests over the range",
					description: "Per quest. " + tilingNote,
					viz:         vizTable, width: 24,
					sql: &sqlQuery{
						text: `SELECT quest_id, sum(starts) AS started, sum(completions) AS completed, sum(abandons) AS abandoned,
  if(started = 0, NULL, completed / started) AS rate
FROM questline.quest_completion FINAL
WHERE scope = ${scope:sqlstring} AND quest_id != ''
  AND ` + tilingWindows("quest_completion") + `
GROUP BY quest_id
ORDER BY started DESC, quest_id`,
						columns: []string{"quest_id", "started", "completed", "abandoned", "rate"},
					},
					columnUnits: []colUnit{{"rate", unitPercent}},
				},
			}},
			{title: "Completion to conversion latency", panels: []panel{
				{
					title:       "Latency p50 / p90 / p99 (all quests)",
					description: "Per window, by conversion time: percentiles of conversion time − the user's latest quest completion before it (within the attribution window), from HDR histograms merged exactly.",
					viz:         vizTimeSeries, unit: unitMs,
					sql: &sqlQuery{
						text: `SELECT window_end AS time, p50_ms, p90_ms, p99_ms
FROM questline.conversion_latency FINAL
WHERE scope = ${scope:sqlstring} AND quest_id = '' AND conversions > 0 AND $__timeFilter(window_end)
ORDER BY time`,
						columns: []string{"time", "p50_ms", "p90_ms", "p99_ms"},
					},
				},
				{
					title:       "Attributed conversions per window",
					description: "Conversions attributed to a quest completion, per window (all quests).",
					viz:         vizTimeSeries,
					sql: &sqlQuery{
						text: `SELECT window_end AS time, conversions
FROM questline.conversion_latency FINAL
WHERE scope = ${scope:sqlstring} AND quest_id = '' AND $__timeFilter(window_end)
ORDER BY time`,
						columns: []string{"time", "conversions"},
					},
				},
				{
					title:       "p90 latency by quest",
					description: "p90 of the latency per window, by the quest of the attributed completion.",
					viz:         vizTimeSeries, width: 24, unit: unitMs,
					sql: &sqlQuery{
						text: `SELECT window_end AS time, quest_id, p90_ms
FROM questline.conversion_latency FINAL
WHERE scope = ${scope:sqlstring} AND quest_id != '' AND conversions > 0 AND $__timeFilter(window_end)
ORDER BY time, quest_id`,
						columns: []string{"time", "quest_id", "p90_ms"},
					},
				},
				{
					title: "Latency by quest over the range (all users)",
					description: "Exact percentiles over every attributed conversion in the range (quest_conversions, one current row per conversion). " +
						"This table has no scope: it always covers all users.",
					viz: vizTable, width: 24,
					sql: &sqlQuery{
						text: `SELECT quest_id, count() AS attributed,
  quantileExact(0.5)(latency_ms) AS latency_p50, quantileExact(0.9)(latency_ms) AS latency_p90,
  quantileExact(0.99)(latency_ms) AS latency_p99, max(latency_ms) AS latency_max
FROM questline.quest_conversions FINAL
WHERE $__timeFilter(conversion_time)
GROUP BY quest_id
ORDER BY attributed DESC, quest_id`,
						columns: []string{"quest_id", "attributed", "latency_p50", "latency_p90", "latency_p99", "latency_max"},
					},
					columnUnits: []colUnit{{"latency_p50", unitMs}, {"latency_p90", unitMs}, {"latency_p99", unitMs}, {"latency_max", unitMs}},
				},
			}},
		},
	}
}
