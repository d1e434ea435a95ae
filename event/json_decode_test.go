package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// randomEvent returns a valid event of a random type with every field the
// client JSON carries set at random (ingest-derived fields zero).
func randomEvent(r *rand.Rand, i int) Event {
	ids := func(prefix string) string { return fmt.Sprintf("%s-%d", prefix, r.IntN(1000)) }
	ts := int64(1_700_000_000_000) + r.Int64N(100_000_000_000)
	types := Types()
	e := Event{
		ID:   fmt.Sprintf("ev:%d.%d", i, r.IntN(1e6)),
		Type: types[r.IntN(len(types))],
		TS:   ts,
	}
	if r.IntN(4) > 0 || !e.Type.ServerOnly() {
		e.UserID = ids("user \"quoted\" é ☃")
	}
	if r.IntN(2) == 0 {
		e.DeviceID = ids("dev\\ice")
	}
	if r.IntN(2) == 0 {
		e.SessionID = ids("s")
	}
	if r.IntN(2) == 0 {
		e.Country = "DE"
	}
	// Set every prop at random: Validate only needs the required ones.
	for _, f := range []*string{&e.QuestID, &e.DropID, &e.CreatorID, &e.ClaimID, &e.AuctionID, &e.Placement, &e.BidderID, &e.OfferID, &e.OrderID, &e.PayoutID} {
		*f = ids("id")
	}
	e.Currency = "EUR"
	e.Reason = "sold_out"
	e.Outcome = "bid"
	e.Title = "Title with \"quotes\", \\ and 𝄞"
	nums := []struct {
		p   *int64
		bit uint32
	}{
		{&e.AmountMicros, HasAmountMicros}, {&e.PriceMicros, HasPriceMicros}, {&e.FloorMicros, HasFloorMicros},
		{&e.ClearingMicros, HasClearingMicros}, {&e.LatencyMs, HasLatencyMs}, {&e.DurationMs, HasDurationMs},
		{&e.Inventory, HasInventory},
	}
	for _, n := range nums {
		if r.IntN(3) > 0 || n.bit == HasPriceMicros || n.bit == HasAmountMicros || n.bit == HasClearingMicros || n.bit == HasLatencyMs || n.bit == HasInventory {
			*n.p = r.Int64N(MaxNumber + 1) // the largest value every numeric prop accepts
			e.Has |= n.bit
		}
	}
	e.MinDurationMs, e.MaxDurationMs = 60_000, 600_000
	e.Has |= HasMinDurationMs | HasMaxDurationMs
	e.StartsAt, e.EndsAt = ts, ts+3_600_000
	e.Has |= HasStartsAt | HasEndsAt
	if r.IntN(2) == 0 {
		e.Extra = `{"ab_test":"b","nested":{"x":[1,2.5,-3e2,true,null,"s"]},"n":12}`
	}
	keepTypeProps(&e)
	return e
}

// keepTypeProps clears the props SPEC §1 does not give e's type: from JSON
// they come back in Extra, as the client's own.
func keepTypeProps(e *Event) {
	str := func(s *string) func() { return func() { *s = "" } }
	num := func(v *int64, bit uint32) func() { return func() { *v, e.Has = 0, e.Has&^bit } }
	for _, f := range []struct {
		bit   uint64
		clear func()
	}{
		{pQuest, str(&e.QuestID)}, {pDrop, str(&e.DropID)}, {pCreator, str(&e.CreatorID)}, {pClaim, str(&e.ClaimID)},
		{pReason, str(&e.Reason)}, {pAuction, str(&e.AuctionID)}, {pPlacement, str(&e.Placement)}, {pBidder, str(&e.BidderID)},
		{pOutcome, str(&e.Outcome)}, {pOffer, str(&e.OfferID)}, {pOrder, str(&e.OrderID)}, {pPayout, str(&e.PayoutID)},
		{pCurrency, str(&e.Currency)}, {pTitle, str(&e.Title)},
		{pAmount, num(&e.AmountMicros, HasAmountMicros)}, {pPrice, num(&e.PriceMicros, HasPriceMicros)},
		{pFloor, num(&e.FloorMicros, HasFloorMicros)}, {pClearing, num(&e.ClearingMicros, HasClearingMicros)},
		{pLatency, num(&e.LatencyMs, HasLatencyMs)}, {pDuration, num(&e.DurationMs, HasDurationMs)},
		{pMinDur, num(&e.MinDurationMs, HasMinDurationMs)}, {pMaxDur, num(&e.MaxDurationMs, HasMaxDurationMs)},
		{pInventory, num(&e.Inventory, HasInventory)}, {pStarts, num(&e.StartsAt, HasStartsAt)}, {pEnds, num(&e.EndsAt, HasEndsAt)},
	} {
		if typeProps[e.Type]&f.bit == 0 {
			f.clear()
		}
	}
}

