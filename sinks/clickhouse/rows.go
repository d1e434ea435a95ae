package clickhouse

import (
	"github.com/cespare/xxhash/v2"
	"github.com/questline/questline/event"
)

func has(e *event.Event, bit uint32) bool { return e.Has&bit != 0 }

func optional(bit uint32, get func(*event.Event) int64) func(*event.Event) (int64, bool) {
	return func(e *event.Event) (int64, bool) { return get(e), has(e, bit) }
}

// EventsTable maps event.Event onto the events table (migration 0001).
var EventsTable = Table[event.Event]{
	Name: "events",
	Columns: []Column[event.Event]{
		StringCol("event_id", func(e *event.Event) string { return e.ID }),
		StringCol("type", func(e *event.Event) string { return e.Type.String() }),
		StringCol("user_id", func(e *event.Event) string { return e.UserID }),
		StringCol("device_id", func(e *event.Event) string { return e.DeviceID }),
		StringCol("session_id", func(e *event.Event) string { return e.SessionID }),
		StringCol("country", func(e *event.Event) string { return e.Country }),
		DateTimeCol("event_time", func(e *event.Event) int64 { return e.EventTime }),
		Int64Col("event_time_ms", func(e *event.Event) int64 { return e.EventTime }),
		DateTimeCol("ts", func(e *event.Event) int64 { return e.TS }),
		Int64Col("ts_ms", func(e *event.Event) int64 { return e.TS }),
		NullableDateTimeCol("sent_at", optional(event.HasSentAt, func(e *event.Event) int64 { return e.SentAt })),
		NullableInt64Col("sent_at_ms", optional(event.HasSentAt, func(e *event.Event) int64 { return e.SentAt })),
		DateTimeCol("received_at", func(e *event.Event) int64 { return e.ReceivedAt }),
		Int64Col("received_at_ms", func(e *event.Event) int64 { return e.ReceivedAt }),
		NullableInt64Col("clock_offset_ms", optional(event.HasClockOffset, func(e *event.Event) int64 { return e.ClockOffsetMs })),
		StringCol("source", func(e *event.Event) string { return e.Source.String() }),
		StringCol("key_id", func(e *event.Event) string { return e.KeyID }),
		StringCol("edge_country", func(e *event.Event) string { return e.EdgeCountry }),
		StringCol("quest_id", func(e *event.Event) string { return e.QuestID }),
		StringCol("drop_id", func(e *event.Event) string { return e.DropID }),
		StringCol("creator_id", func(e *event.Event) string { return e.CreatorID }),
		StringCol("claim_id", func(e *event.Event) string { return e.ClaimID }),
		StringCol("reason", func(e *event.Event) string { return e.Reason }),
		StringCol("auction_id", func(e *event.Event) string { return e.AuctionID }),
		StringCol("placement", func(e *event.Event) string { return e.Placement }),
		StringCol("bidder_id", func(e *event.Event) string { return e.BidderID }),
		StringCol("outcome", func(e *event.Event) string { return e.Outcome }),
		StringCol("offer_id", func(e *event.Event) string { return e.OfferID }),
		StringCol("order_id", func(e *event.Event) string { return e.OrderID }),
		StringCol("payout_id", func(e *event.Event) string { return e.PayoutID }),
		StringCol("currency", func(e *event.Event) string { return e.Currency }),
		StringCol("title", func(e *event.Event) string { return e.Title }),
		NullableInt64Col("amount_micros", optional(event.HasAmountMicros, func(e *event.Event) int64 { return e.AmountMicros })),
		NullableInt64Col("price_micros", optional(event.HasPriceMicros, func(e *event.Event) int64 { return e.PriceMicros })),
		NullableInt64Col("floor_micros", optional(event.HasFloorMicros, func(e *event.Event) int64 { return e.FloorMicros })),
		NullableInt64Col("clearing_micros", optional(event.HasClearingMicros, func(e *event.Event) int64 { return e.ClearingMicros })),
		NullableInt64Col("latency_ms", optional(event.HasLatencyMs, func(e *event.Event) int64 { return e.LatencyMs })),
		NullableInt64Col("duration_ms", optional(event.HasDurationMs, func(e *event.Event) int64 { return e.DurationMs })),
		NullableInt64Col("min_duration_ms", optional(event.HasMinDurationMs, func(e *event.Event) int64 { return e.MinDurationMs })),
		NullableInt64Col("max_duration_ms", optional(event.HasMaxDurationMs, func(e *event.Event) int64 { return e.MaxDurationMs })),
		NullableInt64Col("inventory", optional(event.HasInventory, func(e *event.Event) int64 { return e.Inventory })),
		NullableInt64Col("starts_at_ms", optional(event.HasStartsAt, func(e *event.Event) int64 { return e.StartsAt })),
		NullableInt64Col("ends_at_ms", optional(event.HasEndsAt, func(e *event.Event) int64 { return e.EndsAt })),
		StringCol("extra", func(e *event.Event) string { return e.Extra }),
	},
}

// Rejected is one row of rejected_events: a dead letter and its identity.
type Rejected struct {
	// ID identifies the dead-letter record: see RejectedID.
	ID uint64
	event.DeadLetter
}

// RejectedID is the identity of a dead-letter record: a hash of its value,
// so a re-delivered record collapses onto its first copy whatever topic
// offset it comes from.
func RejectedID(value []byte) uint64 { return xxhash.Sum64(value) }

// RejectedTable maps Rejected onto the rejected_events table (migration
// 0001).
var RejectedTable = Table[Rejected]{
	Name: "rejected_events",
	Columns: []Column[Rejected]{
		UInt64Col("id", func(r *Rejected) uint64 { return r.ID }),
		DateTimeCol("received_at", func(r *Rejected) int64 { return r.ReceivedAt }),
		Int64Col("received_at_ms", func(r *Rejected) int64 { return r.ReceivedAt }),
		StringCol("kind", func(r *Rejected) string { return r.Kind }),
		StringCol("reason", func(r *Rejected) string { return r.Reason }),
		StringCol("event_id", func(r *Rejected) string { return r.EventID }),
		Int32Col("batch_index", func(r *Rejected) int32 { return int32(r.Index) }),
		StringCol("raw", func(r *Rejected) string { return r.Raw }),
		UInt8Col("raw_truncated", func(r *Rejected) uint8 {
			if r.RawTruncated {
				return 1
			}
			return 0
		}),
		StringCol("source", func(r *Rejected) string { return r.Source }),
		StringCol("key_id", func(r *Rejected) string { return r.KeyID }),
	},
}
