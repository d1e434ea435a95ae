package yield

import "github.com/questline/questline/processors/window"

// State is the serializable state of a Processor (encoding/gob).
type State struct {
	Engine   window.EngineState[PaneState]
	Auctions map[string]AuctionState
}

// PaneState is a pane's aggregates.
type PaneState struct {
	Yield []CellState
	Integ []IntegState
}

// CellState is one offer_yield key of a pane.
type CellState struct {
	Placement, Bidder string
	Counts            Counts
	Lat               []int64 // histogram buckets: value, count, value, count…
}

// IntegState is one placement of a pane's integrity aggregate.
type IntegState struct {
	Placement       string
	Auctions, Clean int64
	Kinds           []int64
}

// AuctionState is an auction's state.
type AuctionState struct {
	User              string
	Anchor            int64
	HasReq            bool
	Placement         string
	Floor             int64
	HasFloor          bool
	Bidders           []string
	Outcomes          []uint8
	Prices, Latencies []int64
	Wins              int
	Winner            string
	Clearing          int64
	Shown, Clicks     int
	Billed            []int64
}

// Snapshot returns the processor's state as a copy.
func (p *Processor) Snapshot() *State {
	es := p.eng.Snapshot()
	s := &State{Engine: window.EngineState[PaneState]{WM: es.WM, Next: es.Next, EmitWM: es.EmitWM}, Auctions: map[string]AuctionState{}}
	for _, ps := range es.Panes {
		out := window.PaneState[PaneState]{Start: ps.Start, Version: ps.Version, Dirty: ps.Dirty, Agg: exportPane(ps.Agg)}
		for _, pt := range ps.Parts {
			out.Parts = append(out.Parts, window.PartState[PaneState]{Lo: pt.Lo, Hi: pt.Hi, Agg: exportPane(pt.Agg)})
		}
		s.Engine.Panes = append(s.Engine.Panes, out)
	}
	for id, a := range p.auctions {
		as := AuctionState{User: a.user, Anchor: a.anchor, HasReq: a.hasReq, Placement: a.placement, Floor: a.floor,
			HasFloor: a.hasFloor, Wins: a.wins, Winner: a.winner, Clearing: a.clearing, Shown: a.shown, Clicks: a.clicks, Billed: a.billed}
		for _, b := range a.bids {
			as.Bidders = append(as.Bidders, b.bidder)
			as.Outcomes = append(as.Outcomes, b.outcome)
			as.Prices = append(as.Prices, b.price)
			as.Latencies = append(as.Latencies, b.latency)
		}
		s.Auctions[id] = as
	}
	return s
}

func exportPane(pn *pane) *PaneState {
	out := &PaneState{}
	for k, c := range pn.yield {
		cs := CellState{Placement: k.placement, Bidder: k.bidder, Counts: c.Counts}
		for _, b := range c.lat.Buckets {
			cs.Lat = append(cs.Lat, b.Value, b.Count)
		}
		out.Yield = append(out.Yield, cs)
	}
	for pl, g := range pn.integ {
		out.Integ = append(out.Integ, IntegState{Placement: pl, Auctions: g.auctions, Clean: g.clean, Kinds: g.kinds[:]})
	}
	return out
}

func (p *Processor) importPane(ps *PaneState) *pane {
	pn := &pane{yield: make(map[key]*cell), integ: make(map[string]*integ)}
	if ps == nil {
		return pn
	}
	for _, cs := range ps.Yield {
		c := &cell{Counts: cs.Counts}
		for i := 0; i+1 < len(cs.Lat); i += 2 {
			c.lat.RecordN(cs.Lat[i], cs.Lat[i+1])
		}
		pn.yield[key{p.intern(cs.Placement), p.intern(cs.Bidder)}] = c
	}
	for _, is := range ps.Integ {
		g := &integ{auctions: is.Auctions, clean: is.Clean}
		copy(g.kinds[:], is.Kinds)
		pn.integ[p.intern(is.Placement)] = g
	}
	return pn
}

// Restore replaces the processor's state with s.
func (p *Processor) Restore(s *State) {
	es := window.EngineState[pane]{WM: s.Engine.WM, Next: s.Engine.Next, EmitWM: s.Engine.EmitWM}
	for _, ps := range s.Engine.Panes {
		in := window.PaneState[pane]{Start: ps.Start, Version: ps.Version, Dirty: ps.Dirty, Agg: p.importPane(ps.Agg)}
		for _, pt := range ps.Parts {
			in.Parts = append(in.Parts, window.PartState[pane]{Lo: pt.Lo, Hi: pt.Hi, Agg: p.importPane(pt.Agg)})
		}
		es.Panes = append(es.Panes, in)
	}
	p.eng.Restore(es)
	p.auctions = make(map[string]*auction, len(s.Auctions))
	for id, as := range s.Auctions {
		a := &auction{user: as.User, anchor: as.Anchor, hasReq: as.HasReq, placement: p.intern(as.Placement), floor: as.Floor,
			hasFloor: as.HasFloor, wins: as.Wins, winner: p.intern(as.Winner), clearing: as.Clearing, shown: as.Shown, clicks: as.Clicks, billed: as.Billed}
		for i := range as.Bidders {
			a.bids = append(a.bids, bid{bidder: p.intern(as.Bidders[i]), outcome: as.Outcomes[i], price: as.Prices[i], latency: as.Latencies[i]})
		}
		p.auctions[id] = a
	}
}
