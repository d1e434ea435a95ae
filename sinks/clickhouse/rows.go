package clickhouse

import (
	"github.com/cespare/xxhash/v2"
	"github.com/questline/questline/event"
)

func has(e *event.Event, bit uint32) bool { return e.Has&bit != 0 }

// eventColumn maps one field of event.Event onto a column of the events
// table. The list below is the one place that mapping is written: both
// EventsTable (rows of event.Event) and the sink's pointer-free columnar
// batch (eventStore) are derived from it.
type eventColumn struct {
	name string
	kind columnKind
	str  func(*event.Event) string        // kindString
	num  func(*event.Event) (int64, bool) // the other kinds: value, present
}

type columnKind uint8

const (
	kindString columnKind = iota
	kindInt64
	kindDateTime     // from Unix ms
	kindNullInt64    // Nullable(Int64)
	kindNullDateTime // Nullable(DateTime) from Unix ms
)

func (k columnKind) nullable() bool { return k == kindNullInt64 || k == kindNullDateTime }

func strCol(name string, get func(*event.Event) string) eventColumn {
	return eventColumn{name: name, kind: kindString, str: get}
}

func numCol(name string, kind columnKind, get func(*event.Event) int64) eventColumn {
	return eventColumn{name: name, kind: kind, num: func(e *event.Event) (int64, bool) { return get(e), true }}
}

func optCol(name string, kind columnKind, bit uint32, get func(*event.Event) int64) eventColumn {
	return eventColumn{name: name, kind: kind, num: func(e *event.Event) (int64, bool) { return get(e), has(e, bit) }}
}

// eventColumns are the columns of the events table (migration 0001) that
// the sink writes.
var eventColumns = []eventColumn{
	strCol("event_id", func(e *event.Event) string { return e.ID }),
	strCol("type", func(e *event.Event) string { return e.Type.String() }),
	strCol("user_id", func(e *event.Event) string { return e.UserID }),
	strCol("device_id", func(e *event.Event) string { return e.DeviceID }),
	strCol("session_id", func(e *event.Event) string { return e.SessionID }),
	strCol("country", func(e *event.Event) string { return e.Country }),
	numCol("event_time", kindDateTime, func(e *event.Event) int64 { return e.EventTime }),
	numCol("event_time_ms", kindInt64, func(e *event.Event) int64 { return e.EventTime }),
	numCol("ts", kindDateTime, func(e *event.Event) int64 { return e.TS }),
	numCol("ts_ms", kindInt64, func(e *event.Event) int64 { return e.TS }),
	optCol("sent_at", kindNullDateTime, event.HasSentAt, func(e *event.Event) int64 { return e.SentAt }),
	optCol("sent_at_ms", kindNullInt64, event.HasSentAt, func(e *event.Event) int64 { return e.SentAt }),
	numCol("received_at", kindDateTime, func(e *event.Event) int64 { return e.ReceivedAt }),
	numCol("received_at_ms", kindInt64, func(e *event.Event) int64 { return e.ReceivedAt }),
	optCol("clock_offset_ms", kindNullInt64, event.HasClockOffset, func(e *event.Event) int64 { return e.ClockOffsetMs }),
	strCol("source", func(e *event.Event) string { return e.Source.String() }),
	strCol("key_id", func(e *event.Event) string { return e.KeyID }),
	strCol("edge_country", func(e *event.Event) string { return e.EdgeCountry }),
	strCol("quest_id", func(e *event.Event) string { return e.QuestID }),
	strCol("drop_id", func(e *event.Event) string { return e.DropID }),
	strCol("creator_id", func(e *event.Event) string { return e.CreatorID }),
	strCol("claim_id", func(e *event.Event) string { return e.ClaimID }),
	strCol("reason", func(e *event.Event) string { return e.Reason }),
	strCol("auction_id", func(e *event.Event) string { return e.AuctionID }),
	strCol("placement", func(e *event.Event) string { return e.Placement }),
	strCol("bidder_id", func(e *event.Event) string { return e.BidderID }),
	strCol("outcome", func(e *event.Event) string { return e.Outcome }),
	strCol("offer_id", func(e *event.Event) string { return e.OfferID }),
	strCol("order_id", func(e *event.Event) string { return e.OrderID }),
	strCol("payout_id", func(e *event.Event) string { return e.PayoutID }),
	strCol("currency", func(e *event.Event) string { return e.Currency }),
	strCol("title", func(e *event.Event) string { return e.Title }),
	optCol("amount_micros", kindNullInt64, event.HasAmountMicros, func(e *event.Event) int64 { return e.AmountMicros }),
	optCol("price_micros", kindNullInt64, event.HasPriceMicros, func(e *event.Event) int64 { return e.PriceMicros }),
	optCol("floor_micros", kindNullInt64, event.HasFloorMicros, func(e *event.Event) int64 { return e.FloorMicros }),
	optCol("clearing_micros", kindNullInt64, event.HasClearingMicros, func(e *event.Event) int64 { return e.ClearingMicros }),
	optCol("latency_ms", kindNullInt64, event.HasLatencyMs, func(e *event.Event) int64 { return e.LatencyMs }),
	optCol("duration_ms", kindNullInt64, event.HasDurationMs, func(e *event.Event) int64 { return e.DurationMs }),
	optCol("min_duration_ms", kindNullInt64, event.HasMinDurationMs, func(e *event.Event) int64 { return e.MinDurationMs }),
	optCol("max_duration_ms", kindNullInt64, event.HasMaxDurationMs, func(e *event.Event) int64 { return e.MaxDurationMs }),
	optCol("inventory", kindNullInt64, event.HasInventory, func(e *event.Event) int64 { return e.Inventory }),
	optCol("starts_at_ms", kindNullInt64, event.HasStartsAt, func(e *event.Event) int64 { return e.StartsAt }),
	optCol("ends_at_ms", kindNullInt64, event.HasEndsAt, func(e *event.Event) int64 { return e.EndsAt }),
	strCol("extra", func(e *event.Event) string { return e.Extra }),
}

// eventsTable builds the events Table for rows of type T, given for the
// k-th entry of eventColumns the getter of its string (kindString) or of
// its number and presence (the other kinds).
func eventsTable[T any](str func(k int) func(*T) string, num func(k int) func(*T) (int64, bool)) Table[T] {
	cols := make([]Column[T], len(eventColumns))
	for k, c := range eventColumns {
		switch c.kind {
		case kindString:
			cols[k] = StringCol(c.name, str(k))
		case kindInt64:
			get := num(k)
			cols[k] = Int64Col(c.name, func(r *T) int64 { v, _ := get(r); return v })
		case kindDateTime:
			get := num(k)
			cols[k] = DateTimeCol(c.name, func(r *T) int64 { v, _ := get(r); return v })
		case kindNullInt64:
			cols[k] = NullableInt64Col(c.name, num(k))
		case kindNullDateTime:
			cols[k] = NullableDateTimeCol(c.name, num(k))
		}
	}
	return Table[T]{Name: "events", Columns: cols}
}

// EventsTable maps event.Event onto the events table (migration 0001).
var EventsTable = eventsTable(
	func(k int) func(*event.Event) string { return eventColumns[k].str },
	func(k int) func(*event.Event) (int64, bool) { return eventColumns[k].num },
)

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
