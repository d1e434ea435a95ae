// Package tables maps the processors' rows onto their ClickHouse tables
// (migration sinks/clickhouse/migrations/0100_windows.sql) for the shared
// clickhouse.Writer. Ratios and lift statistics are ALIAS columns computed
// by ClickHouse from the stored counts, so only counts, percentiles and
// scores are written here.
package tables

import (
	"strconv"
	"strings"

	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/histogram"
	"github.com/questline/questline/processors/latency"
	"github.com/questline/questline/processors/lift"
	"github.com/questline/questline/processors/pipeline"
	"github.com/questline/questline/processors/quest"
	"github.com/questline/questline/processors/yield"
	ch "github.com/questline/questline/sinks/clickhouse"
)

// QuestCompletion is quest_completion.
var QuestCompletion = ch.Table[quest.Row]{
	Name: "quest_completion",
	Columns: []ch.Column[quest.Row]{
		ch.DateTimeCol("window_start", func(r *quest.Row) int64 { return r.Start }),
		ch.DateTimeCol("window_end", func(r *quest.Row) int64 { return r.End }),
		ch.StringCol("quest_id", func(r *quest.Row) string { return r.QuestID }),
		ch.StringCol("scope", func(r *quest.Row) string { return r.Scope }),
		ch.Int64Col("starts", func(r *quest.Row) int64 { return int64(r.Starts) }),
		ch.Int64Col("completions", func(r *quest.Row) int64 { return int64(r.Completions) }),
		ch.Int64Col("abandons", func(r *quest.Row) int64 { return int64(r.Abandons) }),
		ch.UInt64Col("version", func(r *quest.Row) uint64 { return r.Version }),
	},
}

func quantile(h *histogram.Sparse, q float64) int64 {
	v, _ := h.Quantile(q)
	return v
}

// EncodeHistogram writes a sparse histogram as "value:count,…", the hdr
// column, so rows can be merged again in SQL-free tools.
func EncodeHistogram(h *histogram.Sparse) string {
	var b strings.Builder
	for i, bk := range h.Buckets {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(bk.Value, 10))
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(bk.Count, 10))
	}
	return b.String()
}

// ConversionLatency is conversion_latency.
var ConversionLatency = ch.Table[latency.Row]{
	Name: "conversion_latency",
	Columns: []ch.Column[latency.Row]{
		ch.DateTimeCol("window_start", func(r *latency.Row) int64 { return r.Start }),
		ch.DateTimeCol("window_end", func(r *latency.Row) int64 { return r.End }),
		ch.StringCol("quest_id", func(r *latency.Row) string { return r.QuestID }),
		ch.StringCol("scope", func(r *latency.Row) string { return r.Scope }),
		ch.Int64Col("conversions", func(r *latency.Row) int64 { return r.Conversions }),
		ch.Int64Col("sum_ms", func(r *latency.Row) int64 { return r.SumMs }),
		ch.Int64Col("p50_ms", func(r *latency.Row) int64 { return quantile(&r.Hist, 50) }),
		ch.Int64Col("p90_ms", func(r *latency.Row) int64 { return quantile(&r.Hist, 90) }),
		ch.Int64Col("p99_ms", func(r *latency.Row) int64 { return quantile(&r.Hist, 99) }),
		ch.Int64Col("max_ms", func(r *latency.Row) int64 { return r.MaxMs }),
		ch.StringCol("hdr", func(r *latency.Row) string { return EncodeHistogram(&r.Hist) }),
		ch.UInt64Col("version", func(r *latency.Row) uint64 { return r.Version }),
	},
}

