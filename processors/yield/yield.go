// Package yield computes offer yield and bidstream integrity (SPEC §5) per
// window by bid_request time: per placement and per bidder_id (” for all),
// auctions, bids, no_bids, timeouts, wins, impressions, clicks, revenue
// (sum of billed), the ratios and bid latency percentiles; and per
// placement the integrity violations of each kind with integrity_ratio.
//
// All events of one auction carry the same user, so an auction lives in one
// partition. Its state holds everything its events said; its contribution
// to the windows of its anchor (the bid_request time) is recomputed on each
// of its events and applied as a difference, so the final rows do not depend
// on the order in which an auction's events arrive. An auction without a
// bid_request is anchored at its first event and counted only as an orphan
// in bidstream_integrity (placement from its offer_shown, else ”); if its
// bid_request arrives later, the orphan is retracted while its windows are
// open.
package yield

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/histogram"
	"github.com/questline/questline/processors/window"
)

// Config configures the processor.
type Config struct {
	// Window is the window shape. Default: size 5 min, slide 1 min,
	// allowed lateness 10 min.
	Window window.Spec
	// Grace is how long an auction's state outlives its last window, so
	// that a very late event of it is counted late instead of as an
	// orphan. Default 30 min.
	Grace time.Duration
}

// DefaultConfig returns the SPEC §5 defaults.
func DefaultConfig() Config {
	return Config{
		Window: window.Spec{Size: 5 * time.Minute, Slide: time.Minute, Lateness: 10 * time.Minute},
		Grace:  30 * time.Minute,
	}
}

type cell struct {
	Counts
	lat histogram.Sparse
}

type integ struct {
	auctions, clean int64
	kinds           [NumKinds]int64
}

func (g *integ) add(c *contribution, sign int64) {
	if c.auction {
		g.auctions += sign
		if c.kinds == 0 {
			g.clean += sign
		}
	}
	for k := range NumKinds {
		if c.kinds&(1<<k) != 0 {
			g.kinds[k] += sign
		}
	}
}

type pane struct {
	yield map[key]*cell
	integ map[uint32]*integ // by placement; 0 (the empty string) is every placement
}

// Processor computes the rows of one partition and scope.
type Processor struct {
	cfg    Config
	scope  string
	filter window.Filter
	eng    *window.Engine[pane]
	evict  int64 // ms an auction outlives its anchor

	auctions map[string]*auction
	names    *names
	old, cur contribution

	rows  []Row
	irows []IntegrityRow
	ysum  map[key]*Row
	isum  map[uint32]*integ
	keys  []key
	pkeys []uint32
}

// New returns a processor writing rows of scope; filter (nil for the all
// scope) restricts the windows each user's auctions reach.
func New(cfg Config, scope string, filter window.Filter) (*Processor, error) {
	p := &Processor{
		cfg: cfg, scope: scope, filter: filter,
		evict:    cfg.Window.Size.Milliseconds() + cfg.Window.Lateness.Milliseconds() + cfg.Grace.Milliseconds(),
		auctions: make(map[string]*auction), names: newNames(),
		ysum: make(map[key]*Row), isum: make(map[uint32]*integ),
	}
	eng, err := window.NewEngine(cfg.Window, func(int64) *pane {
		return &pane{yield: make(map[key]*cell), integ: make(map[uint32]*integ)}
	}, p.emit)
	if err != nil {
		return nil, err
	}
	p.eng = eng
	return p, nil
}

