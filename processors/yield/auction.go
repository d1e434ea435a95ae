package yield

import (
	"math"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/internal/arena"
)

// Kind is a bidstream integrity violation kind (SPEC §5).
type Kind uint8

// The violation kinds, each counted at most once per auction.
const (
	WinWithoutBid        Kind = iota // auction_won by a bidder without a bid
	ClearingAboveBid                 // clearing price above the winner's bid
	ClearingBelowFloor               // clearing price below the floor
	DuplicateWin                     // more than one auction_won
	DuplicateBilling                 // more than one billed
	BilledWithoutWin                 // billed, no auction_won
	BillingMismatch                  // a billed amount differs from the clearing price
	ImpressionWithoutWin             // offer_shown, no auction_won
	Orphan                           // events of an auction without bid_request
	NumKinds
)

var kindNames = [NumKinds]string{
	"win_without_bid", "clearing_above_bid", "clearing_below_floor", "duplicate_win",
	"duplicate_billing", "billed_without_win", "billing_mismatch", "impression_without_win", "orphan",
}

// String returns the kind's column value, e.g. "duplicate_win".
func (k Kind) String() string { return kindNames[k] }

const (
	outBid uint8 = iota + 1
	outNoBid
	outTimeout
	outError
)

// bid is one bid of an auction, as its events said it.
type bid struct {
	price   int64
	latency int64  // -1 when absent
	bidder  uint32 // in names
	outcome uint8
}

// auction is the state of one auction: everything its events said, in
// arrival order. Its contribution to the windows is a pure function of it.
// Placements and bidders are numbers in the processor's names (0 is the empty string):
// auctions are most of the processor's state. An auction is held by value
// in an auctionTable, in 80 bytes (its slot there is not kept: the
// callers have it from the table): its first inlineBids bids (as parallel
// arrays, each bid's price in 32 bits, its outcome and latency in one
// word, its bidder in 16 bits), its billed amount, and its floor and
// clearing price, in 32 bits each, are inline; an auction with more bids,
// a bid that does not fit (a price, a latency or a bidder number too
// large), a second billed amount or one outside 32 bits keeps them in an
// overflow (spilled) instead, and one whose floor or clearing price does
// not fit in 32 bits keeps both there (bWide).
type auction struct {
	id        arena.Ref          // in the table's ids
	anchor    int64              // bid_request event time, else the first event's
	billed0   int32              // the billed amount, when bits has bBilled
	prices0   [inlineBids]int32  // prices of the inline bids: see packLat
	lats0     [inlineBids]uint32 // outcome and latency: see packLat
	placement uint32             // of the bid_request, else of the first offer_shown
	winner    uint32             // of the first auction_won
	floor     int32              // unless bWide: see amounts
	clearing  int32              // of the first auction_won, unless bWide
	wins      int32
	shown     int32
	clicks    int32
	bidders0  [inlineBids]uint16 // bidder numbers of the inline bids
	nbids     uint8              // inline, when the overflow holds no bids
	bits      uint8              // bReq, bFloor, bLive, bSpilled, bBilled, bWide
}

// The bits of an auction.
const (
	bReq     uint8 = 1 << iota // has a bid_request
	bFloor                     // the bid_request has a floor
	bLive                      // in use in the table
	bSpilled                   // has an entry in its overflow
	bBilled                    // billed0 holds a billed amount (the overflow none)
	bWide                      // the floor and clearing price are in the overflow
)

// has reports whether a has bit b.
func (a *auction) has(b uint8) bool { return a.bits&b != 0 }

// set sets or clears bit b of a.
func (a *auction) set(b uint8, on bool) {
	if on {
		a.bits |= b
	} else {
		a.bits &^= b
	}
}

// nbilled returns the number of billed amounts inline (0 or 1).
func (a *auction) nbilled() int { return int(a.bits&bBilled) / int(bBilled) }

// inlineBids is the number of bids an auction holds inline (auctions
// usually ask a few bidders).
const inlineBids = 3

// An inline bid's word: the outcome in the top latOutcomeBits bits, the
// latency + 1 (0: absent) below.
const (
	latOutcomeBits = 3
	latMax         = 1<<(32-latOutcomeBits) - 2 // the largest latency a word holds
)

