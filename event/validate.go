package event

import (
	"strconv"
	"unicode/utf8"
)

// Limits of SPEC §1.
const (
	MaxEventIDLen = 64
	MaxIDLen      = 128 // user_id, device_id, session_id and prop ids
	MaxTextLen    = 512 // title and other free text

	// MaxAmountMicros bounds amount, price, floor and clearing props: ten
	// million currency units per event. Sums over windows then stay far
	// from int64 overflow.
	MaxAmountMicros = 10_000_000 * 1_000_000
	// MaxNumber bounds the other numeric props (durations, latencies,
	// inventory).
	MaxNumber = 1_000_000_000_000
)

// FieldError is a validation failure of one field. Field is the JSON path
// ("event_id", "props.quest_id"), so a client can find the fault.
type FieldError struct {
	Field string
	Msg   string
}

// The reasons of a claim_rejected (SPEC §1).
const (
	ReasonSoldOut      = "sold_out"
	ReasonNotLive      = "not_live"
	ReasonRateLimited  = "rate_limited"
	ReasonSuspectedBot = "suspected_bot"
)

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, msg string) *FieldError { return &FieldError{Field: field, Msg: msg} }

// Validate checks e against the contract of SPEC §1: envelope fields, the
// required props of its type, enumerations, currency codes and number
// ranges. It does not check times against a clock (ingest does that) nor
// key scopes. It returns the first failure as a *FieldError.
func Validate(e *Event) error {
	if err := validID("event_id", e.ID, MaxEventIDLen, true); err != nil {
		return err
	}
	if !e.Type.Valid() {
		return fieldErr("type", "unknown event type")
	}
	if e.UserID == "" && !e.Type.ServerOnly() {
		return fieldErr("user_id", "required")
	}
	if err := validText("user_id", e.UserID, MaxIDLen); err != nil {
		return err
	}
	if err := validText("device_id", e.DeviceID, MaxIDLen); err != nil {
		return err
	}
	if err := validText("session_id", e.SessionID, MaxIDLen); err != nil {
		return err
	}
	if e.Country != "" && !isAlpha2(e.Country) {
		return fieldErr("country", "must be an ISO 3166-1 alpha-2 code")
	}
	return validateProps(e)
}

// propRule is what one type requires of its props.
type propRule struct {
	strs []strField // required string props
	nums []numField // required numeric props
}

type strField struct {
	name string
	get  func(*Event) string
}

type numField struct {
	name string
	bit  uint32
}

var (
	sQuest     = strField{"props.quest_id", func(e *Event) string { return e.QuestID }}
	sDrop      = strField{"props.drop_id", func(e *Event) string { return e.DropID }}
	sCreator   = strField{"props.creator_id", func(e *Event) string { return e.CreatorID }}
	sClaim     = strField{"props.claim_id", func(e *Event) string { return e.ClaimID }}
	sReason    = strField{"props.reason", func(e *Event) string { return e.Reason }}
	sAuction   = strField{"props.auction_id", func(e *Event) string { return e.AuctionID }}
	sPlacement = strField{"props.placement", func(e *Event) string { return e.Placement }}
	sBidder    = strField{"props.bidder_id", func(e *Event) string { return e.BidderID }}
	sOutcome   = strField{"props.outcome", func(e *Event) string { return e.Outcome }}
	sOffer     = strField{"props.offer_id", func(e *Event) string { return e.OfferID }}
	sOrder     = strField{"props.order_id", func(e *Event) string { return e.OrderID }}
	sPayout    = strField{"props.payout_id", func(e *Event) string { return e.PayoutID }}
	sCurrency  = strField{"props.currency", func(e *Event) string { return e.Currency }}

	nAmount   = numField{"props.amount_micros", HasAmountMicros}
	nClearing = numField{"props.clearing_micros", HasClearingMicros}
	nLatency  = numField{"props.latency_ms", HasLatencyMs}
	nMinDur   = numField{"props.min_duration_ms", HasMinDurationMs}
	nStarts   = numField{"props.starts_at", HasStartsAt}
	nEnds     = numField{"props.ends_at", HasEndsAt}
	nInv      = numField{"props.inventory", HasInventory}
)

var rules = [numTypes]propRule{
	QuestStarted:   {strs: []strField{sQuest}},
	QuestCompleted: {strs: []strField{sQuest}},
	QuestAbandoned: {strs: []strField{sQuest}},
	DropStarted:    {strs: []strField{sDrop, sCreator}},
	DropEnded:      {strs: []strField{sDrop}},
	DropViewed:     {strs: []strField{sDrop}},
	DropClaimed:    {strs: []strField{sDrop, sClaim}},
	ClaimRejected:  {strs: []strField{sDrop, sClaim, sReason}},
	QuestDefined:   {strs: []strField{sQuest}, nums: []numField{nMinDur}},
	DropScheduled:  {strs: []strField{sDrop, sCreator}, nums: []numField{nStarts, nEnds, nInv}},
	BidRequest:     {strs: []strField{sAuction, sPlacement}},
	Bid:            {strs: []strField{sAuction, sBidder, sOutcome, sCurrency}, nums: []numField{nLatency}},
	AuctionWon:     {strs: []strField{sAuction, sBidder, sCurrency}, nums: []numField{nClearing}},
	OfferShown:     {strs: []strField{sAuction, sOffer, sPlacement}},
	OfferClicked:   {strs: []strField{sAuction, sOffer}},
	Billed:         {strs: []strField{sAuction, sCurrency}, nums: []numField{nAmount}},
	Conversion:     {strs: []strField{sOrder, sCurrency}, nums: []numField{nAmount}},
	Payout:         {strs: []strField{sPayout, sOrder, sCreator, sCurrency}, nums: []numField{nAmount}},
}