// QuestConversions is quest_conversions (migration 0100): one row per
// attributed conversion, the highest version being its current attribution.
var QuestConversions = ch.Table[latency.Conversion]{
	Name: "quest_conversions",
	Columns: []ch.Column[latency.Conversion]{
		ch.StringCol("event_id", func(c *latency.Conversion) string { return c.EventID }),
		ch.StringCol("order_id", func(c *latency.Conversion) string { return c.OrderID }),
		ch.StringCol("user_id", func(c *latency.Conversion) string { return c.UserID }),
		ch.StringCol("quest_id", func(c *latency.Conversion) string { return c.QuestID }),
		ch.StringCol("drop_id", func(c *latency.Conversion) string { return c.DropID }),
		ch.StringCol("creator_id", func(c *latency.Conversion) string { return c.CreatorID }),
		ch.DateTimeCol("conversion_time", func(c *latency.Conversion) int64 { return c.ConversionTime }),
		ch.Int64Col("conversion_time_ms", func(c *latency.Conversion) int64 { return c.ConversionTime }),
		ch.DateTimeCol("completion_time", func(c *latency.Conversion) int64 { return c.CompletionTime }),
		ch.Int64Col("completion_time_ms", func(c *latency.Conversion) int64 { return c.CompletionTime }),
		ch.Int64Col("latency_ms", func(c *latency.Conversion) int64 { return c.LatencyMs }),
		ch.Int64Col("amount_micros", func(c *latency.Conversion) int64 { return c.AmountMicros }),
		ch.StringCol("currency", func(c *latency.Conversion) string { return c.Currency }),
		ch.UInt64Col("version", func(c *latency.Conversion) uint64 { return c.Version }),
	},
}

