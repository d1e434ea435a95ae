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
//
// Each column also names the field of the Kafka record it comes from
// (event.proto), which the columnar batch reads without an event.Event in
// between; a test checks that both ways write identical rows.
type eventColumn struct {
	name  string
	kind  columnKind
	field uint64                           // its field in event.proto
	bit   uint32                           // nullable kinds: the presence bit in field 16 (event.Has*)
	enum  func(uint64) string              // a string column holding an enum field's name
	str   func(*event.Event) string        // kindString
	num   func(*event.Event) (int64, bool) // the other kinds: value, present
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

func strCol(name string, field uint64, get func(*event.Event) string) eventColumn {
	return eventColumn{name: name, kind: kindString, field: field, str: get}
}

func enumCol(name string, field uint64, names func(uint64) string, get func(*event.Event) string) eventColumn {
	return eventColumn{name: name, kind: kindString, field: field, enum: names, str: get}
}

func numCol(name string, kind columnKind, field uint64, get func(*event.Event) int64) eventColumn {
	return eventColumn{name: name, kind: kind, field: field, num: func(e *event.Event) (int64, bool) { return get(e), true }}
}

func optCol(name string, kind columnKind, field uint64, bit uint32, get func(*event.Event) int64) eventColumn {
	return eventColumn{name: name, kind: kind, field: field, bit: bit, num: func(e *event.Event) (int64, bool) { return get(e), has(e, bit) }}
}

// eventColumns are the columns of the events table (migration 0001) that
// the sink writes.
var eventColumns = []eventColumn{
	strCol("event_id", 3, func(e *event.Event) string { return e.ID }),
	enumCol("type", 2, func(v uint64) string { return event.Type(v).String() }, func(e *event.Event) string { return e.Type.String() }),
	strCol("user_id", 4, func(e *event.Event) string { return e.UserID }),
	strCol("device_id", 5, func(e *event.Event) string { return e.DeviceID }),
	strCol("session_id", 6, func(e *event.Event) string { return e.SessionID }),
	strCol("country", 7, func(e *event.Event) string { return e.Country }),
	numCol("event_time", kindDateTime, 9, func(e *event.Event) int64 { return e.EventTime }),
	numCol("event_time_ms", kindInt64, 9, func(e *event.Event) int64 { return e.EventTime }),
	numCol("ts", kindDateTime, 8, func(e *event.Event) int64 { return e.TS }),
	numCol("ts_ms", kindInt64, 8, func(e *event.Event) int64 { return e.TS }),
	optCol("sent_at", kindNullDateTime, 10, event.HasSentAt, func(e *event.Event) int64 { return e.SentAt }),
	optCol("sent_at_ms", kindNullInt64, 10, event.HasSentAt, func(e *event.Event) int64 { return e.SentAt }),
	numCol("received_at", kindDateTime, 11, func(e *event.Event) int64 { return e.ReceivedAt }),
	numCol("received_at_ms", kindInt64, 11, func(e *event.Event) int64 { return e.ReceivedAt }),
	optCol("clock_offset_ms", kindNullInt64, 12, event.HasClockOffset, func(e *event.Event) int64 { return e.ClockOffsetMs }),
	enumCol("source", 13, func(v uint64) string { return event.Source(v).String() }, func(e *event.Event) string { return e.Source.String() }),
	strCol("key_id", 14, func(e *event.Event) string { return e.KeyID }),
	strCol("edge_country", 15, func(e *event.Event) string { return e.EdgeCountry }),
	strCol("quest_id", 20, func(e *event.Event) string { return e.QuestID }),
	strCol("drop_id", 21, func(e *event.Event) string { return e.DropID }),
	strCol("creator_id", 22, func(e *event.Event) string { return e.CreatorID }),
	strCol("claim_id", 23, func(e *event.Event) string { return e.ClaimID }),
	strCol("reason", 24, func(e *event.Event) string { return e.Reason }),
	strCol("auction_id", 25, func(e *event.Event) string { return e.AuctionID }),
	strCol("placement", 26, func(e *event.Event) string { return e.Placement }),
	strCol("bidder_id", 27, func(e *event.Event) string { return e.BidderID }),
	strCol("outcome", 28, func(e *event.Event) string { return e.Outcome }),
	strCol("offer_id", 29, func(e *event.Event) string { return e.OfferID }),
	strCol("order_id", 30, func(e *event.Event) string { return e.OrderID }),
	strCol("payout_id", 31, func(e *event.Event) string { return e.PayoutID }),
	strCol("currency", 32, func(e *event.Event) string { return e.Currency }),
	strCol("title", 33, func(e *event.Event) string { return e.Title }),
	optCol("amount_micros", kindNullInt64, 40, event.HasAmountMicros, func(e *event.Event) int64 { return e.AmountMicros }),
	optCol("price_micros", kindNullInt64, 41, event.HasPriceMicros, func(e *event.Event) int64 { return e.PriceMicros }),
	optCol("floor_micros", kindNullInt64, 42, event.HasFloorMicros, func(e *event.Event) int64 { return e.FloorMicros }),
	optCol("clearing_micros", kindNullInt64, 43, event.HasClearingMicros, func(e *event.Event) int64 { return e.ClearingMicros }),
	optCol("latency_ms", kindNullInt64, 44, event.HasLatencyMs, func(e *event.Event) int64 { return e.LatencyMs }),
	optCol("duration_ms", kindNullInt64, 45, event.HasDurationMs, func(e *event.Event) int64 { return e.DurationMs }),
	optCol("min_duration_ms", kindNullInt64, 46, event.HasMinDurationMs, func(e *event.Event) int64 { return e.MinDurationMs }),
	optCol("max_duration_ms", kindNullInt64, 47, event.HasMaxDurationMs, func(e *event.Event) int64 { return e.MaxDurationMs }),
	optCol("inventory", kindNullInt64, 48, event.HasInventory, func(e *event.Event) int64 { return e.Inventory }),
	optCol("starts_at_ms", kindNullInt64, 49, event.HasStartsAt, func(e *event.Event) int64 { return e.StartsAt }),
	optCol("ends_at_ms", kindNullInt64, 50, event.HasEndsAt, func(e *event.Event) int64 { return e.EndsAt }),
	strCol("extra", 60, func(e *event.Event) string { return e.Extra }),
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