// packLat returns b's outcome and latency as an inline word, and whether
// b fits inline (its bidder number and price too: a price in micros
// within int32, up to 2,147 currency units, which bid prices are).
func packLat(b bid) (uint32, bool) {
	if b.latency < -1 || b.latency > latMax || b.outcome >= 1<<latOutcomeBits || b.bidder > math.MaxUint16 ||
		b.price < math.MinInt32 || b.price > math.MaxInt32 {
		return 0, false
	}
	return uint32(b.outcome)<<(32-latOutcomeBits) | uint32(b.latency+1), true
}

// inlineBid returns the i-th inline bid of a.
func (a *auction) inlineBid(i int) bid {
	w := a.lats0[i]
	return bid{
		price:   int64(a.prices0[i]),
		latency: int64(w&(1<<(32-latOutcomeBits)-1)) - 1,
		bidder:  uint32(a.bidders0[i]),
		outcome: uint8(w >> (32 - latOutcomeBits)),
	}
}

// auctionMore holds the bids and billed amounts of an auction that has
// more than fit inline: all of them, in arrival order, once they overflow;
// and its floor and clearing price once either does not fit inline.
type auctionMore struct {
	bids            []bid
	billed          []int64
	floor, clearing int64 // when the auction has bWide
}

// amounts returns a's floor and clearing price; o holds a's overflow.
func (a *auction) amounts(o *overflow) (floor, clearing int64) {
	if a.has(bWide) {
		m := o.of(a)
		return m.floor, m.clearing
	}
	return int64(a.floor), int64(a.clearing)
}

// setAmounts sets a's floor and clearing price: inline while both fit in
// 32 bits, else both in a's overflow from then on.
func (a *auction) setAmounts(floor, clearing int64, o *overflow) {
	if !a.has(bWide) && floor == int64(int32(floor)) && clearing == int64(int32(clearing)) {
		a.floor, a.clearing = int32(floor), int32(clearing)
		return
	}
	m := o.make(a)
	m.floor, m.clearing = floor, clearing
	a.floor, a.clearing = 0, 0
	a.set(bWide, true)
}

// overflow holds the auctionMore of each spilled auction (few: the rest
// have no entry), by the auction's address, which stays valid while the
// auction lives (auctionTable's chunks never move).
type overflow struct{ m map[*auction]*auctionMore }

// of returns the overflow of a (nil: none).
func (o *overflow) of(a *auction) *auctionMore {
	if !a.has(bSpilled) {
		return nil
	}
	return o.m[a]
}

// make returns the overflow of a, adding an empty one.
func (o *overflow) make(a *auction) *auctionMore {
	if m := o.of(a); m != nil {
		return m
	}
	if o.m == nil {
		o.m = map[*auction]*auctionMore{}
	}
	m := &auctionMore{}
	o.m[a] = m
	a.set(bSpilled, true)
	return m
}

// drop forgets the overflow of a (its bids, billed amounts, floor and
// clearing price: a is being removed).
func (o *overflow) drop(a *auction) {
	if a.has(bSpilled) {
		delete(o.m, a)
		a.set(bSpilled|bWide, false)
	}
}

// bidList returns a's bids in arrival order: a view of its overflow, or
// the inline bids copied into buf.
func (a *auction) bidList(o *overflow, buf *[inlineBids]bid) []bid {
	if m := o.of(a); m != nil && m.bids != nil {
		return m.bids
	}
	for i := range int(a.nbids) {
		buf[i] = a.inlineBid(i)
	}
	return buf[:a.nbids]
}

// billedList returns a's billed amounts in arrival order: a view of its
// overflow, or the inline amount copied into buf.
func (a *auction) billedList(o *overflow, buf *[1]int64) []int64 {
	if m := o.of(a); m != nil && m.billed != nil {
		return m.billed
	}
	buf[0] = int64(a.billed0)
	return buf[:a.nbilled()]
}

