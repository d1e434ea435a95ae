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
	"math"
	"slices"
	"strings"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/histogram"
	"github.com/questline/questline/processors/internal/intern"
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

// cell is one offer_yield key's share of a pane. Bid latencies are
// recorded once, in fine, at the bid's own key (placement, bidder); the
// rows of the coarser keys take them from there when a window is emitted
// (see latKeys). lat holds latencies restored from a snapshot, which
// carries each key's whole histogram.
type cell struct {
	Counts
	k    key
	fine histogram.Sparse
	lat  histogram.Sparse
}

// latKeys returns the row keys a latency recorded at k counts in: the
// bidder per placement, the bidder, the placement, everything. (With an
// empty placement or bidder a key appears twice, and the latency counts
// twice in it, as the counts of such an auction do.)
func latKeys(k key) [4]key {
	return [4]key{k, {0, k.bidder}, {k.placement, 0}, {}}
}

type integ struct {
	auctions, clean int64
	kinds           [NumKinds]int64
	// seen is set once anything was applied (a retraction to zero
	// included): an emitted window's update writes a zero row over the
	// placement's earlier row instead of leaving it (an orphan taken back
	// when its bid_request came).
	seen bool
}

// zero reports whether g counts nothing (seen or not).
func (g *integ) zero() bool {
	return g.auctions == 0 && g.clean == 0 && g.kinds == [NumKinds]int64{}
}

