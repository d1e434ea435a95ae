package loadgen

import (
	"slices"

	"github.com/questline/questline/event"
)

// auctionAgg is one auction's events, gathered for the yield truth.
type auctionAgg struct {
	id        string
	user      string // of its first event
	hasReq    bool
	t         int64 // bid_request time, else first event
	placement string
	floor     int64
	hasFloor  bool
	bids      []rec
	wins      []rec
	shown     int
	clicks    int
	billed    []int64
}

// violations returns the kinds the auction trips, by the rules of
// docs/loadgen.md ("Integrity violations").
func (a *auctionAgg) violations() []string {
	if !a.hasReq {
		return []string{Orphan}
	}
	var v []string
	priced := map[string]int64{} // bidder → price of its bid (outcome bid)
	for _, b := range a.bids {
		if b.outcome == "bid" {
			priced[b.bidder] = b.price
		}
	}
	if len(a.wins) > 0 {
		w := a.wins[0]
		price, ok := priced[w.bidder]
		if !ok {
			v = append(v, WinWithoutBid)
		} else if w.clearing > price {
			v = append(v, ClearingAboveBid)
		}
		if a.hasFloor && w.clearing < a.floor {
			v = append(v, ClearingBelowFloor)
		}
		if len(a.wins) > 1 {
			v = append(v, DuplicateWin)
		}
	}
	if len(a.billed) > 1 {
		v = append(v, DuplicateBilling)
	}
	if len(a.billed) > 0 && len(a.wins) == 0 {
		v = append(v, BilledWithoutWin)
	}
	if len(a.wins) > 0 {
		for _, amt := range a.billed {
			if amt != a.wins[0].clearing {
				v = append(v, BillingMismatch)
				break
			}
		}
	}
	if a.shown > 0 && len(a.wins) == 0 {
		v = append(v, ImpressionWithoutWin)
	}
	return v
}

// offerYield computes offer_yield's and bidstream_integrity's rows, the
// revenue and the violations by kind; include, if not nil, reports whether
// an auction of the user counts in the window starting at s.
func offerYield(recs []rec, w Windows, include func(user string, s int64) bool) ([]YieldRow, []IntegrityRow, int64, map[string]int) {
	size, slide := ms(w.YieldSize), ms(w.YieldSlide)
	aucs := map[string]*auctionAgg{}
	var order []*auctionAgg
	for _, r := range recs {
		if r.auction == "" {
			continue
		}
		a := aucs[r.auction]
		if a == nil {
			a = &auctionAgg{id: r.auction, t: r.t, user: r.user}
			aucs[r.auction] = a
			order = append(order, a)
		}
		switch r.typ {
		case event.BidRequest:
			a.hasReq, a.t, a.placement = true, r.t, r.placement
			a.floor, a.hasFloor = r.floor, r.has&event.HasFloorMicros != 0
		case event.Bid:
			a.bids = append(a.bids, r)
		case event.AuctionWon:
			a.wins = append(a.wins, r)
		case event.OfferShown:
			a.shown++
		case event.OfferClicked:
			a.clicks++
		case event.Billed:
			a.billed = append(a.billed, r.amount)
		}
	}
	rows := map[wkey]*YieldRow{}
	lats := map[wkey][]int64{}
	integ := map[wkey]map[string]int{}
	byKind := map[string]int{}
	for _, k := range ViolationKinds {
		byKind[k] = 0
	}
	var revenue int64
	row := func(s int64, placement, bidder string) *YieldRow {
		k := wkey{start: s, a: placement, b: bidder}
		r := rows[k]
		if r == nil {
			r = &YieldRow{WindowStart: Millis(s), WindowEnd: Millis(s + size), Placement: placement, BidderID: bidder}
			rows[k] = r
		}
		return r
	}
	for _, a := range order {
		var rev int64
		for _, x := range a.billed {
			rev += x
		}
		revenue += rev
		viol := a.violations()
		for _, k := range viol {
			byKind[k]++
		}
		first, last := windowStarts(a.t, size, slide)
		for s := first; s <= last; s += slide {
			if include != nil && !include(a.user, s) {
				continue
			}
			for i, pl := range [2]string{"", a.placement} {
				if i == 1 && (!a.hasReq || pl == "") {
					continue // orphans are under "" only
				}
				ik := wkey{start: s, a: pl}
				for _, k := range viol {
					if integ[ik] == nil {
						integ[ik] = map[string]int{}
					}
					integ[ik][k]++
				}
				if !a.hasReq {
					continue
				}
				r := row(s, pl, "")
				r.Auctions++
				if len(viol) > 0 {
					r.ViolatingAuctions++
				}
				for _, b := range a.bids {
					countBid(r, b)
					lats[wkey{start: s, a: pl}] = append(lats[wkey{start: s, a: pl}], b.lat)
				}
				if len(a.wins) > 0 {
					r.Wins++
				}
				r.Impressions += a.shown
				r.Clicks += a.clicks
				r.RevenueMicros += rev
			}
			if !a.hasReq {
				continue
			}
			// Bidder rows, for all placements and for the auction's.
			for _, pl := range [2]string{"", a.placement} {
				asked := map[string]bool{}
				for _, b := range a.bids {
					r := row(s, pl, b.bidder)
					if !asked[b.bidder] {
						asked[b.bidder] = true
						r.Auctions++
					}
					countBid(r, b)
					k := wkey{start: s, a: pl, b: b.bidder}
					lats[k] = append(lats[k], b.lat)
				}
				if len(a.wins) > 0 {
					r := row(s, pl, a.wins[0].bidder)
					if !asked[a.wins[0].bidder] {
						asked[a.wins[0].bidder] = true
						r.Auctions++
					}
					r.Wins++
					r.Impressions += a.shown
					r.Clicks += a.clicks
					r.RevenueMicros += rev
				}
			}
		}
	}
	out := make([]YieldRow, 0, len(rows))
	for _, k := range sortedKeys(rows) {
		r := rows[k]
		if v := lats[wkey{start: k.start, a: k.a, b: k.b}]; len(v) > 0 {
			slices.Sort(v)
			r.BidLatencyP50Ms, r.BidLatencyP99Ms = nearestRank(v, 0.5), nearestRank(v, 0.99)
		}
		out = append(out, *r)
	}
	var irows []IntegrityRow
	for _, k := range sortedKeys(integ) {
		kinds := integ[k]
		for _, kind := range ViolationKinds {
			if n := kinds[kind]; n > 0 {
				irows = append(irows, IntegrityRow{WindowStart: Millis(k.start), WindowEnd: Millis(k.start + size),
					Placement: k.a, Kind: kind, Violations: n})
			}
		}
	}
	return out, irows, revenue, byKind
}

func countBid(r *YieldRow, b rec) {
	switch b.outcome {
	case "bid":
		r.Bids++
	case "no_bid":
		r.NoBids++
	case "timeout":
		r.Timeouts++
	}
}
