package loadgen

import (
	"math"
	"slices"
	"strconv"

	"github.com/questline/questline/event"
)

// Violation kinds of SPEC §5, in its order.
const (
	WinWithoutBid        = "win_without_bid"
	ClearingAboveBid     = "clearing_above_bid"
	ClearingBelowFloor   = "clearing_below_floor"
	DuplicateWin         = "duplicate_win"
	DuplicateBilling     = "duplicate_billing"
	BilledWithoutWin     = "billed_without_win"
	BillingMismatch      = "billing_mismatch"
	ImpressionWithoutWin = "impression_without_win"
	Orphan               = "orphan"
)

// ViolationKinds lists the kinds in SPEC order.
var ViolationKinds = []string{WinWithoutBid, ClearingAboveBid, ClearingBelowFloor, DuplicateWin,
	DuplicateBilling, BilledWithoutWin, BillingMismatch, ImpressionWithoutWin, Orphan}

// auction is one offer opportunity of a user: its events are server events
// (the exchange's log), all carrying the user's id, emitted at their times.
type auction struct {
	u   *user
	evs []event.Event
	i   int
}

func (a *auction) step(g *gen, t int64) (int64, bool) {
	if a.evs[0].TS < g.origin {
		return 0, false // started before the origin: wholly unsent, never half
	}
	g.touch(a.u, t, false)
	g.emitServer(a.evs[a.i])
	a.i++
	if a.i == len(a.evs) {
		return 0, false
	}
	return a.evs[a.i].TS, true
}

type bidResult struct {
	b       *bidder
	outcome string
	price   int64
	latency int64
}