// addBid appends b to a's bids: inline while they fit, else all of them
// in a's overflow.
func (a *auction) addBid(b bid, o *overflow) {
	m := o.of(a)
	if (m == nil || m.bids == nil) && int(a.nbids) < inlineBids {
		if w, ok := packLat(b); ok {
			i := a.nbids
			a.prices0[i], a.bidders0[i], a.lats0[i] = int32(b.price), uint16(b.bidder), w
			a.nbids++
			return
		}
	}
	if m == nil {
		m = o.make(a)
	}
	if m.bids == nil {
		m.bids = make([]bid, a.nbids, 2*inlineBids)
		for i := range m.bids {
			m.bids[i] = a.inlineBid(i)
		}
		a.prices0, a.bidders0, a.lats0, a.nbids = [inlineBids]int32{}, [inlineBids]uint16{}, [inlineBids]uint32{}, 0
	}
	m.bids = append(m.bids, b)
}

// addBilled appends amt to a's billed amounts: inline for the first if it
// fits in 32 bits (micros: up to 2,147 currency units), else all of them
// in a's overflow from then on.
func (a *auction) addBilled(amt int64, o *overflow) {
	m := o.of(a)
	if (m == nil || m.billed == nil) && !a.has(bBilled) && amt == int64(int32(amt)) {
		a.billed0 = int32(amt)
		a.set(bBilled, true)
		return
	}
	if m == nil {
		m = o.make(a)
	}
	if m.billed == nil {
		m.billed = make([]int64, a.nbilled(), 2)
		if a.has(bBilled) {
			m.billed[0] = int64(a.billed0)
		}
		a.billed0 = 0
		a.set(bBilled, false)
	}
	m.billed = append(m.billed, amt)
}

// apply folds e (an event of this auction) in; intern numbers strings, o
// holds a's overflow.
func (a *auction) apply(e *event.Event, intern func(string) uint32, o *overflow) {
	switch e.Type {
	case event.BidRequest:
		if a.has(bReq) {
			return // a repeated bid_request changes nothing
		}
		a.set(bReq, true)
		a.anchor = e.EventTime
		a.placement = intern(e.Placement)
		_, clearing := a.amounts(o)
		a.setAmounts(e.FloorMicros, clearing, o)
		a.set(bFloor, e.Has&event.HasFloorMicros != 0)
	case event.Bid:
		b := bid{bidder: intern(e.BidderID), price: e.PriceMicros, latency: -1}
		switch e.Outcome {
		case "bid":
			b.outcome = outBid
		case "no_bid":
			b.outcome = outNoBid
		case "timeout":
			b.outcome = outTimeout
		default:
			b.outcome = outError
		}
		if e.Has&event.HasLatencyMs != 0 {
			b.latency = max(e.LatencyMs, 0)
		}
		a.addBid(b, o)
	case event.AuctionWon:
		if a.wins == 0 {
			a.winner = intern(e.BidderID)
			floor, _ := a.amounts(o)
			a.setAmounts(floor, e.ClearingMicros, o)
		}
		a.wins++
	case event.OfferShown:
		if !a.has(bReq) && a.shown == 0 {
			a.placement = intern(e.Placement)
		}
		a.shown++
	case event.OfferClicked:
		a.clicks++
	case event.Billed:
		a.addBilled(e.AmountMicros, o)
	}
}

// violations returns the auction's violation kinds as a bit set, given
// its bids, billed amounts, floor and clearing price.
func (a *auction) violations(bids []bid, billed []int64, floor, clearing int64) uint16 {
	if !a.has(bReq) {
		return 1 << Orphan
	}
	var v uint16
	set := func(k Kind) { v |= 1 << k }
	if a.wins > 0 {
		var best int64 = -1
		for _, b := range bids {
			if b.bidder == a.winner && b.outcome == outBid {
				best = max(best, b.price)
			}
		}
		switch {
		case best < 0:
			set(WinWithoutBid)
		case clearing > best:
			set(ClearingAboveBid)
		}
		if a.has(bFloor) && clearing < floor {
			set(ClearingBelowFloor)
		}
		if a.wins > 1 {
			set(DuplicateWin)
		}
		for _, amt := range billed {
			if amt != clearing {
				set(BillingMismatch)
			}
		}
	} else {
		if len(billed) > 0 {
			set(BilledWithoutWin)
		}
		if a.shown > 0 {
			set(ImpressionWithoutWin)
		}
	}
	if len(billed) > 1 {
		set(DuplicateBilling)
	}
	return v
}

