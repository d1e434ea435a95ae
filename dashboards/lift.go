package dashboards

// liftBoard shows creator lift per live drop (SPEC §5): the final result of
// each drop, and the updates of drops still live or attributing.
func liftBoard() board {
	return board{
		uid:   "questline-lift",
		title: "questline / Creator lift per live drop",
		description: "Conversion lift of users exposed to a live drop over active users who were not, with its 95 % interval " +
			"and the chance that the drop wins, from creator_lift (read with FINAL). A drop's result is its final row (final = 1), " +
			"written once end + attribution window + allowed lateness has passed (docs/analysts.md).",
		tags:  []string{"questline", "lift", "clickhouse"},
		scope: true,
		rows: []row{
			{title: "Final results", panels: []panel{
				{
					title: "Final lift per drop",
					description: "One row per drop whose final row falls in the range (updated_at = drop end + attribution window). " +
						"lift = rE / rC − 1; NULL without exposed or control users or control converters. " +
						"A drop whose drop_ended reached the pipeline after the allowed lateness may have no final row: see the next table.",
					viz: vizTable, width: 24, height: 10,
					sql: &sqlQuery{
						text: `SELECT drop_id, creator_id, updated_at, exposed_users, exposed_converters, control_users, control_converters,
  lift, lift_ci_low, lift_ci_high, chance_to_win
FROM questline.creator_lift FINAL
WHERE scope = ${scope:sqlstring} AND final = 1 AND $__timeFilter(updated_at)
ORDER BY updated_at DESC, drop_id`,
						columns: []string{"drop_id", "creator_id", "updated_at", "exposed_users", "exposed_converters",
							"control_users", "control_converters", "lift", "lift_ci_low", "lift_ci_high", "chance_to_win"},
					},
					columnUnits: []colUnit{{"lift", unitPercent}, {"lift_ci_low", unitPercent}, {"lift_ci_high", unitPercent}, {"chance_to_win", unitPercent}},
				},
			}},
			{title: "Live and attributing drops", panels: []panel{
				{
					title: "Latest update of drops without a final row",
					description: "The latest update (every 30 s of event time) of each drop that has no final row yet: still live, " +
						"or within its attribution window and lateness. These numbers still change.",
					viz: vizTable, width: 24, height: 8,
					sql: &sqlQuery{
						text: `SELECT drop_id, creator_id, updated_at, exposed_users, exposed_converters, control_users, control_converters,
  lift, lift_ci_low, lift_ci_high, chance_to_win
FROM questline.creator_lift FINAL
WHERE scope = ${scope:sqlstring} AND final = 0
  AND (drop_id, updated_at) IN (
    SELECT drop_id, max(updated_at)
    FROM questline.creator_lift FINAL
    WHERE scope = ${scope:sqlstring} AND final = 0 AND $__timeFilter(updated_at)
    GROUP BY drop_id)
  AND drop_id NOT IN (
    SELECT drop_id FROM questline.creator_lift FINAL
    WHERE scope = ${scope:sqlstring} AND final = 1)
ORDER BY updated_at DESC, drop_id`,
						columns: []string{"drop_id", "creator_id", "updated_at", "exposed_users", "exposed_converters",
							"control_users", "control_converters", "lift", "lift_ci_low", "lift_ci_high", "chance_to_win"},
					},
					columnUnits: []colUnit{{"lift", unitPercent}, {"lift_ci_low", unitPercent}, {"lift_ci_high", unitPercent}, {"chance_to_win", unitPercent}},
				},
				{
					title:       "Lift while live, by drop",
					description: "lift of each update row (not final), by drop.",
					viz:         vizTimeSeries, unit: unitPercent,
					sql: &sqlQuery{
						text: `SELECT updated_at AS time, drop_id, lift
FROM questline.creator_lift FINAL
WHERE scope = ${scope:sqlstring} AND final = 0 AND $__timeFilter(updated_at)
ORDER BY time, drop_id`,
						columns: []string{"time", "drop_id", "lift"},
					},
				},
				{
					title:       "Chance to win while live, by drop",
					description: "chance_to_win = Φ(ln(rE / rC) / se) of each update row, by drop.",
					viz:         vizTimeSeries, unit: unitPercent,
					sql: &sqlQuery{
						text: `SELECT updated_at AS time, drop_id, chance_to_win
FROM questline.creator_lift FINAL
WHERE scope = ${scope:sqlstring} AND final = 0 AND $__timeFilter(updated_at)
ORDER BY time, drop_id`,
						columns: []string{"time", "drop_id", "chance_to_win"},
					},
				},
			}},
		},
	}
}
