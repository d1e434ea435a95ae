package dashboards

import (
	"fmt"
	"strings"
	"time"
)

// fixtureTable is a few rows of one window table, written as the
// processors would: rows(false) are the latest versions; rows(true) the
// same identities in an older version with other numbers, which a reader
// of the latest version must never see.
type fixtureTable struct {
	name    string
	columns []string
	rows    func(stale bool) [][]any
}

// dt marks a DateTime value (Unix seconds).
type dt int64

// insert is the INSERT of the table's rows.
func (f fixtureTable) insert(stale bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO questline.%s (%s) VALUES", f.name, strings.Join(f.columns, ", "))
	for i, r := range f.rows(stale) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(" (")
		for j, v := range r {
			if j > 0 {
				b.WriteString(", ")
			}
			switch v := v.(type) {
			case string:
				b.WriteString("'" + v + "'")
			case dt:
				b.WriteString("'" + time.Unix(int64(v), 0).UTC().Format(time.DateTime) + "'")
			case nil:
				b.WriteString("NULL")
			default:
				fmt.Fprint(&b, v)
			}
		}
		b.WriteByte(')')
	}
	return b.String()
}

// version returns the row version: 5, or 2 for a stale row.
func version(stale bool) uint64 {
	if stale {
		return 2
	}
	return 5
}

// n returns a count: v, or a different number for a stale row.
func n(v int64, stale bool) int64 {
	if stale {
		return v*100 + 7
	}
	return v
}

// hopping returns the starts of the windows of size and slide (seconds)
// whose start lies in [base − 30 min, base + 20 min].
func hopping(slide int64) []int64 {
	var starts []int64
	for s := base - 1800; s <= base+1200; s += slide {
		starts = append(starts, s)
	}
	return starts
}

