package event

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// TimeLayout is the RFC 3339 layout with milliseconds that questline writes
// (SPEC §1: "RFC 3339 with milliseconds").
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// AppendClientJSON appends e as a client sends it in POST /v1/events: the
// envelope (event_id, type, ts, user_id, device_id, session_id, country)
// and props, with Extra's fields merged into props. Fields set by ingest
// (event_time, received_at, source, ...) are not written.
func AppendClientJSON(dst []byte, e *Event) []byte {
	return appendJSON(dst, e, false)
}

// AppendJSON appends the whole record of e as JSON: what AppendClientJSON
// writes plus the fields ingest derives (event_time, sent_at, received_at,
// clock_offset_ms, source, key_id, edge_country). It is the readable form
// of a Kafka record (questline decode).
func AppendJSON(dst []byte, e *Event) []byte {
	return appendJSON(dst, e, true)
}

func appendJSON(dst []byte, e *Event, full bool) []byte {
	dst = append(dst, `{"event_id":`...)
	dst = appendQuoted(dst, e.ID)
	dst = append(dst, `,"type":`...)
	dst = appendQuoted(dst, e.Type.String())
	dst = append(dst, `,"ts":`...)
	dst = appendTime(dst, e.TS)
	dst = appendStrField(dst, "user_id", e.UserID)
	dst = appendStrField(dst, "device_id", e.DeviceID)
	dst = appendStrField(dst, "session_id", e.SessionID)
	dst = appendStrField(dst, "country", e.Country)
	if full {
		dst = append(dst, `,"event_time":`...)
		dst = appendTime(dst, e.EventTime)
		if e.Has&HasSentAt != 0 {
			dst = append(dst, `,"sent_at":`...)
			dst = appendTime(dst, e.SentAt)
		}
		dst = append(dst, `,"received_at":`...)
		dst = appendTime(dst, e.ReceivedAt)
		if e.Has&HasClockOffset != 0 {
			dst = append(dst, `,"clock_offset_ms":`...)
			dst = strconv.AppendInt(dst, e.ClockOffsetMs, 10)
		}
		dst = appendStrField(dst, "source", e.Source.String())
		dst = appendStrField(dst, "key_id", e.KeyID)
		dst = appendStrField(dst, "edge_country", e.EdgeCountry)
	}
	dst = append(dst, `,"props":{`...)
	n := len(dst)
	dst = appendStrField(dst, "quest_id", e.QuestID)
	dst = appendStrField(dst, "drop_id", e.DropID)
	dst = appendStrField(dst, "creator_id", e.CreatorID)
	dst = appendStrField(dst, "claim_id", e.ClaimID)
	dst = appendStrField(dst, "reason", e.Reason)
	dst = appendStrField(dst, "auction_id", e.AuctionID)
	dst = appendStrField(dst, "placement", e.Placement)
	dst = appendStrField(dst, "bidder_id", e.BidderID)
	dst = appendStrField(dst, "outcome", e.Outcome)
	dst = appendStrField(dst, "offer_id", e.OfferID)
	dst = appendStrField(dst, "order_id", e.OrderID)
	dst = appendStrField(dst, "payout_id", e.PayoutID)
	dst = appendStrField(dst, "currency", e.Currency)
	dst = appendStrField(dst, "title", e.Title)
	dst = appendNumField(dst, e, HasAmountMicros, "amount_micros", e.AmountMicros)
	dst = appendNumField(dst, e, HasPriceMicros, "price_micros", e.PriceMicros)
	dst = appendNumField(dst, e, HasFloorMicros, "floor_micros", e.FloorMicros)
	dst = appendNumField(dst, e, HasClearingMicros, "clearing_micros", e.ClearingMicros)
	dst = appendNumField(dst, e, HasLatencyMs, "latency_ms", e.LatencyMs)
	dst = appendNumField(dst, e, HasDurationMs, "duration_ms", e.DurationMs)
	dst = appendNumField(dst, e, HasMinDurationMs, "min_duration_ms", e.MinDurationMs)
	dst = appendNumField(dst, e, HasMaxDurationMs, "max_duration_ms", e.MaxDurationMs)
	dst = appendNumField(dst, e, HasInventory, "inventory", e.Inventory)
	if e.Has&HasStartsAt != 0 {
		dst = append(dst, `,"starts_at":`...)
		dst = appendTime(dst, e.StartsAt)
	}
	if e.Has&HasEndsAt != 0 {
		dst = append(dst, `,"ends_at":`...)
		dst = appendTime(dst, e.EndsAt)
	}
	// Extra is a JSON object: splice its members in.
	if len(e.Extra) > 2 && e.Extra[0] == '{' && e.Extra[len(e.Extra)-1] == '}' {
		dst = append(dst, ',')
		dst = append(dst, e.Extra[1:len(e.Extra)-1]...)
	}
	if len(dst) > n && dst[n] == ',' {
		// Drop the leading comma of the first prop.
		copy(dst[n:], dst[n+1:])
		dst = dst[:len(dst)-1]
	}
	return append(dst, "}}"...)
}

func appendStrField(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendQuoted(dst, v)
}

func appendNumField(dst []byte, e *Event, bit uint32, name string, v int64) []byte {
	if e.Has&bit == 0 {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return strconv.AppendInt(dst, v, 10)
}

func appendTime(dst []byte, ms int64) []byte {
	dst = append(dst, '"')
	dst = time.UnixMilli(ms).UTC().AppendFormat(dst, TimeLayout)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
