package event

import (
	"errors"
	"math"
	"slices"
	"strconv"
)

// Batch is a parsed POST /v1/events body (SPEC §2).
type Batch struct {
	// SentAt is the batch's sent_at (Unix ms) when HasSentAt.
	SentAt    int64
	HasSentAt bool
	// ClockOffsetMs is the batch's clock_offset_ms when HasClockOffset.
	ClockOffsetMs  int64
	HasClockOffset bool
	// Items holds one entry per element of "events", in order.
	Items []Item
}

// Item is one element of a batch's "events" array.
type Item struct {
	// Raw is the element's JSON text as received (for the dead-letter topic).
	Raw string
	// Event is the parsed event. When Err is set it holds what could be
	// read (ID may be useful to echo back), not a valid event.
	Event Event
	// Err is nil for a valid event, else a *FieldError: the first field that
	// could not be parsed (wrong JSON type, bad time, non-integer amount,
	// unknown or ingest-only field), or Validate's verdict.
	Err error
}

// SyntaxError is a whole-body failure of ParseBatch: the body is not JSON,
// or not the batch object of SPEC §2. Ingest answers it with 400.
type SyntaxError struct {
	Offset int // byte offset of the fault in the (decompressed) body
	Msg    string
}

func (e *SyntaxError) Error() string {
	return "body: " + e.Msg + " at offset " + strconv.Itoa(e.Offset)
}

// ErrTooManyEvents is returned by ParseBatch when "events" holds more than
// the allowed number of elements. Ingest answers it with 413.
var ErrTooManyEvents = errors.New("body: too many events in one batch")

// ParseBatch parses body, the JSON of POST /v1/events, into b, reusing b's
// Items slice. It accepts at most maxEvents events (<= 0: no limit).
//
// The parser is strict and hand-written for speed (no encoding/json, no
// generic maps); every string of the parsed events shares one copy of body.
// A body that is not valid JSON (RFC 8259, UTF-8), or whose top level is
// not {"sent_at"?, "clock_offset_ms"?, "events": [...]}, is a *SyntaxError;
// anything wrong inside one event only fails that event (Item.Err).
//
// Decisions (documented in docs/ingest.md):
//   - times are RFC 3339 with a zone (Z or ±hh:mm); the fraction of a second
//     is optional and may have 1–9 digits, truncated to milliseconds;
//   - integers (amounts, durations, counts) are JSON integers within
//     int64: no fraction, no exponent; the batch's clock_offset_ms is
//     rounded to the nearest integer;
//   - null stands for an absent field;
//   - unknown event fields are rejected (custom data belongs in props);
//     unknown props, and props SPEC §1 gives only other types, are kept
//     verbatim in Event.Extra (an unknown prop given twice is rejected);
//   - fields ingest derives (event_time, received_at, sent_at,
//     clock_offset_ms, source, key_id, edge_country) are rejected inside an
//     event: a client never sets them;
//   - a field given twice in one object is rejected;
//   - unknown batch fields are a *SyntaxError.
func ParseBatch(body []byte, b *Batch, maxEvents int) error {
	items := b.Items[:0]
	*b = Batch{}
	p := parser{s: string(body)}
	items = p.batch(b, items, maxEvents)
	b.Items = items
	if p.err != nil {
		return p.err
	}
	return nil
}