// CreatorLift is creator_lift.
var CreatorLift = ch.Table[lift.Row]{
	Name: "creator_lift",
	Columns: []ch.Column[lift.Row]{
		ch.StringCol("drop_id", func(r *lift.Row) string { return r.DropID }),
		ch.StringCol("creator_id", func(r *lift.Row) string { return r.CreatorID }),
		ch.StringCol("scope", func(r *lift.Row) string { return r.Scope }),
		ch.DateTimeCol("updated_at", func(r *lift.Row) int64 { return r.UpdatedAt }),
		ch.UInt8Col("final", func(r *lift.Row) uint8 { return b2u(r.Final) }),
		ch.Int64Col("exposed_users", func(r *lift.Row) int64 { return r.ExposedUsers }),
		ch.Int64Col("exposed_converters", func(r *lift.Row) int64 { return r.ExposedConverters }),
		ch.Int64Col("control_users", func(r *lift.Row) int64 { return r.ControlUsers }),
		ch.Int64Col("control_converters", func(r *lift.Row) int64 { return r.ControlConverters }),
		ch.UInt64Col("version", func(r *lift.Row) uint64 { return r.Version }),
	},
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func nullableQuantile(h *histogram.Sparse, q float64) (int64, bool) { return h.Quantile(q) }

// OfferYield is offer_yield.
var OfferYield = ch.Table[yield.Row]{
	Name: "offer_yield",
	Columns: []ch.Column[yield.Row]{
		ch.DateTimeCol("window_start", func(r *yield.Row) int64 { return r.Start }),
		ch.DateTimeCol("window_end", func(r *yield.Row) int64 { return r.End }),
		ch.StringCol("placement", func(r *yield.Row) string { return r.Placement }),
		ch.StringCol("bidder_id", func(r *yield.Row) string { return r.BidderID }),
		ch.StringCol("scope", func(r *yield.Row) string { return r.Scope }),
		ch.Int64Col("auctions", func(r *yield.Row) int64 { return r.Auctions }),
		ch.Int64Col("bids", func(r *yield.Row) int64 { return r.Bids }),
		ch.Int64Col("no_bids", func(r *yield.Row) int64 { return r.NoBids }),
		ch.Int64Col("timeouts", func(r *yield.Row) int64 { return r.Timeouts }),
		ch.Int64Col("wins", func(r *yield.Row) int64 { return r.Wins }),
		ch.Int64Col("impressions", func(r *yield.Row) int64 { return r.Impressions }),
		ch.Int64Col("clicks", func(r *yield.Row) int64 { return r.Clicks }),
		ch.Int64Col("revenue_micros", func(r *yield.Row) int64 { return r.RevenueMicros }),
		ch.NullableInt64Col("bid_latency_p50_ms", func(r *yield.Row) (int64, bool) { return nullableQuantile(&r.Hist, 50) }),
		ch.NullableInt64Col("bid_latency_p99_ms", func(r *yield.Row) (int64, bool) { return nullableQuantile(&r.Hist, 99) }),
		ch.UInt64Col("version", func(r *yield.Row) uint64 { return r.Version }),
	},
}

// BidstreamIntegrity is bidstream_integrity.
var BidstreamIntegrity = ch.Table[yield.IntegrityRow]{
	Name: "bidstream_integrity",
	Columns: []ch.Column[yield.IntegrityRow]{
		ch.DateTimeCol("window_start", func(r *yield.IntegrityRow) int64 { return r.Start }),
		ch.DateTimeCol("window_end", func(r *yield.IntegrityRow) int64 { return r.End }),
		ch.StringCol("placement", func(r *yield.IntegrityRow) string { return r.Placement }),
		ch.StringCol("kind", func(r *yield.IntegrityRow) string { return r.Kind }),
		ch.StringCol("scope", func(r *yield.IntegrityRow) string { return r.Scope }),
		ch.Int64Col("violations", func(r *yield.IntegrityRow) int64 { return r.Violations }),
		ch.Int64Col("auctions", func(r *yield.IntegrityRow) int64 { return r.Auctions }),
		ch.Int64Col("clean_auctions", func(r *yield.IntegrityRow) int64 { return r.CleanAuctions }),
		ch.UInt64Col("version", func(r *yield.IntegrityRow) uint64 { return r.Version }),
	},
}

// BotSignals is bot_signals; reasons are comma-separated signal names.
var BotSignals = ch.Table[bots.Row]{
	Name: "bot_signals",
	Columns: []ch.Column[bots.Row]{
		ch.DateTimeCol("window_start", func(r *bots.Row) int64 { return r.Start }),
		ch.DateTimeCol("window_end", func(r *bots.Row) int64 { return r.End }),
		// Every row is in scope 'all': bot_signals is the input of the
		// clean scope (SPEC §6 gives every window table the column).
		ch.StringCol("scope", func(*bots.Row) string { return "all" }),
		ch.StringCol("entity_type", func(r *bots.Row) string { return r.EntityType }),
		ch.StringCol("entity_id", func(r *bots.Row) string { return r.EntityID }),
		ch.Int64Col("events", func(r *bots.Row) int64 { return int64(r.Events) }),
		ch.Float64Col("score", func(r *bots.Row) float64 { return r.Score }),
		ch.StringCol("reasons", func(r *bots.Row) string { return strings.Join(r.Reasons(), ",") }),
		ch.UInt8Col("flagged", func(r *bots.Row) uint8 { return b2u(r.Flagged) }),
		ch.UInt64Col("version", func(r *bots.Row) uint64 { return r.Version }),
	},
}

// LateEvents is window_late_events.
var LateEvents = ch.Table[pipeline.Late]{
	Name: "window_late_events",
	Columns: []ch.Column[pipeline.Late]{
		ch.StringCol("event_id", func(l *pipeline.Late) string { return l.EventID }),
		ch.StringCol("type", func(l *pipeline.Late) string { return l.Type.String() }),
		ch.StringCol("user_id", func(l *pipeline.Late) string { return l.UserID }),
		ch.DateTimeCol("event_time", func(l *pipeline.Late) int64 { return l.EventTime }),
		ch.Int64Col("event_time_ms", func(l *pipeline.Late) int64 { return l.EventTime }),
		ch.Int64Col("watermark_ms", func(l *pipeline.Late) int64 { return l.Watermark }),
		ch.StringCol("processor", func(l *pipeline.Late) string { return l.Processor }),
		ch.Int64Col("missed", func(l *pipeline.Late) int64 { return int64(l.Missed) }),
	},
}
