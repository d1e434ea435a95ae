package dashboards

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/internal/chtest"
	"github.com/questline/questline/sinks/clickhouse"
)

var ch chtest.Shared

func TestMain(m *testing.M) { os.Exit(ch.Run(m)) }

// The fixture's time: windows around base, the dashboard range
// [base − 1 h, base + 1 h], and Grafana's interval for $__interval_s.
var (
	base       = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC).Unix()
	rangeFrom  = base - 3600
	rangeTo    = base + 3600
	intervalS  = 60
	timeFilter = regexp.MustCompile(`\$__timeFilter\(([^()]*)\)`)
)

// expand does what Grafana and the ClickHouse plugin do to a panel's SQL
// before it runs: the scope variable (format sqlstring: a quoted string)
// and the plugin's macros, with the plugin's expansions.
func expand(sql, scope string) string {
	from := fmt.Sprintf("toDateTime(%d)", rangeFrom)
	to := fmt.Sprintf("toDateTime(%d)", rangeTo)
	sql = timeFilter.ReplaceAllString(sql, "$1 >= "+from+" AND $1 <= "+to)
	return strings.NewReplacer(
		"${scope:sqlstring}", "'"+scope+"'",
		"$__fromTime", from,
		"$__toTime", to,
		"$__interval_s", fmt.Sprint(intervalS),
	).Replace(sql)
}

// clickHousePanel is one declared ClickHouse panel.
type clickHousePanel struct {
	board string
	panel
}

func clickHousePanels() []clickHousePanel {
	var out []clickHousePanel
	for _, b := range boards() {
		for _, r := range b.rows {
			for _, p := range r.panels {
				if p.sql != nil {
					out = append(out, clickHousePanel{b.uid, p})
				}
			}
		}
	}
	return out
}