func (p *parser) batch(b *Batch, items []Item, maxEvents int) []Item {
	if !p.consume('{') {
		return items
	}
	var seenSent, seenOffset, seenEvents bool
	for first := true; ; first = false {
		key, ok := p.objectNext(first)
		if !ok {
			break
		}
		switch key {
		case "sent_at":
			if seenSent {
				p.fail("duplicate field sent_at")
				return items
			}
			seenSent = true
			if p.null() {
				continue
			}
			at := p.i
			s, isStr := p.strValue()
			if p.err != nil {
				return items
			}
			ms, ok := parseTime(s)
			if !isStr || !ok {
				p.i = at
				p.fail("sent_at must be an RFC 3339 time with a zone")
				return items
			}
			b.SentAt, b.HasSentAt = ms, true
		case "clock_offset_ms":
			if seenOffset {
				p.fail("duplicate field clock_offset_ms")
				return items
			}
			seenOffset = true
			if p.null() {
				continue
			}
			at := p.i
			v, msg := p.integer()
			if p.err != nil {
				return items
			}
			if msg != "" {
				// SPEC §2's estimate, server_time − the midpoint of the
				// send and the receive, ends in .5 half the time: a
				// number with a fraction or an exponent is rounded (a
				// 400 would refuse every batch of such a client).
				if f, err := strconv.ParseFloat(string(p.s[at:p.i]), 64); err == nil && math.Abs(f) < 1<<53 {
					v, msg = int64(math.Round(f)), ""
				}
			}
			if msg != "" {
				p.i = at
				p.fail("clock_offset_ms " + msg)
				return items
			}
			b.ClockOffsetMs, b.HasClockOffset = v, true
		case "events":
			if seenEvents {
				p.fail("duplicate field events")
				return items
			}
			seenEvents = true
			items = p.events(items, maxEvents)
		default:
			p.fail("unknown field " + strconv.Quote(key) + " (want sent_at, clock_offset_ms, events)")
		}
		if p.err != nil {
			return items
		}
	}
	if p.err != nil {
		return items
	}
	if !seenEvents {
		p.fail(`missing field "events"`)
		return items
	}
	p.ws()
	if p.i != len(p.s) {
		p.fail("unexpected data after the batch object")
	}
	return items
}

func (p *parser) events(items []Item, maxEvents int) []Item {
	if p.peek() != '[' {
		p.fail("events must be an array")
		return items
	}
	p.i++
	if p.peek() == ']' {
		p.i++
		return items
	}
	for {
		if maxEvents > 0 && len(items) >= maxEvents {
			p.err = ErrTooManyEvents
			return items
		}
		p.ws()
		start := p.i
		items = append(items, Item{})
		it := &items[len(items)-1]
		var ferr *FieldError
		hasTS := false
		if p.i < len(p.s) && p.s[p.i] == '{' {
			ferr, hasTS = p.event(&it.Event)
			if ferr == nil && it.Event.Type == TypeInvalid {
				ferr = fieldErr("type", "required") // unknown types failed in p.event
			}
		} else {
			p.skip(0)
			ferr = fieldErr("event", "must be an object")
		}
		if p.err != nil {
			return items
		}
		it.Raw = p.s[start:p.i]
		if ferr != nil {
			it.Err = ferr
		} else if err := Validate(&it.Event); err != nil {
			it.Err = err
		} else if !hasTS {
			it.Err = fieldErr("ts", "required")
		}
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return items
		default:
			p.fail("expected ',' or ']' in events")
			return items
		}
	}
}

// Bits of envelope fields, to reject a field given twice.
const (
	seenID uint64 = 1 << iota
	seenType
	seenTS
	seenUser
	seenDevice
	seenSession
	seenCountry
	seenProps
)