func (g *integ) add(c *contribution, sign int64) {
	g.seen = true
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

// pane is a window pane's aggregates: cells in the order their keys first
// came, at[n] is 1 + the index in cells of the key numbered n
// (Processor.keyNum; 0: none), integ by placement number (0, the empty
// string, is every placement).
type pane struct {
	cells []cell
	at    []int32
	integ []integ
}

// Processor computes the rows of one partition and scope.
type Processor struct {
	cfg    Config
	scope  string
	filter window.Filter
	eng    *window.Engine[pane]
	evict  int64 // ms an auction outlives its anchor

	auctions auctionTable
	// The auction of the last event (nil: none), its slot and its id: an auction's
	// events mostly come in a run, and a run skips the index and takes the
	// auction's contribution before the event from cur. Cleared when
	// auctions are evicted or restored.
	last     *auction
	lastSlot int32
	lastID   []byte
	// expire is at most the earliest watermark at which an auction is
	// evicted or closed: Flush looks for them only from then on.
	expire int64
	// closed holds the auctions with a bid_request whose windows have all
	// closed, until their grace ends: their anchor by the hash of their
	// id. An event of one can only be late (its anchor is fixed once the
	// bid_request is known), so only "this auction is known" is kept:
	// about 36 bytes with closedQ instead of an auction's ~130, for the
	// 30 minutes of grace out of its 45 (docs/processors.md,
	// offer_yield). Its user is not: once every window of the anchor has
	// closed, the clean scope's filter changes neither the windows missed
	// nor anything else (helper-54).
	closed map[uint64]int64
	// closedQ is closed's hashes in the order they closed (about that of
	// their expiry): Flush forgets from its front, without a pass over
	// the map (a later entry that expires first waits for those before
	// it; an event of it finds it expired).
	closedQ     []uint64
	closedFirst int // closedQ[closedFirst:] are live
	names       *intern.Table
	// The auction's contribution before and after the event: two
	// buffers, swapped by pointer.
	old, cur *contribution
	bufs     [2]contribution
	bidBuf   [inlineBids]bid // scratch for an auction's inline bids
	// The keys numbered densely: nums[placement][bidder] is 1 + the
	// number of the key (0: none yet) for the first denseNames names,
	// far for the rest (a dense table of every name pair grew with the
	// square of the names a client sends: helper-37); keys[n] is the key
	// numbered n.
	nums [][]int32
	far  map[key]int32
	keys []key
	// compactAt: when names holds this many, Flush renumbers names and
	// keys from the live state (compact).
	compactAt int

	rows  []Row
	irows []IntegrityRow
	ysum  []int32 // by key number: 1 + index in sums (0: none)
	sums  []Row
	isum  []integ // by placement
	order []int32
	pkeys []uint32
}

// New returns a processor writing rows of scope; filter (nil for the all
// scope) restricts the windows each user's auctions reach.
func New(cfg Config, scope string, filter window.Filter) (*Processor, error) {
	p := &Processor{
		cfg: cfg, scope: scope, filter: filter,
		evict: cfg.Window.Size.Milliseconds() + cfg.Window.Lateness.Milliseconds() + cfg.Grace.Milliseconds(),
		names: intern.New(), expire: math.MaxInt64, compactAt: minCompact,
	}
	eng, err := window.NewEngine(cfg.Window, func(int64) *pane { return &pane{} }, p.emit)
	if err != nil {
		return nil, err
	}
	p.eng = eng
	p.old, p.cur = &p.bufs[0], &p.bufs[1]
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
	// An auction past its grace at wm is gone for this event whether or
	// not a Flush has evicted it yet: found, it is evicted here, so a very
	// late event of it starts an orphan (helper-46: whether it found its
	// auction, late, or started an orphan depended on the flush cadence).
	if p.last != nil && p.expired(p.last, wm) {
		p.last = nil
	}
	a, slot, hadOld, again := p.last, p.lastSlot, true, p.last != nil
	if a == nil || string(p.lastID) != e.AuctionID {
		again = false
		var h uint64
		if a, slot, h = p.auctions.find(e.AuctionID); a != nil && p.expired(a, wm) {
			p.auctions.remove(a, slot)
			a = nil
		}
		if a == nil {
			if anchor, ok := p.closed[h]; ok {
				if !p.expiredAt(anchor, wm) {
					// Late for every window, as the auction's whole
					// state would have had it.
					_, missed = p.eng.Pane(anchor, wm)
					return missed
				}
				p.forgetClosed(h)
			}
			hadOld = false
			a, slot = p.auctions.add(e.AuctionID, h, e.UserID, p.filter != nil)
			a.anchor = e.EventTime
		}
		p.last, p.lastSlot, p.lastID = a, slot, append(p.lastID[:0], e.AuctionID...)
	}
	switch {
	case again:
		// The last event's auction: its contribution is the one computed
		// after that event (nothing else changes an auction).
		p.old, p.cur = p.cur, p.old
	case hadOld:
		a.contribute(p.old, &p.auctions.more)
	}
	newReq := e.Type == event.BidRequest && !a.has(bReq)
	a.apply(e, p.names.ID, &p.auctions.more)
	if a.has(bReq) {
		p.expire = min(p.expire, p.closeAt(a.anchor))
	} else {
		p.expire = min(p.expire, p.expiry(a))
	}
	a.contribute(p.cur, &p.auctions.more)

	var pn *pane
	if hadOld && p.old.anchor == p.cur.anchor && p.old.placement == p.cur.placement && p.old.auction == p.cur.auction {
		// The usual case: same pane, a few keys changed.
		pn, missed = p.pane(slot, p.cur.anchor, wm)
		if pn == nil {
			return missed
		}
		p.applyDiff(pn, p.old, p.cur)
	} else {
		if hadOld {
			if opn, _ := p.pane(slot, p.old.anchor, wm); opn != nil {
				p.applyContribution(opn, p.old, -1)
			}
		}
		pn, missed = p.pane(slot, p.cur.anchor, wm)
		if pn == nil {
			return missed
		}
		p.applyContribution(pn, p.cur, 1)
	}
	// Latencies are only ever added: each bid's once its auction is known.
	switch {
	case newReq:
		bids := a.bidList(&p.auctions.more, &p.bidBuf)
		for i := range bids {
			p.addLatency(pn, a, &bids[i])
		}
	case e.Type == event.Bid && a.has(bReq):
		bids := a.bidList(&p.auctions.more, &p.bidBuf)
		p.addLatency(pn, a, &bids[len(bids)-1])
	}
	return missed
}

// pane returns the pane of anchor for the auction in slot s (the filter
// takes its user), or nil and the number of its closed windows.
func (p *Processor) pane(s int32, anchor, wm int64) (*pane, int) {
	r := window.Every
	if p.filter != nil {
		r = p.filter(p.auctions.user(s), anchor, p.cfg.Window)
	}
	return p.eng.PaneRange(anchor, wm, r)
}

func (p *Processor) applyContribution(pn *pane, c *contribution, sign int64) {
	for i := range c.yield {
		kc := &c.yield[i]
		for _, k := range c.rowKeys(kc.k) {
			p.cell(pn, k).add(&kc.c, sign)
		}
	}
	p.applyInteg(pn, c, sign)
}

func (p *Processor) applyInteg(pn *pane, c *contribution, sign int64) {
	if int(c.placement) >= len(pn.integ) {
		pn.integ = append(pn.integ, make([]integ, int(c.placement)+1-len(pn.integ))...)
	}
	pn.integ[c.placement].add(c, sign)
	if c.placement != 0 {
		pn.integ[0].add(c, sign)
	}
}

// denseNames is how many names (placements and bidders) nums numbers
// densely: 256 × 256 int32 at most, 256 KiB; a deployment's placements
// and bidders are fewer.
const denseNames = 256

// keyNum returns the number of k, numbering it if new.
func (p *Processor) keyNum(k key) int32 {
	if k.placement >= denseNames || k.bidder >= denseNames {
		n, ok := p.far[k]
		if !ok {
			if p.far == nil {
				p.far = map[key]int32{}
			}
			p.keys = append(p.keys, k)
			n = int32(len(p.keys)) - 1
			p.far[k] = n
		}
		return n
	}
	if int(k.placement) >= len(p.nums) {
		p.nums = append(p.nums, make([][]int32, int(k.placement)+1-len(p.nums))...)
	}
	row := p.nums[k.placement]
	if int(k.bidder) >= len(row) {
		row = append(row, make([]int32, int(k.bidder)+1-len(row))...)
		p.nums[k.placement] = row
	}
	if row[k.bidder] == 0 {
		p.keys = append(p.keys, k)
		row[k.bidder] = int32(len(p.keys))
	}
	return row[k.bidder] - 1
}

// cell returns pn's cell of k, adding it if absent. The pointer is valid
// until the next cell is added.
func (p *Processor) cell(pn *pane, k key) *cell {
	n := p.keyNum(k)
	if int(n) >= len(pn.at) {
		pn.at = append(pn.at, make([]int32, int(n)+1-len(pn.at))...)
	}
	if i := pn.at[n]; i > 0 {
		return &pn.cells[i-1]
	}
	pn.cells = append(pn.cells, cell{k: k})
	pn.at[n] = int32(len(pn.cells))
	return &pn.cells[len(pn.cells)-1]
}

// applyDiff applies cur − old to pn, touching only the keys that changed.
func (p *Processor) applyDiff(pn *pane, old, cur *contribution) {
	if sameKeys(old, cur) {
		// The usual case (a bid of a known bidder, a win, an impression,
		// a click, a billing): the same keys in the same order.
		for i := range cur.yield {
			if o, c := &old.yield[i].c, &cur.yield[i].c; *o != *c {
				for _, k := range cur.rowKeys(cur.yield[i].k) {
					cl := p.cell(pn, k)
					cl.add(c, 1)
					cl.add(o, -1)
				}
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
		for _, k := range cur.rowKeys(kc.k) {
			cl := p.cell(pn, k)
			cl.add(&kc.c, 1)
			if prev != nil {
				cl.add(prev, -1)
			}
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
			for _, k := range old.rowKeys(old.yield[j].k) {
				p.cell(pn, k).add(&old.yield[j].c, -1)
			}
		}
	}
}

// addLatency records b's latency at its key; the coarser rows take it
// from there (latKeys).
func (p *Processor) addLatency(pn *pane, a *auction, b *bid) {
	if b.latency < 0 {
		return
	}
	p.cell(pn, key{a.placement, b.bidder}).fine.Record(b.latency)
}

// Advance moves the watermark to wm without an event.
func (p *Processor) Advance(wm int64) { p.eng.Advance(wm) }

// Flush emits the windows the emission watermark has passed and returns the
// offer_yield and bidstream_integrity rows produced since the last call
// (slices reused by the next call). It evicts auctions past their grace.
func (p *Processor) Flush(emitWM int64) ([]Row, []IntegrityRow) {
	p.eng.Flush(emitWM)
	if wm := p.eng.Watermark(); wm != window.None && p.expire <= wm {
		p.expire = math.MaxInt64
		p.last = nil
		p.auctions.each(func(a *auction, s int32) {
			switch x := p.expiry(a); {
			case x <= wm:
				p.auctions.remove(a, s)
			case a.has(bReq) && p.closeAt(a.anchor) <= wm:
				p.close(a, s)
				p.expire = min(p.expire, x)
			case a.has(bReq):
				p.expire = min(p.expire, p.closeAt(a.anchor))
			default:
				p.expire = min(p.expire, x)
			}
		})
		p.expireClosed(wm)
		p.auctions.compact()
	}
	if len(p.names.Names()) >= p.compactAt {
		p.compact()
	}
	rows, irows := p.rows, p.irows
	p.rows, p.irows = p.rows[:0], p.irows[:0]
	return rows, irows
}

// compact renumbers names and keys from the live state, forgetting those
// of panes and auctions gone: placement and bidder ids are client input,
// and every distinct one was kept for ever (names, keys, and arrays by
// number in every pane and emission: helper-37). It is the state's own
// snapshot restored (names by their strings, as from a file; rows sort by
// name, so the numbering changes nothing in them), done once the names
// have grown past twice the live ones plus the auctions held (at least
// minCompact): its cost, O(state), is amortized over at least as many new
// names as the state has auctions, O(1) per name (helper-41: doubling the
// names alone let a stream of new names stall a large partition often).
func (p *Processor) compact() {
	s := p.Snapshot()
	p.names, p.nums, p.far, p.keys = intern.New(), nil, nil, nil
	p.ysum, p.isum, p.order, p.sums = nil, nil, p.order[:0], p.sums[:0]
	p.Restore(s)
	p.compactAt = max(minCompact, 2*len(p.names.Names())+p.auctions.len())
}

// minCompact is the fewest names that make compact renumber.
const minCompact = 1024

// expiry returns the watermark from which auction a is evicted.
func (p *Processor) expiry(a *auction) int64 { return p.expiryAt(a.anchor) }

// expiryAt returns the watermark from which an auction of anchor is
// evicted.
func (p *Processor) expiryAt(anchor int64) int64 {
	return window.Floor(anchor, p.cfg.Window.Slide.Milliseconds()) + p.evict
}

// expired reports whether auction a is past its grace at watermark wm.
func (p *Processor) expired(a *auction, wm int64) bool { return p.expiredAt(a.anchor, wm) }

// expiredAt reports whether an auction of anchor is past its grace at
// watermark wm.
func (p *Processor) expiredAt(anchor, wm int64) bool {
	return wm != window.None && p.expiryAt(anchor) <= wm
}

// closeAt returns the watermark from which every window of an auction of
// anchor is closed (the engine's rule: the newest window holding its pane
// closes at its start + size + lateness).
func (p *Processor) closeAt(anchor int64) int64 {
	return window.Floor(anchor, p.cfg.Window.Slide.Milliseconds()) + p.cfg.Window.Size.Milliseconds() + p.cfg.Window.Lateness.Milliseconds()
}

// close replaces auction a, in slot s, by its entry in closed.
func (p *Processor) close(a *auction, s int32) {
	if p.closed == nil {
		p.closed = map[uint64]int64{}
	}
	h := hashID(p.auctions.id(a))
	p.closed[h] = a.anchor
	p.closedQ = append(p.closedQ, h)
	p.auctions.remove(a, s)
}

// expireClosed forgets the closed auctions from the front of closedQ that
// expire at wm, and lowers expire to the next one's expiry.
func (p *Processor) expireClosed(wm int64) {
	q := p.closedQ
	for ; p.closedFirst < len(q); p.closedFirst++ {
		// An event may have forgotten it already. (If its id has closed
		// again since, with a later anchor, this first entry waits for
		// the later expiry and holds those behind it: ids are not reused,
		// but it would only delay their forgetting.)
		anchor, ok := p.closed[q[p.closedFirst]]
		if !ok {
			continue
		}
		if x := p.expiryAt(anchor); x > wm {
			p.expire = min(p.expire, x)
			break
		}
		p.forgetClosed(q[p.closedFirst])
	}
	if p.closedFirst > len(q)/2 && p.closedFirst >= 1024 { // drop the forgotten half
		p.closedQ = append(q[:0], q[p.closedFirst:]...)
		p.closedFirst = 0
	}
}

// forgetClosed forgets the closed auction of hash h.
func (p *Processor) forgetClosed(h uint64) { delete(p.closed, h) }

// Auctions returns the number of auctions in state, closed ones included.
func (p *Processor) Auctions() int { return p.auctions.len() + len(p.closed) }

// Panes returns the number of live panes.
func (p *Processor) Panes() int { return p.eng.Len() }

// sum returns the row of key k in the window being emitted, adding it.
func (p *Processor) sum(r *window.Result, k key) *Row {
	n := p.keyNum(k)
	if int(n) >= len(p.ysum) {
		p.ysum = append(p.ysum, make([]int32, int(n)+1-len(p.ysum))...)
	}
	if i := p.ysum[n]; i > 0 {
		return &p.sums[i-1]
	}
	p.sums = append(p.sums, Row{Start: r.Start, End: r.End, Placement: p.names.Name(k.placement), BidderID: p.names.Name(k.bidder), Scope: p.scope, Version: r.Version})
	p.ysum[n] = int32(len(p.sums))
	p.order = append(p.order, n)
	return &p.sums[len(p.sums)-1]
}

func (p *Processor) emit(r window.Result, panes []*pane) {
	for _, n := range p.order {
		p.ysum[n] = 0
	}
	p.order, p.sums = p.order[:0], p.sums[:0]
	clear(p.isum)
	for _, pn := range panes {
		for i := range pn.cells {
			cl := &pn.cells[i]
			row := p.sum(&r, cl.k)
			row.Counts.add(&cl.Counts, 1)
			row.Hist.AddFrom(&cl.lat) // the rows' buckets are their own until copied out
		}
		// Latencies go to their rows after the counts: p.sums may grow.
		for i := range pn.cells {
			cl := &pn.cells[i]
			if len(cl.fine.Buckets) == 0 {
				continue
			}
			for _, k := range latKeys(cl.k) {
				p.sum(&r, k).Hist.AddFrom(&cl.fine)
			}
		}
		if len(pn.integ) > len(p.isum) {
			p.isum = append(p.isum, make([]integ, len(pn.integ)-len(p.isum))...)
		}
		for pl := range pn.integ {
			g, s := &pn.integ[pl], &p.isum[pl]
			s.seen = s.seen || g.seen
			s.auctions += g.auctions
			s.clean += g.clean
			for k := range NumKinds {
				s.kinds[k] += g.kinds[k]
			}
		}
	}
	// Every key, those whose contributions were all retracted too: their
	// zero row goes over the row an earlier emission wrote, by this
	// process or by a predecessor whose records this one replays from an
	// older snapshot in one flush (helper-43: a first emission wrote no
	// zero row, so the predecessor's stayed).
	first := len(p.rows)
	p.rows = append(p.rows, p.sums...)
	slices.SortFunc(p.rows[first:], func(a, b Row) int {
		return cmp.Or(strings.Compare(a.Placement, b.Placement), strings.Compare(a.BidderID, b.BidderID))
	})
	p.pkeys = p.pkeys[:0]
	for pl := range p.isum {
		if !p.isum[pl].seen { // seen: anything applied, retracted or not (as rows above)
			continue
		}
		p.pkeys = append(p.pkeys, uint32(pl))
	}
	slices.SortFunc(p.pkeys, func(a, b uint32) int { return strings.Compare(p.names.Name(a), p.names.Name(b)) })
	for _, pl := range p.pkeys {
		s := &p.isum[pl]
		for k := range NumKinds {
			p.irows = append(p.irows, IntegrityRow{
				Start: r.Start, End: r.End, Placement: p.names.Name(pl), Kind: k.String(), Scope: p.scope,
				Violations: s.kinds[k], Auctions: s.auctions, CleanAuctions: s.clean, Version: r.Version,
			})
		}
	}
}
