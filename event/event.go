// Package event owns questline's event contract (SPEC §1): the Go type of an
// event, its validation, the JSON that clients send, and the binary record
// encoding carried on Kafka.
//
// Every event type shares one flat Event struct. The common props of SPEC §1
// are typed fields; props the contract does not know are kept verbatim in
// Extra as JSON object text. A flat struct keeps decoding allocation-light
// (no per-type boxing) and maps one-to-one onto the ClickHouse events table.
package event

import "strings"

// Source says who produced an event. It decides which types are allowed and
// whether the clock is corrected (SPEC §2: server-side sources are trusted).
type Source uint8

const (
	// SourceClient is an app or edge node sending with a client-scope key.
	SourceClient Source = iota + 1
	// SourceServer is a backend sending to ingest with a server-scope key.
	SourceServer
	// SourceAPI is the quest/drop API writing its own events.
	SourceAPI
)

// APIIDPrefix begins every event id the quest/drop API derives (api
// package: claim outcomes, Idempotency-Key ids, quest attempts). Those
// are computable from public ids, and downstream keeps one event per id,
// so only server-scope keys may send ids in this namespace (APIEventID).
// One distinctive prefix, so that a client's own ids ("claim-…" for its
// drop_claimed events, say) are never refused for looking like the API's.
const APIIDPrefix = "qlapi:"

// APIEventID reports whether id is in the namespace of the ids the
// quest/drop API derives: ingest rejects one from a client-scope key,
// which could otherwise send it first and replace or hide the API's event.
func APIEventID(id string) bool { return strings.HasPrefix(id, APIIDPrefix) }

// String returns "client", "server" or "api".
func (s Source) String() string {
	switch s {
	case SourceClient:
		return "client"
	case SourceServer:
		return "server"
	case SourceAPI:
		return "api"
	}
	return ""
}

// Presence bits of numeric fields: a number's zero value is meaningful, so
// Event.Has records which ones were given. The values are part of the Kafka
// record encoding: never renumber, only append.
const (
	HasAmountMicros uint32 = 1 << iota
	HasPriceMicros
	HasFloorMicros
	HasClearingMicros
	HasLatencyMs
	HasDurationMs
	HasMinDurationMs
	HasMaxDurationMs
	HasInventory
	HasStartsAt
	HasEndsAt
	HasSentAt
	HasClockOffset
)

// Event is one accepted event. Times are Unix milliseconds (UTC); amounts are
// integer micros. The zero value of an optional string field means absent.
type Event struct {
	// Envelope.
	ID        string // event_id: the idempotency key
	Type      Type
	UserID    string
	DeviceID  string
	SessionID string
	Country   string // declared by the client (ISO 3166-1 alpha-2)

	// Times (Unix ms).
	TS            int64 // ts as sent: the device or server clock
	EventTime     int64 // ts corrected for clock skew (SPEC §2)
	SentAt        int64 // batch sent_at, when Has&HasSentAt
	ReceivedAt    int64 // when ingest received the batch
	ClockOffsetMs int64 // batch clock_offset_ms, when Has&HasClockOffset

	// Edge context, set by ingest (never by the client).
	Source      Source
	KeyID       string // non-secret id of the API key that sent the event
	EdgeCountry string // country from the edge's geo header, if any

	// Common props (SPEC §1), named after their JSON fields.
	QuestID        string
	DropID         string
	CreatorID      string
	ClaimID        string
	Reason         string // claim_rejected.reason
	AuctionID      string
	Placement      string
	BidderID       string
	Outcome        string // bid.outcome
	OfferID        string
	OrderID        string
	PayoutID       string
	Currency       string
	Title          string
	AmountMicros   int64 // billed, conversion, payout
	PriceMicros    int64 // bid (when outcome = bid)
	FloorMicros    int64 // bid_request
	ClearingMicros int64 // auction_won
	LatencyMs      int64 // bid
	DurationMs     int64 // quest_completed (client-measured or API-measured)
	MinDurationMs  int64 // quest_defined
	MaxDurationMs  int64 // quest_defined
	Inventory      int64 // drop_started, drop_scheduled
	StartsAt       int64 // drop_scheduled (Unix ms)
	EndsAt         int64 // drop_started, drop_scheduled (Unix ms)

	// Has holds the presence bits (Has*) of optional numeric fields.
	Has uint32

	// Extra is the JSON object text of the props the contract does not
	// know, kept verbatim; "" when there are none.
	Extra string
}

// Key returns the Kafka record key of e: its user_id, so that one user's
// events are in one partition in order (SPEC §4). Events without a user
// (drop lifecycle and catalog) are keyed by their drop or quest id.
func (e *Event) Key() string {
	switch {
	case e.UserID != "":
		return e.UserID
	case e.DropID != "":
		return e.DropID
	default:
		return e.QuestID
	}
}