// event parses one event object at p.i into e. It returns the first field
// error and whether ts was given; syntax errors go to p.err.
func (p *parser) event(e *Event) (*FieldError, bool) {
	p.i++ // '{'
	var ferr *FieldError
	var seen uint64
	hasTS, typeSeen, propsAt := false, false, -1
	keep := func(f *FieldError) {
		if ferr == nil {
			ferr = f
		}
	}
	for first := true; ; first = false {
		key, ok := p.objectNext(first)
		if !ok {
			break
		}
		var bit uint64
		switch key {
		case "event_id":
			bit = seenID
			keep(p.strField("event_id", &e.ID))
		case "type":
			bit = seenType
			typeSeen = true
			var name string
			if f := p.strField("type", &name); f != nil {
				keep(f)
			} else if name != "" {
				if e.Type = ParseType(name); e.Type == TypeInvalid {
					keep(fieldErr("type", "unknown event type "+strconv.Quote(name)))
				}
			}
		case "ts":
			bit = seenTS
			var h uint32
			keep(p.timeField("ts", &e.TS, &h, 1))
			hasTS = hasTS || h != 0
		case "user_id":
			bit = seenUser
			keep(p.strField("user_id", &e.UserID))
		case "device_id":
			bit = seenDevice
			keep(p.strField("device_id", &e.DeviceID))
		case "session_id":
			bit = seenSession
			keep(p.strField("session_id", &e.SessionID))
		case "country":
			bit = seenCountry
			keep(p.strField("country", &e.Country))
		case "props":
			bit = seenProps
			if !typeSeen {
				// Which props are the type's depends on the type, which
				// comes later: check the value's syntax now, parse it
				// after the object.
				propsAt = p.i
				p.skip(0)
			} else {
				keep(p.props(e))
			}
		case "event_time", "received_at", "sent_at", "clock_offset_ms", "source", "key_id", "edge_country":
			p.skip(0)
			keep(fieldErr(key, "is set by ingest, not by the client"))
		default:
			p.skip(0)
			keep(fieldErr(key, "unknown event field (custom data belongs in props)"))
		}
		if p.err != nil {
			return ferr, false
		}
		if seen&bit != 0 {
			keep(fieldErr(key, "given twice"))
		}
		seen |= bit
	}
	if propsAt >= 0 {
		end := p.i
		p.i = propsAt
		keep(p.props(e))
		p.i = end
	}
	return ferr, hasTS
}

// Bits of known props, to reject a prop given twice.
const (
	pQuest uint64 = 1 << iota
	pDrop
	pCreator
	pClaim
	pReason
	pAuction
	pPlacement
	pBidder
	pOutcome
	pOffer
	pOrder
	pPayout
	pCurrency
	pTitle
	pAmount
	pPrice
	pFloor
	pClearing
	pLatency
	pDuration
	pMinDur
	pMaxDur
	pInventory
	pStarts
	pEnds
)

// propBit returns the bit of a known prop's name, 0 for another name.
func propBit(key string) uint64 {
	switch key {
	case "quest_id":
		return pQuest
	case "drop_id":
		return pDrop
	case "creator_id":
		return pCreator
	case "claim_id":
		return pClaim
	case "reason":
		return pReason
	case "auction_id":
		return pAuction
	case "placement":
		return pPlacement
	case "bidder_id":
		return pBidder
	case "outcome":
		return pOutcome
	case "offer_id":
		return pOffer
	case "order_id":
		return pOrder
	case "payout_id":
		return pPayout
	case "currency":
		return pCurrency
	case "title":
		return pTitle
	case "amount_micros":
		return pAmount
	case "price_micros":
		return pPrice
	case "floor_micros":
		return pFloor
	case "clearing_micros":
		return pClearing
	case "latency_ms":
		return pLatency
	case "duration_ms":
		return pDuration
	case "min_duration_ms":
		return pMinDur
	case "max_duration_ms":
		return pMaxDur
	case "inventory":
		return pInventory
	case "starts_at":
		return pStarts
	case "ends_at":
		return pEnds
	}
	return 0
}

