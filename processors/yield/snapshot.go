package yield

import (
	"cmp"
	"math"
	"slices"

	"github.com/questline/questline/processors/histogram"
	"github.com/questline/questline/processors/window"
)

// State is the serializable state of a Processor (encoding/gob).
type State struct {
	Engine   window.EngineState[PaneState]
	Auctions map[string]AuctionState
	// Closed are the auctions whose windows have all closed, in grace
	// (Processor.closed), by hash ascending: since session 17 (a snapshot
	// of before restores without: its auctions close at the next Flush).
	Closed []ClosedState
}

// ClosedState is a closed auction: the hash of its id, its anchor.
type ClosedState struct {
	Hash   uint64
	Anchor int64
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
	User              string // '' in the all scope (no filter needs it)
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
func (p *Processor) Snapshot() *State { return p.Freeze().State() }

// Frozen is a Processor's state as of Freeze, which State converts into a
// snapshot's State on any goroutine while the processor goes on. Freeze
// does the least it can, since the source stage waits for it: the panes
// are exported (they are few), the auction records, which are
// pointer-free, are copied a chunk at a time, the overflow of the
// auctions that spilled into two shared slices, and the users' strings
// (the clean scope's) as a slice; the auctions' ids and the names are
// views, since those only grow (arena.Names.Frozen, intern.Table.Names).
// Building the State's map of auctions, the larger part of the work, is
// left to State.
type Frozen struct {
	engine window.EngineState[PaneState]
	t      auctionTable // chunks, ids and users: no index, the overflow made by State
	n      int          // auctions
	names  []string
	spills []spill // the overflow of the auctions that spilled, in slot order
	bids   []bid
	billed []int64
	closed []ClosedState // in no order
}

// spill is an auction's overflow as of Freeze: its bids and billed amounts
// are ranges of bids and billed, shared by all spills (two copies in all,
// not two per auction); -1 for a nil slice. Against a map of cloned
// overflows made at the freeze, the freeze of BenchmarkSnapshot's
// loadgen stream takes 0.042–0.053 s instead of 0.062–0.084 (4 pairs,
// session 11's read-through): the map is made by State, off the pause.
type spill struct {
	a               *auction // in Frozen.t
	bids, billed    [2]int32
	floor, clearing int64
}

// Freeze returns the processor's state as of now, sharing no memory the
// processor writes again.
func (p *Processor) Freeze() *Frozen {
	export := func(_ int64, pn *pane) *PaneState { return p.exportPane(pn) }
	f := &Frozen{engine: window.ConvertState(p.eng.Snapshot(), export), n: p.auctions.len(), names: p.names.Names()}
	t := &p.auctions
	f.t.chunks = make([]*[chunkAuctions]auction, len(t.chunks))
	for i, c := range t.chunks {
		cp := new([chunkAuctions]auction)
		*cp = *c
		f.t.chunks[i] = cp
	}
	f.t.ids = t.ids.Frozen()
	f.t.users = slices.Clone(t.users)
	f.closed = make([]ClosedState, 0, len(p.closed))
	for h, anchor := range p.closed {
		f.closed = append(f.closed, ClosedState{Hash: h, Anchor: anchor})
	}
	if len(t.more.m) > 0 {
		f.spills = make([]spill, 0, len(t.more.m))
		f.t.each(func(a *auction, s int32) {
			if m := t.more.of(t.at(s)); m != nil {
				sp := spill{a: a, floor: m.floor, clearing: m.clearing, bids: [2]int32{-1, -1}, billed: [2]int32{-1, -1}}
				if m.bids != nil { // nil and empty differ (the bids are inline)
					sp.bids = [2]int32{int32(len(f.bids)), int32(len(f.bids) + len(m.bids))}
					f.bids = append(f.bids, m.bids...)
				}
				if m.billed != nil {
					sp.billed = [2]int32{int32(len(f.billed)), int32(len(f.billed) + len(m.billed))}
					f.billed = append(f.billed, m.billed...)
				}
				f.spills = append(f.spills, sp)
			}
		})
	}
	return f
}

// State returns the frozen state as a snapshot holds it.
func (f *Frozen) State() *State {
	t := &f.t
	if len(f.spills) > 0 && t.more.m == nil {
		t.more.m = make(map[*auction]*auctionMore, len(f.spills))
		for _, sp := range f.spills {
			m := &auctionMore{floor: sp.floor, clearing: sp.clearing}
			if sp.bids[0] >= 0 {
				m.bids = f.bids[sp.bids[0]:sp.bids[1]:sp.bids[1]]
			}
			if sp.billed[0] >= 0 {
				m.billed = f.billed[sp.billed[0]:sp.billed[1]:sp.billed[1]]
			}
			t.more.m[sp.a] = m
		}
	}
	s := &State{Engine: f.engine, Auctions: make(map[string]AuctionState, f.n), Closed: f.closed}
	slices.SortFunc(s.Closed, func(a, b ClosedState) int { return cmp.Compare(a.Hash, b.Hash) })
	var buf [inlineBids]bid
	t.each(func(a *auction, slot int32) {
		floor, clearing := a.amounts(&t.more)
		as := AuctionState{User: t.user(slot), Anchor: a.anchor, HasReq: a.has(bReq), Placement: f.names[a.placement], Floor: floor,
			HasFloor: a.has(bFloor), Wins: int(a.wins), Winner: f.names[a.winner], Clearing: clearing,
			Shown: int(a.shown), Clicks: int(a.clicks)}
		var one [1]int64
		if b := a.billedList(&t.more, &one); len(b) > 0 {
			as.Billed = slices.Clone(b) // nil without billing, as before
		}
		for _, b := range a.bidList(&t.more, &buf) {
			as.Bidders = append(as.Bidders, f.names[b.bidder])
			as.Outcomes = append(as.Outcomes, b.outcome)
			as.Prices = append(as.Prices, b.price)
			as.Latencies = append(as.Latencies, b.latency)
		}
		s.Auctions[t.id(a)] = as // a view of bytes never written again
	})
	return s
}

// exportPane returns pn as a snapshot holds it: each key's whole latency
// histogram (what the rows of the key take from pn), as before latencies
// were recorded at the finest key only, so the encoding is unchanged.
func (p *Processor) exportPane(pn *pane) *PaneState {
	out := &PaneState{}
	at := map[key]int{}
	state := func(k key) *CellState {
		i, ok := at[k]
		if !ok {
			i = len(out.Yield)
			at[k] = i
			out.Yield = append(out.Yield, CellState{Placement: p.names.Name(k.placement), Bidder: p.names.Name(k.bidder)})
		}
		return &out.Yield[i]
	}
	lat := map[key]*histogram.Sparse{}
	hist := func(k key) *histogram.Sparse {
		h := lat[k]
		if h == nil {
			h = &histogram.Sparse{}
			lat[k] = h
		}
		return h
	}
	for i := range pn.cells {
		cl := &pn.cells[i]
		state(cl.k).Counts = cl.Counts
		hist(cl.k).Merge(&cl.lat)
		if len(cl.fine.Buckets) > 0 {
			for _, k := range latKeys(cl.k) {
				hist(k).Merge(&cl.fine)
			}
		}
	}
	for k, h := range lat {
		cs := state(k)
		for _, b := range h.Buckets {
			cs.Lat = append(cs.Lat, b.Value, b.Count)
		}
	}
	for pl := range pn.integ {
		g := &pn.integ[pl]
		if !g.seen {
			continue // a placement the pane never had (a retracted one is kept: see integ.seen)
		}
		out.Integ = append(out.Integ, IntegState{Placement: p.names.Name(uint32(pl)), Auctions: g.auctions, Clean: g.clean, Kinds: slices.Clone(g.kinds[:])})
	}
	return out
}

func (p *Processor) importPane(ps *PaneState) *pane {
	pn := &pane{}
	if ps == nil {
		return pn
	}
	for _, cs := range ps.Yield {
		c := p.cell(pn, key{p.names.ID(cs.Placement), p.names.ID(cs.Bidder)})
		c.Counts = cs.Counts
		for i := 0; i+1 < len(cs.Lat); i += 2 {
			c.lat.RecordN(cs.Lat[i], cs.Lat[i+1])
		}
	}
	for _, is := range ps.Integ {
		c := contribution{placement: p.names.ID(is.Placement)}
		p.applyInteg(pn, &c, 0) // sizes pn.integ
		g := &pn.integ[c.placement]
		g.auctions, g.clean = is.Auctions, is.Clean
		copy(g.kinds[:], is.Kinds)
	}
	return pn
}

// Restore replaces the processor's state with s.
func (p *Processor) Restore(s *State) {
	p.eng.Restore(window.ConvertState(s.Engine, func(_ int64, ps *PaneState) *pane { return p.importPane(ps) }))
	p.auctions = auctionTable{}
	p.last = nil
	p.expire = math.MinInt64 // the next Flush finds the earliest
	p.closed, p.closedQ, p.closedFirst = nil, nil, 0
	for _, c := range s.Closed {
		if p.closed == nil {
			p.closed = make(map[uint64]int64, len(s.Closed))
		}
		p.closed[c.Hash] = c.Anchor
	}
	// In the order of their expiry (the hash's for one expiry).
	closed := slices.Clone(s.Closed)
	slices.SortStableFunc(closed, func(a, b ClosedState) int { return cmp.Compare(p.expiryAt(a.Anchor), p.expiryAt(b.Anchor)) })
	for _, c := range closed {
		p.closedQ = append(p.closedQ, c.Hash)
	}
	for id, as := range s.Auctions {
		a, _ := p.auctions.add(id, hashID(id), as.User, p.filter != nil)
		a.anchor, a.placement = as.Anchor, p.names.ID(as.Placement)
		a.setAmounts(as.Floor, as.Clearing, &p.auctions.more)
		a.set(bReq, as.HasReq)
		a.set(bFloor, as.HasFloor)
		a.wins, a.winner = int32(as.Wins), p.names.ID(as.Winner)
		a.shown, a.clicks = int32(as.Shown), int32(as.Clicks)
		for _, amt := range as.Billed {
			a.addBilled(amt, &p.auctions.more)
		}
		for i := range as.Bidders {
			a.addBid(bid{bidder: p.names.ID(as.Bidders[i]), outcome: as.Outcomes[i], price: as.Prices[i], latency: as.Latencies[i]}, &p.auctions.more)
		}
	}
}