// fixture is one or a few rows per identity of every window table the
// dashboards read, in both scopes.
func fixture() []fixtureTable {
	scopes := []string{"all", "clean"}
	return []fixtureTable{
		{
			name:    "quest_completion",
			columns: []string{"window_start", "window_end", "quest_id", "scope", "starts", "completions", "abandons", "version"},
			rows: func(stale bool) [][]any {
				var rows [][]any
				for _, s := range hopping(60) {
					for _, sc := range scopes {
						rows = append(rows,
							[]any{dt(s), dt(s + 600), "", sc, n(10, stale), n(5, stale), n(2, stale), version(stale)},
							[]any{dt(s), dt(s + 600), "q1", sc, n(6, stale), n(4, stale), n(1, stale), version(stale)},
							[]any{dt(s), dt(s + 600), "q2", sc, n(4, stale), n(1, stale), n(1, stale), version(stale)})
					}
				}
				return rows
			},
		},
		{
			name: "conversion_latency",
			columns: []string{"window_start", "window_end", "quest_id", "scope", "conversions", "sum_ms", "p50_ms", "p90_ms", "p99_ms",
				"max_ms", "hdr", "version"},
			rows: func(stale bool) [][]any {
				var rows [][]any
				for _, s := range hopping(60) {
					for _, sc := range scopes {
						for _, q := range []string{"", "q1"} {
							rows = append(rows, []any{dt(s), dt(s + 600), q, sc, n(3, stale), n(3000, stale), n(900, stale),
								n(1200, stale), n(1300, stale), n(1300, stale), "800:1,900:1,1300:1", version(stale)})
						}
					}
				}
				return rows
			},
		},
		{
			name: "quest_conversions",
			columns: []string{"event_id", "order_id", "user_id", "quest_id", "drop_id", "creator_id", "conversion_time",
				"conversion_time_ms", "completion_time", "completion_time_ms", "latency_ms", "amount_micros", "currency", "version"},
			rows: func(stale bool) [][]any {
				var rows [][]any
				for i := range int64(5) {
					conv := base + 60*i
					quest := "q1"
					if stale {
						quest = "q9" // an older attribution
					}
					rows = append(rows, []any{fmt.Sprintf("e%d", i), fmt.Sprintf("o%d", i), fmt.Sprintf("u%d", i), quest, "", "",
						dt(conv), conv * 1000, dt(conv - 10*(i+1)), (conv - 10*(i+1)) * 1000, n(10000*(i+1), stale), 2500000, "EUR",
						version(stale)})
				}
				return rows
			},
		},
		{
			name: "creator_lift",
			columns: []string{"drop_id", "creator_id", "scope", "updated_at", "final", "exposed_users", "exposed_converters",
				"control_users", "control_converters", "version"},
			rows: func(stale bool) [][]any {
				var rows [][]any
				for _, sc := range scopes {
					// d1: live from base − 20 min to base, attribution 30 min:
					// updates every 30 s, then its final row at base + 30 min.
					for u, k := base-1200, int64(1); u <= base+1800; u, k = u+30, k+1 {
						rows = append(rows, []any{"d1", "c1", sc, dt(u), 0, n(k, stale), n(k/5, stale), n(2*k, stale), n(k/10, stale), version(stale)})
					}
					rows = append(rows, []any{"d1", "c1", sc, dt(base + 1800), 1, n(100, stale), n(20, stale), n(200, stale), n(20, stale), version(stale)})
					// d2: live since base, no final row yet.
					for u, k := base, int64(10); u <= base+270; u, k = u+30, k+1 {
						rows = append(rows, []any{"d2", "c2", sc, dt(u), 0, n(k, stale), n(k/5, stale), n(k+10, stale), n(k/10, stale), version(stale)})
					}
				}
				return rows
			},
		},
		{
			name: "offer_yield",
			columns: []string{"window_start", "window_end", "placement", "bidder_id", "scope", "auctions", "bids", "no_bids", "timeouts",
				"wins", "impressions", "clicks", "revenue_micros", "bid_latency_p50_ms", "bid_latency_p99_ms", "version"},
			rows: func(stale bool) [][]any {
				var rows [][]any
				keys := [][2]string{{"", ""}, {"feed", ""}, {"story", ""}, {"", "b1"}, {"feed", "b1"}}
				for _, s := range hopping(60) {
					for _, sc := range scopes {
						for _, k := range keys {
							var p99 any = n(180, stale)
							if k[0] == "story" {
								p99 = nil // no answer with a latency
							}
							rows = append(rows, []any{dt(s), dt(s + 300), k[0], k[1], sc, n(100, stale), n(80, stale), n(15, stale),
								n(5, stale), n(60, stale), n(50, stale), n(4, stale), n(120000000, stale), n(40, stale), p99, version(stale)})
						}
					}
				}
				return rows
			},
		},
		{
			name:    "bidstream_integrity",
			columns: []string{"window_start", "window_end", "placement", "kind", "scope", "violations", "auctions", "clean_auctions", "version"},
			rows: func(stale bool) [][]any {
				var rows [][]any
				kinds := []string{"win_without_bid", "clearing_above_bid", "clearing_below_floor", "duplicate_win", "duplicate_billing",
					"billed_without_win", "billing_mismatch", "impression_without_win", "orphan"}
				for _, s := range hopping(60) {
					for _, sc := range scopes {
						for _, p := range []string{"", "feed"} {
							for i, k := range kinds {
								v := int64(0)
								if i%3 == 0 {
									v = int64(i + 1)
								}
								rows = append(rows, []any{dt(s), dt(s + 300), p, k, sc, n(v, stale), n(100, stale), n(90, stale), version(stale)})
							}
						}
					}
				}
				return rows
			},
		},
		{
			name:    "bot_signals",
			columns: []string{"window_start", "window_end", "entity_type", "entity_id", "events", "score", "reasons", "flagged", "version"},
			rows: func(stale bool) [][]any {
				var rows [][]any
				for _, s := range hopping(10) {
					if (s-base)%120 != 0 {
						continue
					}
					score := func(v float64) float64 {
						if stale {
							return 0.01 // a stale score would land in bucket 0
						}
						return v
					}
					// An older version of the traveller's row flagged it.
					travellerReasons, travellerFlagged := "geo_mismatch", 0
					if stale {
						travellerReasons, travellerFlagged = "claim_burst", 1
					}
					rows = append(rows,
						[]any{dt(s), dt(s + 60), "user", "u-bot", n(150, stale), score(0.84), "velocity,impossible_quest", 1, version(stale)},
						[]any{dt(s), dt(s + 60), "user", "u-traveller", n(3, stale), score(0.3), travellerReasons, travellerFlagged, version(stale)},
						[]any{dt(s), dt(s + 60), "device", "dev-farm", n(90, stale), score(0.82), "shared_device,metronome", 1, version(stale)})
				}
				return rows
			},
		},
	}
}