// typeProps are the props SPEC §1 gives each type, required or optional.
// Another known prop's name on an event of the type is the client's own
// prop ("unknown extra fields are kept, not rejected"): it goes to Extra
// as sent, not to a typed field (before session 13 it was typed and
// checked, and an event with, say, a fractional amount_micros of its own
// on a quest_started was rejected). An event whose type is unknown is
// parsed with every prop known (it is rejected for its type anyway).
var typeProps = [numTypes]uint64{
	TypeInvalid:    ^uint64(0),
	QuestStarted:   pQuest,
	QuestCompleted: pQuest | pDuration,
	QuestAbandoned: pQuest,
	DropStarted:    pDrop | pCreator | pEnds | pInventory,
	DropEnded:      pDrop,
	DropViewed:     pDrop | pCreator,
	DropClaimed:    pDrop | pClaim,
	ClaimRejected:  pDrop | pClaim | pReason,
	QuestDefined:   pQuest | pMinDur | pMaxDur | pTitle,
	DropScheduled:  pDrop | pCreator | pStarts | pEnds | pInventory | pOffer,
	BidRequest:     pAuction | pPlacement | pFloor | pDrop | pCreator,
	Bid:            pAuction | pBidder | pOutcome | pPrice | pCurrency | pLatency,
	AuctionWon:     pAuction | pBidder | pClearing | pCurrency,
	OfferShown:     pAuction | pOffer | pPlacement,
	OfferClicked:   pAuction | pOffer,
	Billed:         pAuction | pAmount | pCurrency,
	Conversion:     pOrder | pAmount | pCurrency | pOffer | pDrop | pCreator | pQuest,
	Payout:         pPayout | pOrder | pCreator | pAmount | pCurrency,
}

func (p *parser) props(e *Event) *FieldError {
	if p.null() {
		return nil
	}
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		p.skip(0)
		return fieldErr("props", "must be an object")
	}
	p.i++
	var ferr *FieldError
	keep := func(f *FieldError) {
		if ferr == nil {
			ferr = f
		}
	}
	var seen uint64
	var extra []byte
	var unknown keySet // the unknown props' keys
	for first := true; ; first = false {
		before := p.i
		key, ok := p.objectNext(first)
		if !ok {
			break
		}
		keyStart := p.keyStart(before)
		// A prop SPEC §1 gives another type is the client's own on this
		// one: kept verbatim in Extra, neither typed nor checked.
		bit := propBit(key)
		if bit&typeProps[e.Type] == 0 {
			bit = 0
		}
		switch bit {
		case pQuest:
			keep(p.strField("props.quest_id", &e.QuestID))
		case pDrop:
			keep(p.strField("props.drop_id", &e.DropID))
		case pCreator:
			keep(p.strField("props.creator_id", &e.CreatorID))
		case pClaim:
			keep(p.strField("props.claim_id", &e.ClaimID))
		case pReason:
			keep(p.strField("props.reason", &e.Reason))
		case pAuction:
			keep(p.strField("props.auction_id", &e.AuctionID))
		case pPlacement:
			keep(p.strField("props.placement", &e.Placement))
		case pBidder:
			keep(p.strField("props.bidder_id", &e.BidderID))
		case pOutcome:
			keep(p.strField("props.outcome", &e.Outcome))
		case pOffer:
			keep(p.strField("props.offer_id", &e.OfferID))
		case pOrder:
			keep(p.strField("props.order_id", &e.OrderID))
		case pPayout:
			keep(p.strField("props.payout_id", &e.PayoutID))
		case pCurrency:
			keep(p.strField("props.currency", &e.Currency))
		case pTitle:
			keep(p.strField("props.title", &e.Title))
		case pAmount:
			keep(p.intField("props.amount_micros", &e.AmountMicros, &e.Has, HasAmountMicros))
		case pPrice:
			keep(p.intField("props.price_micros", &e.PriceMicros, &e.Has, HasPriceMicros))
		case pFloor:
			keep(p.intField("props.floor_micros", &e.FloorMicros, &e.Has, HasFloorMicros))
		case pClearing:
			keep(p.intField("props.clearing_micros", &e.ClearingMicros, &e.Has, HasClearingMicros))
		case pLatency:
			keep(p.intField("props.latency_ms", &e.LatencyMs, &e.Has, HasLatencyMs))
		case pDuration:
			keep(p.intField("props.duration_ms", &e.DurationMs, &e.Has, HasDurationMs))
		case pMinDur:
			keep(p.intField("props.min_duration_ms", &e.MinDurationMs, &e.Has, HasMinDurationMs))
		case pMaxDur:
			keep(p.intField("props.max_duration_ms", &e.MaxDurationMs, &e.Has, HasMaxDurationMs))
		case pInventory:
			keep(p.intField("props.inventory", &e.Inventory, &e.Has, HasInventory))
		case pStarts:
			keep(p.timeField("props.starts_at", &e.StartsAt, &e.Has, HasStartsAt))
		case pEnds:
			keep(p.timeField("props.ends_at", &e.EndsAt, &e.Has, HasEndsAt))
		default:
			// Unknown prop: keep `"key":value` verbatim, once (a key given
			// twice is refused as a known one is: which copy a reader of
			// Extra would get is undefined).
			if unknown.add(key) {
				keep(fieldErr("props."+key, "given twice"))
			}
			p.skip(1)
			if p.err != nil {
				return ferr
			}
			if extra == nil {
				extra = append(make([]byte, 0, 64), '{')
			} else {
				extra = append(extra, ',')
			}
			extra = append(extra, p.s[keyStart:p.i]...)
			continue
		}
		if p.err != nil {
			return ferr
		}
		if seen&bit != 0 {
			keep(fieldErr("props."+key, "given twice"))
		}
		seen |= bit
	}
	if extra != nil {
		e.Extra = string(append(extra, '}'))
	}
	return ferr
}