// newAuction builds the events of an auction for u at t, with at most one
// injected violation, chosen so that it trips exactly one kind (see
// docs/loadgen.md, "Integrity violations").
func (g *gen) newAuction(u *user, placement string, d *drop, t int64) *auction {
	g.nAuctions++
	id := "a." + g.tag + "." + strconv.FormatUint(g.nAuctions, 36)
	kind := ""
	if r := g.rng.Float64(); r < g.cfg.ViolationRate*float64(len(ViolationKinds)) {
		kind = ViolationKinds[int(r/g.cfg.ViolationRate)]
	}
	a := &auction{u: u}
	ev := func(typ event.Type, at int64) *event.Event {
		e := g.newEvent(typ, at, u)
		e.AuctionID = id
		a.evs = append(a.evs, e)
		return &a.evs[len(a.evs)-1]
	}
	// Bids from 3–5 of the bidders.
	perm := g.rng.Perm(len(g.bidders))[:min(len(g.bidders), 3+g.rng.IntN(3))]
	bids := make([]bidResult, len(perm))
	for i, k := range perm {
		b := g.bidders[k]
		r := bidResult{b: b, latency: max(1, int64(g.logNormal(b.latMedian, b.latSigma)))}
		switch {
		case g.rng.Float64() < b.errProb:
			r.outcome = "error"
		case r.latency > bidTimeoutMs:
			r.outcome = "timeout"
		case g.rng.Float64() < b.bidProb:
			r.outcome = "bid"
			r.price = int64(math.Round(g.logNormal(b.priceMedian, b.priceSigma)/1000)) * 1000
		default:
			r.outcome = "no_bid"
		}
		bids[i] = r
	}
	if kind == Orphan {
		// Late bid answers for an auction the exchange has no request of.
		g.planted.addViolation(id, kind)
		for _, r := range bids[:2] {
			e := ev(event.Bid, t)
			e.BidderID, e.Outcome, e.Currency = r.b.id, "no_bid", "USD"
			e.LatencyMs, e.Has = r.latency, event.HasLatencyMs
		}
		return a
	}
	var floor int64
	if kind == ClearingBelowFloor || g.rng.Float64() < 0.7 {
		floor = int64(math.Round(g.logNormal(0.6e6, 0.4)/10000))*10000 + 20000
	}
	switch kind {
	case WinWithoutBid, BilledWithoutWin, ImpressionWithoutWin:
		for i := range bids {
			if bids[i].outcome == "bid" {
				bids[i].outcome, bids[i].price = "no_bid", 0
			}
		}
	case ClearingAboveBid, ClearingBelowFloor, DuplicateWin, DuplicateBilling, BillingMismatch:
		if best(bids, floor) < 0 {
			bids[0].outcome = "bid"
			bids[0].latency = min(bids[0].latency, bidTimeoutMs)
			bids[0].price = floor + 100000 + int64(g.rng.IntN(100))*10000
		}
	}
	req := ev(event.BidRequest, t)
	req.Placement = placement
	if d != nil {
		req.DropID, req.CreatorID = d.id, d.creator
	}
	if floor > 0 {
		req.FloorMicros, req.Has = floor, event.HasFloorMicros
	}
	for _, r := range bids {
		e := ev(event.Bid, t)
		e.BidderID, e.Outcome, e.Currency = r.b.id, r.outcome, "USD"
		e.LatencyMs, e.Has = r.latency, event.HasLatencyMs
		if r.outcome == "bid" {
			e.PriceMicros, e.Has = r.price, e.Has|event.HasPriceMicros
		}
	}
	offer := "of." + placement
	winner, clearing := best(bids, floor), int64(0)
	if kind == WinWithoutBid {
		winner = 0 // answered, but not with a bid
		clearing = max(floor, 300000)
	} else if winner >= 0 {
		clearing = secondPrice(bids, winner, floor)
	}
	if winner >= 0 {
		w := bids[winner]
		offer = "of." + w.b.id + "." + strconv.Itoa(g.rng.IntN(20))
		switch kind {
		case ClearingAboveBid:
			clearing = w.price + 10000*(1+int64(g.rng.IntN(50)))
		case ClearingBelowFloor:
			clearing = floor / 2
		}
		won := func() {
			e := ev(event.AuctionWon, t+sec)
			e.BidderID, e.Currency = w.b.id, "USD"
			e.ClearingMicros, e.Has = clearing, event.HasClearingMicros
		}
		won()
		if kind == DuplicateWin {
			won()
		}
		if kind == DuplicateBilling || kind == BillingMismatch || g.rng.Float64() < 0.92 {
			e := ev(event.OfferShown, t+sec)
			e.OfferID, e.Placement = offer, placement
			amount := clearing
			if kind == BillingMismatch {
				amount += 10000 * (1 + int64(g.rng.IntN(50)))
			}
			billed := func(at int64) {
				e := ev(event.Billed, at)
				e.Currency, e.AmountMicros, e.Has = "USD", amount, event.HasAmountMicros
			}
			billed(t + 2*sec)
			if kind == DuplicateBilling {
				billed(t + 3*sec)
			}
			if g.rng.Float64() < 0.05 {
				e := ev(event.OfferClicked, t+g.between(2, 10))
				e.OfferID = offer
			}
		}
	}
	switch kind {
	case BilledWithoutWin:
		e := ev(event.Billed, t+2*sec)
		e.Currency, e.AmountMicros, e.Has = "USD", 500000, event.HasAmountMicros
	case ImpressionWithoutWin:
		e := ev(event.OfferShown, t+sec)
		e.OfferID, e.Placement = offer, placement
	}
	if kind != "" {
		g.planted.addViolation(id, kind)
	}
	slices.SortStableFunc(a.evs, func(x, y event.Event) int { return int(x.TS - y.TS) })
	return a
}

// best returns the index of the highest bid at or above floor, or -1.
func best(bids []bidResult, floor int64) int {
	w := -1
	for i, r := range bids {
		if r.outcome == "bid" && r.price >= floor && (w < 0 || r.price > bids[w].price) {
			w = i
		}
	}
	return w
}

// secondPrice is the clearing price of a second-price auction with a
// floor: the best other eligible bid, else the floor, else 80 % of the
// winning bid; never above the winning bid.
func secondPrice(bids []bidResult, winner int, floor int64) int64 {
	c := int64(-1)
	for i, r := range bids {
		if i != winner && r.outcome == "bid" && r.price >= floor && r.price > c {
			c = r.price
		}
	}
	if c < 0 {
		c = floor
		if c == 0 {
			c = bids[winner].price * 8 / 10
		}
	}
	return min(c, bids[winner].price)
}
