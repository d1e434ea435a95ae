package dashboards

// botsBoard shows the bot processor's signals (SPEC §5) from bot_signals.
// The table has no scope (it is the input of the clean scope), so this
// dashboard has no scope variable.
func botsBoard() board {
	return board{
		uid:   "questline-bots",
		title: "questline / Bot signals",
		description: "Users and devices the bot processor scored, from bot_signals (read with FINAL): windows of 1 min every 10 s; " +
			"score = 1 − Π(1 − weight) over the entity's signals, flagged at the configured threshold (QUESTLINE_PROCESS_BOT_THRESHOLD, default 0.5). " +
			"Flagged users are left out of the clean scope of the other dashboards.",
		tags: []string{"questline", "bots", "clickhouse"},
		rows: []row{
			{title: "Flags", panels: []panel{
				{
					title: "Flagged entities by reason",
					description: "Distinct users and devices flagged in the windows ending in each interval, by signal " +
						"(an entity flagged for two signals counts under both).",
					viz: vizTimeSeries,
					sql: &sqlQuery{
						text: `SELECT toDateTime(intDiv(toUInt32(window_end), $__interval_s) * $__interval_s) AS time, reason,
  uniqExact(entity_type, entity_id) AS flagged_entities
FROM questline.bot_signals FINAL
ARRAY JOIN splitByChar(',', reasons) AS reason
WHERE flagged = 1 AND reason != '' AND $__timeFilter(window_end)
GROUP BY time, reason
ORDER BY time, reason`,
						columns: []string{"time", "reason", "flagged_entities"},
					},
				},
				{
					title:       "Flagged users and devices",
					description: "Distinct flagged entities in the windows ending in each interval, by entity type.",
					viz:         vizTimeSeries,
					sql: &sqlQuery{
						text: `SELECT toDateTime(intDiv(toUInt32(window_end), $__interval_s) * $__interval_s) AS time, entity_type,
  uniqExact(entity_id) AS flagged_entities
FROM questline.bot_signals FINAL
WHERE flagged = 1 AND $__timeFilter(window_end)
GROUP BY time, entity_type
ORDER BY time, entity_type`,
						columns: []string{"time", "entity_type", "flagged_entities"},
					},
				},
				{
					title: "Score distribution",
					description: "Entities by their highest score in the range, in steps of 0.1 (rows exist for scores above zero, and as zero rows where a late event took a score back down to 0). " +
						"The flag threshold is 0.5 by default.",
					viz: vizBarChart, xField: "score_bucket",
					sql: &sqlQuery{
						text: `SELECT toString(floor(top_score, 1)) AS score_bucket,
  countIf(entity_type = 'user') AS users, countIf(entity_type = 'device') AS devices
FROM (
  SELECT entity_type, entity_id, max(score) AS top_score
  FROM questline.bot_signals FINAL
  WHERE $__timeFilter(window_end)
  GROUP BY entity_type, entity_id)
GROUP BY score_bucket
ORDER BY score_bucket`,
						columns: []string{"score_bucket", "users", "devices"},
					},
				},
				{
					title:       "Most suspicious entities",
					description: "Flagged users and devices in the range by highest score, with the signals of their latest flagged window.",
					viz:         vizTable,
					sql: &sqlQuery{
						text: `SELECT entity_type, entity_id, max(score) AS top_score, count() AS flagged_windows,
  max(window_end) AS last_flagged, argMax(reasons, window_end) AS latest_reasons
FROM questline.bot_signals FINAL
WHERE flagged = 1 AND $__timeFilter(window_end)
GROUP BY entity_type, entity_id
ORDER BY top_score DESC, flagged_windows DESC, entity_type, entity_id
LIMIT 100`,
						columns: []string{"entity_type", "entity_id", "top_score", "flagged_windows", "last_flagged", "latest_reasons"},
					},
				},
			}},
		},
	}
}