// TestOtherTypesPropsAreExtra: a prop SPEC §1 gives another type is the
// client's own on this one (SPEC: "unknown extra fields are kept, not
// rejected"): kept verbatim in Extra, neither typed nor checked, whether
// props come before or after the type; the type's own props are typed
// and checked as ever.
func TestOtherTypesPropsAreExtra(t *testing.T) {
	ts := `"ts":"2026-05-01T12:00:00Z","user_id":"u1"`
	for _, c := range []struct {
		event, err, extra string
		check             func(e *Event) bool
	}{
		{`{"event_id":"a","type":"quest_started",` + ts + `,"props":{"quest_id":"q","amount_micros":1.5}}`, "", `{"amount_micros":1.5}`,
			func(e *Event) bool { return e.Has&HasAmountMicros == 0 && e.QuestID == "q" }},
		{`{"event_id":"b",` + ts + `,"props":{"inventory":"lots","quest_id":"q"},"type":"quest_started"}`, "", `{"inventory":"lots"}`,
			func(e *Event) bool { return e.Has&HasInventory == 0 && e.QuestID == "q" }},
		{`{"event_id":"c","type":"bid_request",` + ts + `,"props":{"auction_id":"x","placement":"p","duration_ms":-3}}`, "", `{"duration_ms":-3}`, nil},
		{`{"event_id":"d","type":"drop_viewed",` + ts + `,"props":{"drop_id":"d","ends_at":1746100800000,"title":{"en":"x"}}}`, "", `{"ends_at":1746100800000,"title":{"en":"x"}}`, nil},
		{`{"event_id":"e","type":"offer_clicked",` + ts + `,"props":{"auction_id":"x","offer_id":"o","currency":"usd"}}`, "", `{"currency":"usd"}`,
			func(e *Event) bool { return e.Currency == "" }},
		{`{"event_id":"f","type":"drop_claimed",` + ts + `,"props":{"drop_id":"d","claim_id":"c","reason":"promo"}}`, "", `{"reason":"promo"}`,
			func(e *Event) bool { return e.Reason == "" }},
		// The type's own props are still checked, props first or last.
		{`{"event_id":"g",` + ts + `,"props":{"quest_id":"q","duration_ms":-3},"type":"quest_completed"}`, "props.duration_ms: must not be negative", "", nil},
		{`{"event_id":"h","type":"billed",` + ts + `,"props":{"auction_id":"x","amount_micros":1.5,"currency":"USD"}}`, "props.amount_micros: must be an integer", "", nil},
	} {
		var b Batch
		if err := ParseBatch([]byte(`{"events":[`+c.event+`]}`), &b, 0); err != nil {
			t.Fatalf("%s: %v", c.event, err)
		}
		it := b.Items[0]
		err := it.Err
		if err == nil {
			err = Validate(&it.Event)
		}
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.event, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s: rejected: %v", c.event, err)
		case c.err == "" && it.Event.Extra != c.extra:
			t.Errorf("%s: Extra %s, want %s", c.event, it.Event.Extra, c.extra)
		case c.err == "" && c.check != nil && !c.check(&it.Event):
			t.Errorf("%s: typed fields %+v", c.event, it.Event)
		}
	}
}