// keySet is a set of an object's keys: a few in an array (no allocation
// for the usual event), more in a map, so n keys cost O(n) (a list searched
// for each key made a body of 80,000 unknown props take 6 s to parse).
type keySet struct {
	small [8]string
	n     int
	more  map[string]struct{}
}

// add adds k and reports whether the set had it.
func (s *keySet) add(k string) bool {
	if s.more != nil {
		if _, ok := s.more[k]; ok {
			return true
		}
		s.more[k] = struct{}{}
		return false
	}
	if slices.Contains(s.small[:s.n], k) {
		return true
	}
	if s.n < len(s.small) {
		s.small[s.n] = k
		s.n++
		return false
	}
	s.more = make(map[string]struct{}, 2*len(s.small))
	for _, x := range s.small {
		s.more[x] = struct{}{}
	}
	s.more[k] = struct{}{}
	return false
}

// keyStart returns the offset of the key's opening quote at or after i,
// skipping the whitespace and ',' before a member.
func (p *parser) keyStart(i int) int {
	for i < len(p.s) && p.s[i] != '"' {
		i++
	}
	return i
}

// null consumes a JSON null at p.i (after whitespace), reporting whether
// there was one.
func (p *parser) null() bool {
	p.ws()
	if len(p.s)-p.i >= 4 && p.s[p.i:p.i+4] == "null" {
		p.i += 4
		return true
	}
	return false
}

// strField reads a string or null into *dst.
func (p *parser) strField(name string, dst *string) *FieldError {
	if p.null() {
		return nil
	}
	s, ok := p.strValue()
	if p.err != nil {
		return nil
	}
	if !ok {
		return fieldErr(name, "must be a string")
	}
	*dst = s
	return nil
}

// intField reads an integer or null into *dst, setting bit in *has.
func (p *parser) intField(name string, dst *int64, has *uint32, bit uint32) *FieldError {
	if p.null() {
		return nil
	}
	v, msg := p.integer()
	if p.err != nil {
		return nil
	}
	if msg != "" {
		return fieldErr(name, msg)
	}
	*dst = v
	*has |= bit
	return nil
}

// timeField reads an RFC 3339 time string or null into *dst (Unix ms),
// setting bit in *has when has is not nil.
func (p *parser) timeField(name string, dst *int64, has *uint32, bit uint32) *FieldError {
	if p.null() {
		return nil
	}
	s, ok := p.strValue()
	if p.err != nil {
		return nil
	}
	if !ok {
		return fieldErr(name, "must be an RFC 3339 time string")
	}
	ms, ok := parseTime(s)
	if !ok {
		return fieldErr(name, "must be an RFC 3339 time with a zone, e.g. 2026-05-01T12:00:00.000Z")
	}
	*dst = ms
	if has != nil {
		*has |= bit
	}
	return nil
}
