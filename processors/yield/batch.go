package yield

import (
	"slices"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/internal/intern"
)

// Batch recomputes the rows from a complete set of events in arrival order:
// each auction's final state contributes once to every window holding its
// anchor. The reference the streaming processor is tested against. include
// reports whether a user's auction counts in the window starting at start
// (nil: all users). Versions are zero.
func Batch(cfg Config, scope string, events []event.Event, include func(user string, start int64) bool) ([]Row, []IntegrityRow) {
	auctions := map[string]*auction{}
	users := map[string]string{} // by auction id
	nm := intern.New()
	var more overflow
	var order []string
	for i := range events {
		e := &events[i]
		switch e.Type {
		case event.BidRequest, event.Bid, event.AuctionWon, event.OfferShown, event.OfferClicked, event.Billed:
		default:
			continue
		}
		a := auctions[e.AuctionID]
		if a == nil {
			a = &auction{anchor: e.EventTime}
			auctions[e.AuctionID] = a
			users[e.AuctionID] = e.UserID
			order = append(order, e.AuctionID)
		}
		a.apply(e, nm.ID, &more)
	}
	spec := cfg.Window
	slide, size := spec.Slide.Milliseconds(), spec.Size.Milliseconds()
	yrows := map[[3]any]*Row{}
	irows := map[[2]any]*integ{}
	var c contribution
	var buf [inlineBids]bid
	for _, id := range order {
		a := auctions[id]
		a.contribute(&c, &more)
		first, last := spec.Starts(a.anchor)
		for s := first; s <= last; s += slide {
			if include != nil && !include(users[id], s) {
				continue
			}
			for _, kc := range c.yield {
				for _, rk := range c.rowKeys(kc.k) {
					k := [3]any{s, rk.placement, rk.bidder}
					r := yrows[k]
					if r == nil {
						r = &Row{Start: s, End: s + size, Placement: nm.Name(rk.placement), BidderID: nm.Name(rk.bidder), Scope: scope}
						yrows[k] = r
					}
					r.Counts.add(&kc.c, 1)
				}
			}
			if a.has(bReq) {
				for _, b := range a.bidList(&more, &buf) {
					if b.latency < 0 {
						continue
					}
					for _, k := range [4]key{{a.placement, b.bidder}, {0, b.bidder}, {a.placement, 0}, {}} {
						r := yrows[[3]any{s, k.placement, k.bidder}]
						r.Hist.Record(b.latency)
					}
				}
			}
			for _, pl := range []uint32{a.placement, 0} {
				k := [2]any{s, pl}
				g := irows[k]
				if g == nil {
					g = &integ{}
					irows[k] = g
				}
				g.add(&c, 1)
				if a.placement == 0 {
					break
				}
			}
		}
	}
	var rows []Row
	for _, r := range yrows {
		rows = append(rows, *r)
	}
	slices.SortFunc(rows, compareRows)
	var out []IntegrityRow
	for k, g := range irows {
		s := k[0].(int64)
		for kind := range NumKinds {
			out = append(out, IntegrityRow{
				Start: s, End: s + size, Placement: nm.Name(k[1].(uint32)), Kind: kind.String(), Scope: scope,
				Violations: g.kinds[kind], Auctions: g.auctions, CleanAuctions: g.clean,
			})
		}
	}
	slices.SortFunc(out, compareIntegrity)
	return rows, out
}