func batchJSON(prefix string, evs []Event) []byte {
	b := []byte(`{` + prefix + `"events":[`)
	for i := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendClientJSON(b, &evs[i])
	}
	return append(b, "]}"...)
}

// TestParseBatchRoundTrip: AppendClientJSON → ParseBatch → the same Event.
func TestParseBatchRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var b Batch
	for round := range 50 {
		evs := make([]Event, 1+r.IntN(40))
		for i := range evs {
			evs[i] = randomEvent(r, i)
			if err := Validate(&evs[i]); err != nil {
				t.Fatalf("generator made an invalid event: %v", err)
			}
		}
		body := batchJSON(`"sent_at":"2026-05-01T12:00:00.250Z","clock_offset_ms":-1500,`, evs)
		if err := ParseBatch(body, &b, 0); err != nil {
			t.Fatalf("round %d: %v\n%s", round, err, body)
		}
		if !b.HasSentAt || b.SentAt != time.Date(2026, 5, 1, 12, 0, 0, 250e6, time.UTC).UnixMilli() {
			t.Fatalf("sent_at = %d (%v)", b.SentAt, b.HasSentAt)
		}
		if !b.HasClockOffset || b.ClockOffsetMs != -1500 {
			t.Fatalf("clock_offset_ms = %d (%v)", b.ClockOffsetMs, b.HasClockOffset)
		}
		if len(b.Items) != len(evs) {
			t.Fatalf("%d items, want %d", len(b.Items), len(evs))
		}
		for i, it := range b.Items {
			if it.Err != nil {
				t.Fatalf("event %d: %v\n%s", i, it.Err, it.Raw)
			}
			if !reflect.DeepEqual(it.Event, evs[i]) {
				t.Fatalf("event %d differs:\n got %+v\nwant %+v\nraw %s", i, it.Event, evs[i], it.Raw)
			}
			if want := string(AppendClientJSON(nil, &evs[i])); it.Raw != want {
				t.Fatalf("raw %d = %s, want %s", i, it.Raw, want)
			}
		}
	}
}

func TestParseBatchTimes(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{"2026-05-01T12:00:00.123Z", true},
		{"2026-05-01T12:00:00Z", true},
		{"2026-05-01T12:00:00.1Z", true},
		{"2026-05-01T12:00:00.123456789Z", true},
		{"2026-05-01t12:00:00.123z", true},
		{"2026-05-01T12:00:00.123+02:00", true},
		{"2026-05-01T12:00:00.123-09:30", true},
		{"2024-02-29T00:00:00.000Z", true},
		{"1969-12-31T23:59:59.999Z", true},
		{"0001-01-01T00:00:00.000Z", true},
		{"2023-02-29T00:00:00.000Z", false},
		{"2026-05-01T12:00:00.123", false},
		{"2026-05-01 12:00:00.123Z", false},
		{"2026-05-01T12:00:00.Z", false},
		{"2026-05-01T12:00:00.1234567890Z", false},
		{"2026-05-01T24:00:00.000Z", false},
		{"2026-05-01T12:60:00.000Z", false},
		{"2026-05-01T12:00:60.000Z", false},
		{"2026-13-01T12:00:00.000Z", false},
		{"2026-05-01T12:00:00.000+0200", false},
		{"2026-05-01T12:00:00.000+24:00", false},
		{"2026-05-01T12:00:00.000Zjunk", false},
		{"2026-5-01T12:00:00.000Z", false},
		{"", false},
	}
	for _, c := range cases {
		got, ok := parseTime(c.in)
		if ok != c.ok {
			t.Errorf("parseTime(%q) ok=%v, want %v", c.in, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		want, err := time.Parse(time.RFC3339Nano, strings.ToUpper(c.in))
		if err != nil {
			t.Fatalf("time.Parse(%q): %v", c.in, err)
		}
		if got != want.UnixMilli() && !(want.UnixMilli() < 0 && got == want.Truncate(time.Millisecond).UnixMilli()) {
			t.Errorf("parseTime(%q) = %d, want %d", c.in, got, want.UnixMilli())
		}
	}
	// Every millisecond layout questline writes parses back, over a wide range.
	r := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		ms := r.Int64N(253402300799999) - 62135596800000 // years 1..9999
		s := time.UnixMilli(ms).UTC().Format(TimeLayout)
		if got, ok := parseTime(s); !ok || got != ms {
			t.Fatalf("parseTime(%q) = %d %v, want %d", s, got, ok, ms)
		}
	}
}