// Add folds e in, given the partition watermark wm (after e). It returns
// how many of the auction's windows had closed (late).
func (p *Processor) Add(e *event.Event, wm int64) (missed int) {
	switch e.Type {
	case event.BidRequest, event.Bid, event.AuctionWon, event.OfferShown, event.OfferClicked, event.Billed:
	default:
		return 0
	}
	a := p.auctions[e.AuctionID]
	hadOld := a != nil
	if a == nil {
		a = &auction{anchor: e.EventTime}
		if p.filter != nil {
			a.user = strings.Clone(e.UserID)
		}
		p.auctions[strings.Clone(e.AuctionID)] = a
	}
	if hadOld {
		a.contribute(&p.old)
	}
	newReq := e.Type == event.BidRequest && !a.hasReq
	a.apply(e, p.names.id)
	a.contribute(&p.cur)

	var pn *pane
	if hadOld && p.old.anchor == p.cur.anchor && p.old.placement == p.cur.placement && p.old.auction == p.cur.auction {
		// The usual case: same pane, a few keys changed.
		pn, missed = p.pane(a, p.cur.anchor, wm)
		if pn == nil {
			return missed
		}
		p.applyDiff(pn, &p.old, &p.cur)
	} else {
		if hadOld {
			if opn, _ := p.pane(a, p.old.anchor, wm); opn != nil {
				p.applyContribution(opn, &p.old, -1)
			}
		}
		pn, missed = p.pane(a, p.cur.anchor, wm)
		if pn == nil {
			return missed
		}
		p.applyContribution(pn, &p.cur, 1)
	}
	// Latencies are only ever added: each bid's once its auction is known.
	switch {
	case newReq:
		for i := range a.bids {
			p.addLatency(pn, a, &a.bids[i])
		}
	case e.Type == event.Bid && a.hasReq:
		p.addLatency(pn, a, &a.bids[len(a.bids)-1])
	}
	return missed
}

func (p *Processor) pane(a *auction, anchor, wm int64) (*pane, int) {
	r := window.Every
	if p.filter != nil {
		r = p.filter(a.user, anchor, p.cfg.Window)
	}
	return p.eng.PaneRange(anchor, wm, r)
}

func (p *Processor) applyContribution(pn *pane, c *contribution, sign int64) {
	for i := range c.yield {
		kc := &c.yield[i]
		cl := pn.yield[kc.k]
		if cl == nil {
			cl = &cell{}
			pn.yield[kc.k] = cl
		}
		cl.add(&kc.c, sign)
	}
	p.applyInteg(pn, c, sign)
}

func (p *Processor) applyInteg(pn *pane, c *contribution, sign int64) {
	for _, pl := range [2]uint32{c.placement, 0} {
		g := pn.integ[pl]
		if g == nil {
			g = &integ{}
			pn.integ[pl] = g
		}
		g.add(c, sign)
		if c.placement == 0 {
			break
		}
	}
}

// applyDiff applies cur − old to pn, touching only the keys that changed.
func (p *Processor) applyDiff(pn *pane, old, cur *contribution) {
	if sameKeys(old, cur) {
		// The usual case (a bid of a known bidder, a win, an impression,
		// a click, a billing): the same keys in the same order.
		for i := range cur.yield {
			if o, c := &old.yield[i].c, &cur.yield[i].c; *o != *c {
				cl := pn.cell(cur.yield[i].k)
				cl.add(c, 1)
				cl.add(o, -1)
			}
		}
	} else {
		p.applyKeyDiff(pn, old, cur)
	}
	if old.kinds != cur.kinds {
		p.applyInteg(pn, old, -1)
		p.applyInteg(pn, cur, 1)
	}
}

func sameKeys(old, cur *contribution) bool {
	if len(old.yield) != len(cur.yield) {
		return false
	}
	for i := range cur.yield {
		if old.yield[i].k != cur.yield[i].k {
			return false
		}
	}
	return true
}

// applyKeyDiff applies the yield part of cur − old when keys came or went.
func (p *Processor) applyKeyDiff(pn *pane, old, cur *contribution) {
	for i := range cur.yield {
		kc := &cur.yield[i]
		var prev *Counts
		for j := range old.yield {
			if old.yield[j].k == kc.k {
				prev = &old.yield[j].c
				break
			}
		}
		if prev != nil && *prev == kc.c {
			continue
		}
		cl := pn.cell(kc.k)
		cl.add(&kc.c, 1)
		if prev != nil {
			cl.add(prev, -1)
		}
	}
	for j := range old.yield {
		gone := true
		for i := range cur.yield {
			if cur.yield[i].k == old.yield[j].k {
				gone = false
				break
			}
		}
		if gone {
			pn.cell(old.yield[j].k).add(&old.yield[j].c, -1)
		}
	}
}

