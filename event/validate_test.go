package event

import (
	"errors"
	"strings"
	"testing"
)

// valid returns a minimal valid event of type t.
func valid(t Type) Event {
	e := Event{ID: "e1", Type: t, UserID: "u1", Currency: "USD"}
	switch t {
	case QuestStarted, QuestCompleted, QuestAbandoned:
		e.QuestID = "q1"
	case DropStarted:
		e.DropID, e.CreatorID, e.UserID = "d1", "c1", ""
	case DropEnded:
		e.DropID, e.UserID = "d1", ""
	case DropViewed:
		e.DropID = "d1"
	case DropClaimed:
		e.DropID, e.ClaimID = "d1", "cl1"
	case ClaimRejected:
		e.DropID, e.ClaimID, e.Reason = "d1", "cl1", "not_live"
	case QuestDefined:
		e.QuestID, e.MinDurationMs, e.Has, e.UserID = "q1", 60000, HasMinDurationMs, ""
	case DropScheduled:
		e.DropID, e.CreatorID, e.StartsAt, e.EndsAt, e.Inventory, e.UserID = "d1", "c1", 1000, 2000, 5, ""
		e.Has = HasStartsAt | HasEndsAt | HasInventory
	case BidRequest:
		e.AuctionID, e.Placement = "a1", "feed"
	case Bid:
		e.AuctionID, e.BidderID, e.Outcome, e.PriceMicros, e.LatencyMs = "a1", "b1", "bid", 1500, 12
		e.Has = HasPriceMicros | HasLatencyMs
	case AuctionWon:
		e.AuctionID, e.BidderID, e.ClearingMicros, e.Has = "a1", "b1", 1200, HasClearingMicros
	case OfferShown:
		e.AuctionID, e.OfferID, e.Placement = "a1", "o1", "feed"
	case OfferClicked:
		e.AuctionID, e.OfferID = "a1", "o1"
	case Billed:
		e.AuctionID, e.AmountMicros, e.Has = "a1", 1200, HasAmountMicros
	case Conversion:
		e.OrderID, e.AmountMicros, e.Has = "or1", 5000000, HasAmountMicros
	case Payout:
		e.PayoutID, e.OrderID, e.CreatorID, e.AmountMicros, e.Has = "p1", "or1", "c1", 100, HasAmountMicros
	}
	return e
}

func TestValidateAcceptsEveryTypeMinimal(t *testing.T) {
	for _, typ := range Types() {
		e := valid(typ)
		if err := Validate(&e); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	cases := []struct {
		name  string
		typ   Type
		edit  func(*Event)
		field string
	}{
		{"missing event_id", QuestStarted, func(e *Event) { e.ID = "" }, "event_id"},
		{"event_id too long", QuestStarted, func(e *Event) { e.ID = strings.Repeat("a", 65) }, "event_id"},
		{"event_id bad char", QuestStarted, func(e *Event) { e.ID = "a b" }, "event_id"},
		{"unknown type", QuestStarted, func(e *Event) { e.Type = TypeInvalid }, "type"},
		{"missing user", QuestStarted, func(e *Event) { e.UserID = "" }, "user_id"},
		{"user too long", QuestStarted, func(e *Event) { e.UserID = strings.Repeat("u", 129) }, "user_id"},
		{"device too long", QuestStarted, func(e *Event) { e.DeviceID = strings.Repeat("d", 129) }, "device_id"},
		{"control char", QuestStarted, func(e *Event) { e.SessionID = "a\nb" }, "session_id"},
		{"bad country", QuestStarted, func(e *Event) { e.Country = "Germany" }, "country"},
		{"lower-case country", QuestStarted, func(e *Event) { e.Country = "de" }, "country"},
		{"missing quest", QuestCompleted, func(e *Event) { e.QuestID = "" }, "props.quest_id"},
		{"missing creator", DropStarted, func(e *Event) { e.CreatorID = "" }, "props.creator_id"},
		{"missing claim", DropClaimed, func(e *Event) { e.ClaimID = "" }, "props.claim_id"},
		{"bad reason", ClaimRejected, func(e *Event) { e.Reason = "because" }, "props.reason"},
		{"missing min duration", QuestDefined, func(e *Event) { e.Has = 0 }, "props.min_duration_ms"},
		{"max below min", QuestDefined, func(e *Event) { e.MaxDurationMs, e.Has = 1, e.Has|HasMaxDurationMs }, "props.max_duration_ms"},
		{"schedule ends before start", DropScheduled, func(e *Event) { e.EndsAt = e.StartsAt }, "props.ends_at"},
		{"missing placement", BidRequest, func(e *Event) { e.Placement = "" }, "props.placement"},
		{"bid without price", Bid, func(e *Event) { e.Has &^= HasPriceMicros }, "props.price_micros"},
		{"bid without latency", Bid, func(e *Event) { e.Has &^= HasLatencyMs }, "props.latency_ms"},
		{"bad outcome", Bid, func(e *Event) { e.Outcome = "maybe" }, "props.outcome"},
		{"bid without currency", Bid, func(e *Event) { e.Currency = "" }, "props.currency"},
		{"won without clearing", AuctionWon, func(e *Event) { e.Has = 0 }, "props.clearing_micros"},
		{"bad currency", Billed, func(e *Event) { e.Currency = "usd" }, "props.currency"},
		{"negative amount", Conversion, func(e *Event) { e.AmountMicros = -1 }, "props.amount_micros"},
		{"amount too large", Billed, func(e *Event) { e.AmountMicros = MaxAmountMicros + 1 }, "props.amount_micros"},
		{"latency too large", Bid, func(e *Event) { e.LatencyMs = MaxNumber + 1 }, "props.latency_ms"},
		{"missing order", Payout, func(e *Event) { e.OrderID = "" }, "props.order_id"},
		{"prop id too long", OfferShown, func(e *Event) { e.OfferID = strings.Repeat("o", 129) }, "props.offer_id"},
	}
	for _, c := range cases {
		e := valid(c.typ)
		c.edit(&e)
		err := Validate(&e)
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: err = %v, want a *FieldError", c.name, err)
			continue
		}
		if fe.Field != c.field {
			t.Errorf("%s: error on %q (%v), want %q", c.name, fe.Field, err, c.field)
		}
	}
}

func TestNoBidNeedsNoPrice(t *testing.T) {
	e := valid(Bid)
	e.Outcome, e.Has = "timeout", HasLatencyMs
	if err := Validate(&e); err != nil {
		t.Fatal(err)
	}
}

func TestServerOnlyTypes(t *testing.T) {
	want := map[Type]bool{DropStarted: true, DropEnded: true, QuestDefined: true, DropScheduled: true}
	for _, typ := range Types() {
		if typ.ServerOnly() != want[typ] {
			t.Errorf("%s: ServerOnly = %v", typ, typ.ServerOnly())
		}
		if ParseType(typ.String()) != typ {
			t.Errorf("ParseType(%q) != %v", typ.String(), typ)
		}
	}
	if ParseType("Quest_Started") != TypeInvalid || ParseType("") != TypeInvalid {
		t.Error("ParseType must be exact")
	}
}

func TestKey(t *testing.T) {
	e := valid(DropStarted)
	if e.Key() != "d1" {
		t.Errorf("drop lifecycle key %q, want the drop id", e.Key())
	}
	e = valid(Conversion)
	if e.Key() != "u1" {
		t.Errorf("user event key %q, want the user id", e.Key())
	}
}