// TestParseBatchEventErrors: each bad event fails alone, with its field.
func TestParseBatchEventErrors(t *testing.T) {
	const ok = `{"event_id":"ok-1","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","user_id":"u1","props":{"quest_id":"q1"}}`
	cases := []struct {
		name, event, field string
	}{
		{"not an object", `[1,2]`, "event"},
		{"missing event_id", `{"type":"quest_started","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"quest_id":"q"}}`, "event_id"},
		{"bad event_id chars", `{"event_id":"a b","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"quest_id":"q"}}`, "event_id"},
		{"event_id too long", `{"event_id":"` + strings.Repeat("a", 65) + `","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"quest_id":"q"}}`, "event_id"},
		{"event_id number", `{"event_id":12,"type":"quest_started","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"quest_id":"q"}}`, "event_id"},
		{"unknown type", `{"event_id":"e","type":"quest_exploded","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"quest_id":"q"}}`, "type"},
		{"missing type", `{"event_id":"e","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"quest_id":"q"}}`, "type"},
		{"missing ts", `{"event_id":"e","type":"quest_started","user_id":"u","props":{"quest_id":"q"}}`, "ts"},
		{"null ts", `{"event_id":"e","type":"quest_started","ts":null,"user_id":"u","props":{"quest_id":"q"}}`, "ts"},
		{"ts without zone", `{"event_id":"e","type":"quest_started","ts":"2026-05-01T12:00:00.000","user_id":"u","props":{"quest_id":"q"}}`, "ts"},
		{"ts as number", `{"event_id":"e","type":"quest_started","ts":1714564800000,"user_id":"u","props":{"quest_id":"q"}}`, "ts"},
		{"missing user_id", `{"event_id":"e","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","props":{"quest_id":"q"}}`, "user_id"},
		{"user_id too long", `{"event_id":"e","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","user_id":"` + strings.Repeat("u", 129) + `","props":{"quest_id":"q"}}`, "user_id"},
		{"control char via escape", `{"event_id":"e","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","user_id":"u\n","props":{"quest_id":"q"}}`, "user_id"},
		{"bad country", `{"event_id":"e","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","user_id":"u","country":"de","props":{"quest_id":"q"}}`, "country"},
		{"missing prop", `{"event_id":"e","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{}}`, "props.quest_id"},
		{"props not object", `{"event_id":"e","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":"q"}`, "props"},
		{"float amount", `{"event_id":"e","type":"billed","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"auction_id":"a","amount_micros":1.5,"currency":"EUR"}}`, "props.amount_micros"},
		{"integral float amount", `{"event_id":"e","type":"billed","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"auction_id":"a","amount_micros":1.0,"currency":"EUR"}}`, "props.amount_micros"},
		{"exponent amount", `{"event_id":"e","type":"billed","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"auction_id":"a","amount_micros":1e6,"currency":"EUR"}}`, "props.amount_micros"},
		{"amount beyond int64", `{"event_id":"e","type":"billed","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"auction_id":"a","amount_micros":9223372036854775808,"currency":"EUR"}}`, "props.amount_micros"},
		{"amount as string", `{"event_id":"e","type":"billed","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"auction_id":"a","amount_micros":"100","currency":"EUR"}}`, "props.amount_micros"},
		{"negative amount", `{"event_id":"e","type":"billed","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"auction_id":"a","amount_micros":-1,"currency":"EUR"}}`, "props.amount_micros"},
		{"bad currency", `{"event_id":"e","type":"billed","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"auction_id":"a","amount_micros":1,"currency":"eur"}}`, "props.currency"},
		{"bad claim reason", `{"event_id":"e","type":"claim_rejected","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"drop_id":"d","claim_id":"c","reason":"bored"}}`, "props.reason"},
		{"bid without price", `{"event_id":"e","type":"bid","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"auction_id":"a","bidder_id":"b","outcome":"bid","currency":"EUR","latency_ms":3}}`, "props.price_micros"},
		{"bad starts_at", `{"event_id":"e","type":"drop_scheduled","ts":"2026-05-01T12:00:00.000Z","props":{"drop_id":"d","creator_id":"c","starts_at":"tomorrow","ends_at":"2026-05-01T12:00:00.000Z","inventory":5}}`, "props.starts_at"},
		{"client sets event_time", `{"event_id":"e","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","event_time":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"quest_id":"q"}}`, "event_time"},
		{"client sets source", `{"event_id":"e","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","source":"api","user_id":"u","props":{"quest_id":"q"}}`, "source"},
		{"client sets key_id", `{"event_id":"e","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","key_id":"k","user_id":"u","props":{"quest_id":"q"}}`, "key_id"},
		{"client sets edge_country", `{"event_id":"e","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","edge_country":"DE","user_id":"u","props":{"quest_id":"q"}}`, "edge_country"},
		{"client sets received_at", `{"event_id":"e","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","received_at":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"quest_id":"q"}}`, "received_at"},
		{"unknown envelope field", `{"event_id":"e","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","user_id":"u","colour":"red","props":{"quest_id":"q"}}`, "colour"},
		{"duplicate field", `{"event_id":"e","event_id":"f","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"quest_id":"q"}}`, "event_id"},
		{"duplicate prop", `{"event_id":"e","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"quest_id":"q","quest_id":"r"}}`, "props.quest_id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := `{"events":[` + ok + `,` + c.event + `,` + ok + `]}`
			var b Batch
			if err := ParseBatch([]byte(body), &b, 0); err != nil {
				t.Fatalf("whole body failed: %v", err)
			}
			if len(b.Items) != 3 {
				t.Fatalf("%d items, want 3", len(b.Items))
			}
			if b.Items[0].Err != nil || b.Items[2].Err != nil {
				t.Fatalf("neighbours failed: %v, %v", b.Items[0].Err, b.Items[2].Err)
			}
			var fe *FieldError
			if !errors.As(b.Items[1].Err, &fe) {
				t.Fatalf("err = %v, want a *FieldError", b.Items[1].Err)
			}
			if fe.Field != c.field {
				t.Fatalf("field = %q (%v), want %q", fe.Field, fe, c.field)
			}
			if b.Items[1].Raw != c.event {
				t.Fatalf("raw = %s, want %s", b.Items[1].Raw, c.event)
			}
		})
	}
}