func (pn *pane) cell(k key) *cell {
	cl := pn.yield[k]
	if cl == nil {
		cl = &cell{}
		pn.yield[k] = cl
	}
	return cl
}

func (p *Processor) addLatency(pn *pane, a *auction, b *bid) {
	if b.latency < 0 {
		return
	}
	for _, k := range [4]key{{a.placement, b.bidder}, {0, b.bidder}, {a.placement, 0}, {}} {
		cl := pn.yield[k]
		if cl == nil {
			cl = &cell{}
			pn.yield[k] = cl
		}
		cl.lat.Record(b.latency)
	}
}

// Advance moves the watermark to wm without an event.
func (p *Processor) Advance(wm int64) { p.eng.Advance(wm) }

// Flush emits the windows the emission watermark has passed and returns the
// offer_yield and bidstream_integrity rows produced since the last call
// (slices reused by the next call). It evicts auctions past their grace.
func (p *Processor) Flush(emitWM int64) ([]Row, []IntegrityRow) {
	p.eng.Flush(emitWM)
	if wm := p.eng.Watermark(); wm != window.None {
		for id, a := range p.auctions {
			if window.Floor(a.anchor, p.cfg.Window.Slide.Milliseconds())+p.evict <= wm {
				delete(p.auctions, id)
			}
		}
	}
	rows, irows := p.rows, p.irows
	p.rows, p.irows = p.rows[:0], p.irows[:0]
	return rows, irows
}

// Auctions returns the number of auctions in state.
func (p *Processor) Auctions() int { return len(p.auctions) }

// Panes returns the number of live panes.
func (p *Processor) Panes() int { return p.eng.Len() }

func (p *Processor) emit(r window.Result, panes []*pane) {
	clear(p.ysum)
	clear(p.isum)
	for _, pn := range panes {
		for k, cl := range pn.yield {
			row := p.ysum[k]
			if row == nil {
				row = &Row{Start: r.Start, End: r.End, Placement: p.names.strs[k.placement], BidderID: p.names.strs[k.bidder], Scope: p.scope, Version: r.Version}
				p.ysum[k] = row
			}
			row.Counts.add(&cl.Counts, 1)
			row.Hist.Merge(&cl.lat)
		}
		for pl, g := range pn.integ {
			s := p.isum[pl]
			if s == nil {
				s = &integ{}
				p.isum[pl] = s
			}
			s.auctions += g.auctions
			s.clean += g.clean
			for k := range NumKinds {
				s.kinds[k] += g.kinds[k]
			}
		}
	}
	p.keys = p.keys[:0]
	for k, row := range p.ysum {
		if row.Counts.zero() && len(row.Hist.Buckets) == 0 {
			continue // everything retracted
		}
		p.keys = append(p.keys, k)
	}
	slices.SortFunc(p.keys, func(a, b key) int {
		return cmp.Or(strings.Compare(p.names.strs[a.placement], p.names.strs[b.placement]),
			strings.Compare(p.names.strs[a.bidder], p.names.strs[b.bidder]))
	})
	for _, k := range p.keys {
		p.rows = append(p.rows, *p.ysum[k])
	}
	p.pkeys = p.pkeys[:0]
	for pl, s := range p.isum {
		if *s == (integ{}) {
			continue
		}
		p.pkeys = append(p.pkeys, pl)
	}
	slices.SortFunc(p.pkeys, func(a, b uint32) int { return strings.Compare(p.names.strs[a], p.names.strs[b]) })
	for _, pl := range p.pkeys {
		s := p.isum[pl]
		for k := range NumKinds {
			p.irows = append(p.irows, IntegrityRow{
				Start: r.Start, End: r.End, Placement: p.names.strs[pl], Kind: k.String(), Scope: p.scope,
				Violations: s.kinds[k], Auctions: s.auctions, CleanAuctions: s.clean, Version: r.Version,
			})
		}
	}
}