// allStrs lists every string prop, for the length and charset checks that
// apply whether or not the type requires the field.
var allStrs = []strField{sQuest, sDrop, sCreator, sClaim, sAuction, sPlacement, sBidder, sOffer, sOrder, sPayout}

func validateProps(e *Event) error {
	r := &rules[e.Type]
	for _, f := range r.strs {
		if f.get(e) == "" {
			return fieldErr(f.name, "required for "+e.Type.String())
		}
	}
	for _, f := range r.nums {
		if e.Has&f.bit == 0 {
			return fieldErr(f.name, "required for "+e.Type.String())
		}
	}
	for _, f := range allStrs {
		if err := validText(f.name, f.get(e), MaxIDLen); err != nil {
			return err
		}
	}
	if err := validText("props.title", e.Title, MaxTextLen); err != nil {
		return err
	}
	if e.Currency != "" && !isCurrency(e.Currency) {
		return fieldErr("props.currency", "must be an ISO 4217 code (3 upper-case letters)")
	}
	for _, n := range [...]struct {
		name string
		bit  uint32
		v    int64
		max  int64
	}{
		{"props.amount_micros", HasAmountMicros, e.AmountMicros, MaxAmountMicros},
		{"props.price_micros", HasPriceMicros, e.PriceMicros, MaxAmountMicros},
		{"props.floor_micros", HasFloorMicros, e.FloorMicros, MaxAmountMicros},
		{"props.clearing_micros", HasClearingMicros, e.ClearingMicros, MaxAmountMicros},
		{"props.latency_ms", HasLatencyMs, e.LatencyMs, MaxNumber},
		{"props.duration_ms", HasDurationMs, e.DurationMs, MaxNumber},
		{"props.min_duration_ms", HasMinDurationMs, e.MinDurationMs, MaxNumber},
		{"props.max_duration_ms", HasMaxDurationMs, e.MaxDurationMs, MaxNumber},
		{"props.inventory", HasInventory, e.Inventory, MaxNumber},
	} {
		if e.Has&n.bit == 0 {
			continue
		}
		if n.v < 0 {
			return fieldErr(n.name, "must not be negative")
		}
		if n.v > n.max {
			return fieldErr(n.name, "must not exceed "+strconv.FormatInt(n.max, 10))
		}
	}
	switch e.Type {
	case ClaimRejected:
		switch e.Reason {
		case ReasonSoldOut, ReasonNotLive, ReasonRateLimited, ReasonSuspectedBot:
		default:
			return fieldErr("props.reason", "must be one of sold_out, not_live, rate_limited, suspected_bot")
		}
	case Bid:
		switch e.Outcome {
		case "bid":
			if e.Has&HasPriceMicros == 0 {
				return fieldErr("props.price_micros", "required when outcome is bid")
			}
		case "no_bid", "timeout", "error":
		default:
			return fieldErr("props.outcome", "must be one of bid, no_bid, timeout, error")
		}
	case QuestDefined:
		if e.Has&HasMaxDurationMs != 0 && e.MaxDurationMs < e.MinDurationMs {
			return fieldErr("props.max_duration_ms", "must not be less than min_duration_ms")
		}
	case DropScheduled:
		if e.EndsAt <= e.StartsAt {
			return fieldErr("props.ends_at", "must be after starts_at")
		}
	}
	return nil
}

// ValidEventID reports whether s follows event_id's rules (1–64 chars of
// [A-Za-z0-9._:-]); the API checks an Idempotency-Key with it.
func ValidEventID(s string) bool { return validID("event_id", s, MaxEventIDLen, true) == nil }

// validID checks an identifier: 1..max chars of [A-Za-z0-9._:-].
func validID(field, s string, max int, required bool) error {
	if s == "" {
		if required {
			return fieldErr(field, "required")
		}
		return nil
	}
	if len(s) > max {
		return fieldErr(field, "longer than "+strconv.Itoa(max)+" characters")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return fieldErr(field, "may contain only A-Z a-z 0-9 . _ : -")
		}
	}
	return nil
}

// validText checks an optional free-form string: at most max bytes and no
// control characters (they break logs and TSV exports).
func validText(field, s string, max int) error {
	// Characters, as SPEC §1 counts them ("1–128 chars"): a 43-character
	// id of 3-byte characters is 129 bytes (before session 13 that was
	// refused). Bytes bound characters from above: count only past max.
	if len(s) > max && utf8.RuneCountInString(s) > max {
		return fieldErr(field, "longer than "+strconv.Itoa(max)+" characters")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return fieldErr(field, "contains a control character")
		}
	}
	return nil
}

func isAlpha2(s string) bool {
	return len(s) == 2 && isUpper(s[0]) && isUpper(s[1])
}

func isCurrency(s string) bool {
	return len(s) == 3 && isUpper(s[0]) && isUpper(s[1]) && isUpper(s[2])
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