// Counts are the additive measures of an offer_yield row.
type Counts struct {
	Auctions, Bids, NoBids, Timeouts, Wins, Impressions, Clicks int64
	RevenueMicros                                               int64
}

func (c *Counts) add(o *Counts, sign int64) {
	c.Auctions += sign * o.Auctions
	c.Bids += sign * o.Bids
	c.NoBids += sign * o.NoBids
	c.Timeouts += sign * o.Timeouts
	c.Wins += sign * o.Wins
	c.Impressions += sign * o.Impressions
	c.Clicks += sign * o.Clicks
	c.RevenueMicros += sign * o.RevenueMicros
}

func (c *Counts) zero() bool { return *c == Counts{} }

// key is an offer_yield key: placement and bidder numbers in names.
type key struct{ placement, bidder uint32 }

type keyed struct {
	k key
	c Counts
}

// contribution is what an auction adds to the panes of its anchor. Each
// entry of yield, keyed by bidder (placement 0: one per bidder, then one
// for every bidder, key {0, 0}), counts in two rows: its own key and the
// same key at the auction's placement (rowKeys).
type contribution struct {
	anchor    int64
	placement uint32
	auction   bool   // counts in auctions (has a bid_request)
	kinds     uint16 // violations
	yield     []keyed
	bids      [inlineBids]bid // scratch for the auction's inline bids
	billed    [1]int64        // and for its inline billed amount
}

// contribute computes a's contribution into c, reusing c's memory; o
// holds a's overflow.
func (a *auction) contribute(c *contribution, o *overflow) {
	bids, billed := a.bidList(o, &c.bids), a.billedList(o, &c.billed)
	floor, clearing := a.amounts(o)
	c.anchor, c.placement, c.auction, c.kinds = a.anchor, a.placement, a.has(bReq), a.violations(bids, billed, floor, clearing)
	c.yield = c.yield[:0]
	if !a.has(bReq) {
		return // orphans are in bidstream_integrity only
	}
	var revenue int64
	for _, amt := range billed {
		revenue += amt
	}
	var all Counts
	all.Auctions = 1
	if a.wins > 0 {
		all.Wins = 1
	}
	all.Impressions, all.Clicks, all.RevenueMicros = int64(a.shown), int64(a.clicks), revenue
	// Per bidder: the bidders that answered, plus a winner that did not.
	start := len(c.yield)
	for _, b := range bids {
		i := start
		for i < len(c.yield) && c.yield[i].k.bidder != b.bidder {
			i++
		}
		if i == len(c.yield) {
			c.yield = append(c.yield, keyed{k: key{bidder: b.bidder}, c: Counts{Auctions: 1}})
		}
		switch b.outcome {
		case outBid:
			c.yield[i].c.Bids++
			all.Bids++
		case outNoBid:
			c.yield[i].c.NoBids++
			all.NoBids++
		case outTimeout:
			c.yield[i].c.Timeouts++
			all.Timeouts++
		}
	}
	if a.wins > 0 {
		i := start
		for i < len(c.yield) && c.yield[i].k.bidder != a.winner {
			i++
		}
		if i == len(c.yield) {
			c.yield = append(c.yield, keyed{k: key{bidder: a.winner}, c: Counts{Auctions: 1}})
		}
		w := &c.yield[i].c
		w.Wins, w.Impressions, w.Clicks, w.RevenueMicros = 1, int64(a.shown), int64(a.clicks), revenue
	}
	c.yield = append(c.yield, keyed{c: all})
}

// rowKeys returns the two rows an entry of key k counts in: k (the bidder
// over every placement, or everything) and k at the placement. (With the
// empty placement both are k, which then counts twice.)
func (c *contribution) rowKeys(k key) [2]key {
	return [2]key{k, {c.placement, k.bidder}}
}