func TestParseBatchSyntaxErrors(t *testing.T) {
	ev := `{"event_id":"e","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"quest_id":"q"}}`
	cases := map[string]string{
		"empty":                 ``,
		"not json":              `hello`,
		"array top level":       `[` + ev + `]`,
		"missing events":        `{"sent_at":"2026-05-01T12:00:00.000Z"}`,
		"events not array":      `{"events":{}}`,
		"unknown batch field":   `{"events":[],"extra":1}`,
		"duplicate events":      `{"events":[],"events":[]}`,
		"bad sent_at":           `{"sent_at":"yesterday","events":[]}`,
		"string clock offset":   `{"clock_offset_ms":"1500","events":[]}`,
		"truncated":             `{"events":[` + ev,
		"trailing comma":        `{"events":[` + ev + `,]}`,
		"trailing data":         `{"events":[]} {}`,
		"unterminated string":   `{"events":[{"event_id":"e}]}`,
		"raw control char":      "{\"events\":[{\"event_id\":\"e\x01\"}]}",
		"invalid utf8":          "{\"events\":[{\"event_id\":\"\xff\"}]}",
		"bad escape":            `{"events":[{"event_id":"\x41"}]}`,
		"bad number":            `{"events":[{"props":{"n":01}}]}`,
		"bad literal":           `{"events":[{"props":{"n":tru}}]}`,
		"single quotes":         `{'events':[]}`,
		"too deep":              `{"events":[{"props":{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}]}`,
		"missing colon":         `{"events" []}`,
		"missing comma":         `{"events":[` + ev + ev + `]}`,
		"garbage after element": `{"events":[1 2]}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			var b Batch
			err := ParseBatch([]byte(body), &b, 0)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *SyntaxError", err)
			}
		})
	}
}

func TestParseBatchLimitsAndExtras(t *testing.T) {
	ev := `{"event_id":"e%d","type":"quest_started","ts":"2026-05-01T12:00:00.000Z","user_id":"u","props":{"quest_id":"q"}}`
	var parts []string
	for i := range 11 {
		parts = append(parts, fmt.Sprintf(ev, i))
	}
	body := []byte(`{"events":[` + strings.Join(parts, ",") + `]}`)
	var b Batch
	if err := ParseBatch(body, &b, 10); !errors.Is(err, ErrTooManyEvents) {
		t.Fatalf("11 events with limit 10: %v", err)
	}
	if err := ParseBatch(body, &b, 11); err != nil || len(b.Items) != 11 {
		t.Fatalf("11 events with limit 11: %v, %d items", err, len(b.Items))
	}

	// Unknown props are kept verbatim, whitespace inside values included;
	// null stands for an absent field; escapes are decoded.
	body = []byte(`{ "sent_at" : null , "events" : [ { "event_id" : "e\u002d1" , "type":"quest_completed", "ts":"2026-05-01T12:00:00Z",` +
		` "user_id":"\ud83d\ude00", "device_id": null, "props": { "quest_id":"q", "ab" : [1, {"k": "v"}], "duration_ms": 1200, "z":null } } ] }`)
	if err := ParseBatch(body, &b, 0); err != nil {
		t.Fatal(err)
	}
	e := b.Items[0].Event
	if b.Items[0].Err != nil || b.HasSentAt {
		t.Fatalf("err %v, HasSentAt %v", b.Items[0].Err, b.HasSentAt)
	}
	if e.ID != "e-1" || e.UserID != "😀" || e.DeviceID != "" || e.DurationMs != 1200 || e.Has != HasDurationMs {
		t.Fatalf("parsed %+v", e)
	}
	if want := `{"ab" : [1, {"k": "v"}],"z":null}`; e.Extra != want {
		t.Fatalf("extra = %s, want %s", e.Extra, want)
	}
	if !json.Valid([]byte(e.Extra)) {
		t.Fatal("extra is not valid JSON")
	}
}

// TestPropsEdges: an unknown prop given twice is refused like a known one;
// lengths count characters (SPEC §1), not bytes; a fractional
// clock_offset_ms is rounded.
func TestPropsEdges(t *testing.T) {
	ts := `"ts":"2026-05-01T12:00:00Z"`
	var b Batch
	body := `{"clock_offset_ms":-1520.5,"events":[` +
		`{"event_id":"a","type":"quest_started",` + ts + `,"user_id":"u","props":{"quest_id":"q","foo":1,"foo":2}},` +
		`{"event_id":"b","type":"quest_started",` + ts + `,"user_id":"` + strings.Repeat("用", 128) + `","props":{"quest_id":"q"}},` +
		`{"event_id":"c","type":"quest_started",` + ts + `,"user_id":"` + strings.Repeat("用", 129) + `","props":{"quest_id":"q"}}]}`
	if err := ParseBatch([]byte(body), &b, 0); err != nil {
		t.Fatal(err)
	}
	if !b.HasClockOffset || b.ClockOffsetMs != -1521 {
		t.Errorf("clock_offset_ms %d (%v), want -1521", b.ClockOffsetMs, b.HasClockOffset)
	}
	errOf := func(i int) string {
		it := b.Items[i]
		err := it.Err
		if err == nil {
			err = Validate(&it.Event)
		}
		if err == nil {
			return ""
		}
		return err.Error()
	}
	if e := errOf(0); !strings.Contains(e, "props.foo: given twice") {
		t.Errorf("unknown prop twice: %q", e)
	}
	if e := errOf(1); e != "" {
		t.Errorf("a 128-character user_id of 384 bytes: %q", e)
	}
	if e := errOf(2); !strings.Contains(e, "longer than 128 characters") {
		t.Errorf("a 129-character user_id: %q", e)
	}
	for _, bad := range []string{`"x"`, `1e400`, `1e20`} {
		if err := ParseBatch([]byte(`{"clock_offset_ms":`+bad+`,"events":[]}`), &b, 0); err == nil {
			t.Errorf("clock_offset_ms %s accepted (%d)", bad, b.ClockOffsetMs)
		}
	}
}

// TestManyUnknownProps: an event with many unknown props is checked for
// duplicates through a map past the first few keys (a list searched for
// each key made 80,000 props take 6 s to parse), and a duplicate among
// them is still found.
func TestManyUnknownProps(t *testing.T) {
	var props strings.Builder
	for i := range 80_000 {
		fmt.Fprintf(&props, `"k%07d":0,`, i)
	}
	body := `{"events":[{"event_id":"a","type":"quest_started","ts":"2026-05-01T12:00:00Z","user_id":"u","props":{` + props.String() + `"quest_id":"q"}},` +
		`{"event_id":"b","type":"quest_started","ts":"2026-05-01T12:00:00Z","user_id":"u","props":{` + props.String() + `"k0000009":1,"quest_id":"q"}}]}`
	var b Batch
	if err := ParseBatch([]byte(body), &b, 0); err != nil {
		t.Fatal(err)
	}
	// Linear, not timed: past its first few keys the set is a map (a list
	// searched for each key took 6 s for these 80,000).
	var ks keySet
	for i := range 80_000 {
		if ks.add(fmt.Sprintf("k%07d", i)) {
			t.Fatalf("key %d reported as given twice", i)
		}
	}
	if len(ks.more) != 80_000 {
		t.Errorf("the set holds %d keys in its map, want all 80,000", len(ks.more))
	}
	if b.Items[0].Err != nil {
		t.Errorf("distinct keys: %v", b.Items[0].Err)
	}
	if err := b.Items[1].Err; err == nil || !strings.Contains(err.Error(), "props.k0000009: given twice") {
		t.Errorf("a key given twice after 80,000: %v", err)
	}
}

// TestTypePropsHoldRequired: typeProps (the props each type parses) and
// rules (the props each type requires, validate.go) both come from SPEC
// §1's table; every required prop must be one the type parses, or a
// client could never send it.
func TestTypePropsHoldRequired(t *testing.T) {
	for typ := QuestStarted; typ < numTypes; typ++ {
		var names []string
		for _, f := range rules[typ].strs {
			names = append(names, f.name)
		}
		for _, f := range rules[typ].nums {
			names = append(names, f.name)
		}
		for _, n := range names {
			bit := propBit(strings.TrimPrefix(n, "props."))
			if bit == 0 || typeProps[typ]&bit == 0 {
				t.Errorf("%s requires %s, which it does not parse", typ, n)
			}
		}
	}
}