// TestClickHousePanels runs every ClickHouse panel's SQL, macros expanded,
// as a read-only user (chtest.Reader), on a real ClickHouse with the schema of `questline migrate` and a few
// rows in each table, for both scopes. Each query must return rows with
// the declared columns (time first for time series). Then every row is
// inserted again, as a replay would (same version), together with stale
// versions carrying other numbers: every answer must stay the same, so the
// panels read the latest version of each row and never double-count.
func TestClickHousePanels(t *testing.T) {
	srv := ch.Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The panels name their tables questline.x, as analysts do: this
	// server is the test binary's own, so the database can be questline.
	if err := clickhouse.Migrate(ctx, srv.DSN("questline"), nil); err != nil {
		t.Fatal(err)
	}
	for _, tb := range fixture() {
		if _, err := srv.Query(ctx, tb.insert(false)); err != nil {
			t.Fatalf("%s: %v", tb.name, err)
		}
	}
	// The panels run as Grafana's data source does in docker-compose.yml:
	// a user that can read questline and do nothing else.
	for _, q := range []string{
		"INSERT INTO questline.quest_completion (quest_id) VALUES ('x')",
		"DROP TABLE questline.quest_completion",
		"SELECT count() FROM default.nothing",
	} {
		if _, err := srv.QueryAs(ctx, chtest.Reader, q); err == nil {
			t.Errorf("the reader ran %q", q)
		}
	}
	panels := clickHousePanels()
	for _, p := range panels {
		if (p.viz == vizTimeSeries) != (p.sql.columns[0] == "time") {
			t.Errorf("%s / %q: a time series query returns time first, and only it: %v", p.board, p.title, p.sql.columns)
		}
	}
	run := func() map[string]string {
		answers := map[string]string{}
		for _, p := range panels {
			scopes := []string{"all", "clean"}
			if !strings.Contains(p.sql.text, "${scope") {
				scopes = scopes[:1]
			}
			for _, scope := range scopes {
				q := expand(p.sql.text, scope)
				out, err := srv.QueryAs(ctx, chtest.Reader, q+"\nFORMAT TabSeparatedWithNames")
				if err != nil {
					t.Errorf("%s / %q (scope %s): %v\n%s", p.board, p.title, scope, err, q)
					continue
				}
				lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
				if cols := strings.Split(lines[0], "\t"); !slices.Equal(cols, p.sql.columns) {
					t.Errorf("%s / %q: columns %v, declared %v", p.board, p.title, cols, p.sql.columns)
				}
				if len(lines) < 2 {
					t.Errorf("%s / %q (scope %s): no rows\n%s", p.board, p.title, scope, q)
				}
				if p.viz == vizTimeSeries && !slices.IsSortedFunc(lines[1:], func(a, b string) int {
					return strings.Compare(strings.Split(a, "\t")[0], strings.Split(b, "\t")[0])
				}) {
					t.Errorf("%s / %q: time series rows not in time order (the plugin pivots them as they come)", p.board, p.title)
				}
				answers[p.board+"/"+p.title+"/"+scope] = out
			}
		}
		return answers
	}
	first := run()
	if t.Failed() {
		return
	}
	checkValues(t, first)
	for _, tb := range fixture() {
		for _, stale := range []bool{false, true} {
			if _, err := srv.Query(ctx, tb.insert(stale)); err != nil {
				t.Fatalf("%s: %v", tb.name, err)
			}
		}
	}
	again := run()
	for k, v := range first {
		if again[k] != v {
			t.Errorf("%s changed when rows were delivered again or in stale versions:\nbefore:\n%s\nafter:\n%s", k, v, again[k])
		}
	}

	// The all scope runs ahead of the clean one (by the clean pass's
	// lag): windows past the latest clean one, in all only, are not in
	// the range totals of either scope, so the two compare (helper-45:
	// all summed 50 starts where clean summed 30 of the same traffic).
	ahead := fixtureTable{
		name:    "quest_completion",
		columns: []string{"window_start", "window_end", "quest_id", "scope", "starts", "completions", "abandons", "version"},
		rows: func(bool) [][]any {
			var rows [][]any
			for s := base + 1260; s <= base+2400; s += 60 {
				rows = append(rows, []any{dt(s), dt(s + 600), "", "all", 10, 5, 2, 5})
			}
			return rows
		},
	}
	if _, err := srv.Query(ctx, ahead.insert(false)); err != nil {
		t.Fatal(err)
	}
	answers := run()
	for _, k := range []string{"questline-quests/Completion rate over the range/all", "questline-quests/Completion rate over the range/clean"} {
		if answers[k] != first[k] {
			t.Errorf("%s with all-scope windows past the clean scope's:\n%s\nwant, as before them:\n%s", k, answers[k], first[k])
		}
	}
}

// checkValues checks answers that follow from the fixture by hand.
func checkValues(t *testing.T, answers map[string]string) {
	t.Helper()
	want := map[string]string{
		// Six tiling windows (start a multiple of 10 min) inside the
		// range, each with 10 starts and 5 completions; the other windows
		// hold the same counts and must not be summed.
		"questline-quests/Completion rate over the range/all": "completed\tstarted\trate\n30\t60\t0.5\n",
		// The final row only; d2 has none. Lift statistics as computed
		// independently: lift = (20/100)/(20/200) − 1 = 1, se = √0.085.
		"questline-lift/Final lift per drop/all": "drop_id\tcreator_id\tupdated_at\texposed_users\texposed_converters\tcontrol_users\tcontrol_converters\tlift\tlift_ci_low\tlift_ci_high\tchance_to_win\n" +
			"d1\tc1\t2026-01-05 12:30:00\t100\t20\t200\t20\t1\t0.12943091956488173\t2.5416066009074876\t0.9912841928027004\n",
		// d2's latest update; d1 has a final row and is left out.
		"questline-lift/Latest update of drops without a final row/all": "drop_id\tcreator_id\tupdated_at\texposed_users\texposed_converters\tcontrol_users\tcontrol_converters\tlift\tlift_ci_low\tlift_ci_high\tchance_to_win\n" +
			"d2\tc2\t2026-01-05 12:04:30\t19\t3\t29\t1\t3.578947368421052\t-0.48652851002028097\t39.833345983042264\t0.9135439613966267\n",
	}
	for k, w := range want {
		if answers[k] != w {
			t.Errorf("%s:\n got %q\nwant %q", k, answers[k], w)
		}
	}
}
