package event

// Type is an event type of SPEC §1. The zero value is invalid.
//
// The numeric values are part of the Kafka record encoding (field 2 of
// event.proto): never renumber, only append.
type Type uint8

// Event types, in the order of SPEC §1.
const (
	TypeInvalid Type = iota
	QuestStarted
	QuestCompleted
	QuestAbandoned
	DropStarted
	DropEnded
	DropViewed
	DropClaimed
	ClaimRejected
	QuestDefined
	DropScheduled
	BidRequest
	Bid
	AuctionWon
	OfferShown
	OfferClicked
	Billed
	Conversion
	Payout
	numTypes
)

var typeNames = [numTypes]string{
	TypeInvalid:    "",
	QuestStarted:   "quest_started",
	QuestCompleted: "quest_completed",
	QuestAbandoned: "quest_abandoned",
	DropStarted:    "drop_started",
	DropEnded:      "drop_ended",
	DropViewed:     "drop_viewed",
	DropClaimed:    "drop_claimed",
	ClaimRejected:  "claim_rejected",
	QuestDefined:   "quest_defined",
	DropScheduled:  "drop_scheduled",
	BidRequest:     "bid_request",
	Bid:            "bid",
	AuctionWon:     "auction_won",
	OfferShown:     "offer_shown",
	OfferClicked:   "offer_clicked",
	Billed:         "billed",
	Conversion:     "conversion",
	Payout:         "payout",
}

// String returns the wire name of t ("quest_started"), or "" if t is invalid.
func (t Type) String() string {
	if t >= numTypes {
		return ""
	}
	return typeNames[t]
}

// Valid reports whether t is one of the SPEC §1 types.
func (t Type) Valid() bool { return t > TypeInvalid && t < numTypes }

// ServerOnly reports whether only server-scope keys (and the API) may send
// events of type t: the drop lifecycle and catalog types. These are also the
// types for which user_id is optional.
func (t Type) ServerOnly() bool {
	switch t {
	case DropStarted, DropEnded, QuestDefined, DropScheduled:
		return true
	}
	return false
}

// Types returns every valid type, in numeric order.
func Types() []Type {
	ts := make([]Type, 0, numTypes-1)
	for t := TypeInvalid + 1; t < numTypes; t++ {
		ts = append(ts, t)
	}
	return ts
}

// ParseType returns the Type named s, or TypeInvalid.
func ParseType(s string) Type {
	// A switch on the string compiles to a binary search over lengths and
	// contents; it is faster than a map lookup on the ingest hot path.
	switch s {
	case "quest_started":
		return QuestStarted
	case "quest_completed":
		return QuestCompleted
	case "quest_abandoned":
		return QuestAbandoned
	case "drop_started":
		return DropStarted
	case "drop_ended":
		return DropEnded
	case "drop_viewed":
		return DropViewed
	case "drop_claimed":
		return DropClaimed
	case "claim_rejected":
		return ClaimRejected
	case "quest_defined":
		return QuestDefined
	case "drop_scheduled":
		return DropScheduled
	case "bid_request":
		return BidRequest
	case "bid":
		return Bid
	case "auction_won":
		return AuctionWon
	case "offer_shown":
		return OfferShown
	case "offer_clicked":
		return OfferClicked
	case "billed":
		return Billed
	case "conversion":
		return Conversion
	case "payout":
		return Payout
	}
	return TypeInvalid
}
