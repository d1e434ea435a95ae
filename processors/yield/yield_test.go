package yield

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/internal/streamgen"
	"github.com/questline/questline/processors/window"
)

const (
	sec    = 1000
	minute = 60 * sec
	t0     = 1767225600000
)

type mk struct {
	auction string
	t       int64
}

func (m mk) ev(typ event.Type, f func(e *event.Event)) event.Event {
	e := event.Event{Type: typ, UserID: "u-" + m.auction, AuctionID: m.auction, EventTime: m.t, Currency: "EUR"}
	if f != nil {
		f(&e)
	}
	return e
}

func req(placement string) func(*event.Event) {
	return func(e *event.Event) { e.Placement, e.FloorMicros, e.Has = placement, 500_000, event.HasFloorMicros }
}

func bidEv(bidder, outcome string, price, lat int64) func(*event.Event) {
	return func(e *event.Event) {
		e.BidderID, e.Outcome, e.PriceMicros, e.LatencyMs = bidder, outcome, price, lat
		e.Has = event.HasLatencyMs | event.HasPriceMicros
	}
}

func won(bidder string, clearing int64) func(*event.Event) {
	return func(e *event.Event) { e.BidderID, e.ClearingMicros = bidder, clearing }
}

func amount(v int64) func(*event.Event) {
	return func(e *event.Event) { e.AmountMicros = v }
}

func placement(p string) func(*event.Event) { return func(e *event.Event) { e.Placement = p } }

func f(p *float64) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprintf("%.4f", *p)
}

func TestHandComputed(t *testing.T) {
	cfg := Config{Window: window.Spec{Size: 2 * time.Minute, Slide: time.Minute, Lateness: time.Minute}, Grace: time.Minute}
	p, err := New(cfg, window.ScopeAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	A, B, C, D := mk{"A", t0 + 10*minute}, mk{"B", t0 + 10*minute + 10*sec}, mk{"C", t0 + 10*minute + 20*sec}, mk{"D", t0 + 10*minute + 30*sec}
	events := []event.Event{
		A.ev(event.BidRequest, req("feed")),
		A.ev(event.Bid, bidEv("b1", "bid", 1_000_000, 50)),
		A.ev(event.Bid, bidEv("b2", "no_bid", 0, 20)),
		A.ev(event.Bid, bidEv("b3", "timeout", 0, 300)),
		A.ev(event.AuctionWon, won("b1", 800_000)),
		A.ev(event.OfferShown, placement("feed")),
		A.ev(event.OfferClicked, nil),
		A.ev(event.Billed, amount(800_000)),
		B.ev(event.Billed, amount(700_000)), // before its bid_request: an orphan for now
		B.ev(event.BidRequest, req("feed")),
		B.ev(event.Bid, bidEv("b2", "bid", 600_000, 40)),
		B.ev(event.AuctionWon, won("b1", 400_000)), // no bid from b1, below floor, ≠ billed
		B.ev(event.AuctionWon, won("b1", 400_000)), // duplicate
		C.ev(event.OfferShown, placement("end_card")),
		D.ev(event.BidRequest, req("banner")),
		D.ev(event.OfferShown, placement("banner")),
		D.ev(event.Billed, amount(100)),
	}
	wmk := window.NewWatermark(time.Minute)
	for i := range events {
		p.Add(&events[i], wmk.Observe(events[i].EventTime))
	}
	p.Advance(t0 + 60*minute)
	rows, irows := p.Flush(t0 + 60*minute)
	got := map[string]string{}
	for _, r := range rows {
		if r.Start != t0+10*minute {
			continue
		}
		p50, _ := r.LatencyQuantile(50)
		p99, _ := r.LatencyQuantile(99)
		got[r.Placement+"/"+r.BidderID] = fmt.Sprintf("a=%d b=%d nb=%d to=%d w=%d i=%d c=%d rev=%d fill=%s ecpm=%s rpm=%s win=%s p50=%d p99=%d",
			r.Auctions, r.Bids, r.NoBids, r.Timeouts, r.Wins, r.Impressions, r.Clicks, r.RevenueMicros,
			f(r.FillRate()), f(r.ECPM()), f(r.RPM()), f(r.WinRate()), p50, p99)
	}
	want := map[string]string{
		"/":       "a=3 b=2 nb=1 to=1 w=2 i=2 c=1 rev=1500100 fill=0.6667 ecpm=750.0500 rpm=500.0333 win=1.0000 p50=40 p99=300",
		"feed/b1": "a=2 b=1 nb=0 to=0 w=2 i=1 c=1 rev=1500000 fill=0.5000 ecpm=1500.0000 rpm=750.0000 win=2.0000 p50=50 p99=50",
		"/b2":     "a=2 b=1 nb=1 to=0 w=0 i=0 c=0 rev=0 fill=0.0000 ecpm=NULL rpm=0.0000 win=0.0000 p50=20 p99=40",
		"banner/": "a=1 b=0 nb=0 to=0 w=0 i=1 c=0 rev=100 fill=1.0000 ecpm=0.1000 rpm=0.1000 win=NULL p50=0 p99=0",
		"feed/":   "a=2 b=2 nb=1 to=1 w=2 i=1 c=1 rev=1500000 fill=0.5000 ecpm=1500.0000 rpm=750.0000 win=1.0000 p50=40 p99=300",
		"/b1":     "a=2 b=1 nb=0 to=0 w=2 i=1 c=1 rev=1500000 fill=0.5000 ecpm=1500.0000 rpm=750.0000 win=2.0000 p50=50 p99=50",
		"feed/b2": "a=2 b=1 nb=1 to=0 w=0 i=0 c=0 rev=0 fill=0.0000 ecpm=NULL rpm=0.0000 win=0.0000 p50=20 p99=40",
		"feed/b3": "a=1 b=0 nb=0 to=1 w=0 i=0 c=0 rev=0 fill=0.0000 ecpm=NULL rpm=0.0000 win=NULL p50=300 p99=300",
		"/b3":     "a=1 b=0 nb=0 to=1 w=0 i=0 c=0 rev=0 fill=0.0000 ecpm=NULL rpm=0.0000 win=NULL p50=300 p99=300",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s:\n got %s\nwant %s", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("rows %v", got)
	}

	ig := map[string]string{}
	for _, r := range irows {
		if r.Start == t0+10*minute && r.Violations > 0 || r.Kind == "orphan" && r.Start == t0+10*minute {
			ig[r.Placement+"/"+r.Kind] = fmt.Sprintf("v=%d a=%d ratio=%s", r.Violations, r.Auctions, f(r.IntegrityRatio()))
		}
	}
	wantI := map[string]string{
		"/win_without_bid":              "v=1 a=3 ratio=0.3333",
		"/clearing_below_floor":         "v=1 a=3 ratio=0.3333",
		"/duplicate_win":                "v=1 a=3 ratio=0.3333",
		"/billing_mismatch":             "v=1 a=3 ratio=0.3333",
		"/impression_without_win":       "v=1 a=3 ratio=0.3333",
		"/billed_without_win":           "v=1 a=3 ratio=0.3333",
		"/orphan":                       "v=1 a=3 ratio=0.3333",
		"feed/win_without_bid":          "v=1 a=2 ratio=0.5000",
		"feed/clearing_below_floor":     "v=1 a=2 ratio=0.5000",
		"feed/duplicate_win":            "v=1 a=2 ratio=0.5000",
		"feed/billing_mismatch":         "v=1 a=2 ratio=0.5000",
		"feed/orphan":                   "v=0 a=2 ratio=0.5000", // B's orphan retracted
		"banner/impression_without_win": "v=1 a=1 ratio=0.0000",
		"banner/billed_without_win":     "v=1 a=1 ratio=0.0000",
		"banner/orphan":                 "v=0 a=1 ratio=0.0000",
		"end_card/orphan":               "v=1 a=0 ratio=NULL",
	}
	for k, w := range wantI {
		if ig[k] != w {
			t.Errorf("integrity %s: got %q want %q", k, ig[k], w)
		}
	}
	if len(ig) != len(wantI) {
		t.Errorf("integrity rows %v", ig)
	}
	if p.Auctions() != 0 || p.Panes() != 0 {
		t.Fatalf("state left: %d auctions, %d panes", p.Auctions(), p.Panes())
	}
}

func TestStreamingEqualsBatch(t *testing.T) {
	cfg := DefaultConfig()
	for seed := range uint64(6) {
		sc := streamgen.Config{Seed: seed, Events: 4000, Disorder: 60 * sec, Gap: 1500, Users: 30}
		events := streamgen.Generate(sc)
		wantRows, wantInteg := Batch(cfg, window.ScopeAll, events, nil)
		for _, n := range []int{1, 4} {
			var partials []Row
			var ipartials []IntegrityRow
			for i, part := range streamgen.Partition(events, n) {
				r, ir := stream(t, cfg, part, sc.Disorder, 1+i*29)
				partials = append(partials, r...)
				ipartials = append(ipartials, ir...)
			}
			got := Merge(partials)
			if len(got) != len(wantRows) {
				t.Fatalf("seed %d, %d partitions: %d rows, want %d", seed, n, len(got), len(wantRows))
			}
			for i := range got {
				g, w := got[i], wantRows[i]
				if g.Start != w.Start || g.Placement != w.Placement || g.BidderID != w.BidderID || g.Counts != w.Counts ||
					!g.Hist.Equal(&w.Hist) {
					t.Fatalf("seed %d, %d partitions, row %d:\n%+v\nwant\n%+v", seed, n, i, g, w)
				}
			}
			gotI := MergeIntegrity(ipartials)
			if len(gotI) != len(wantInteg) {
				t.Fatalf("seed %d, %d partitions: %d integrity rows, want %d", seed, n, len(gotI), len(wantInteg))
			}
			var violations int64
			for i := range gotI {
				g, w := gotI[i], wantInteg[i]
				g.Version = 0
				if g != w {
					t.Fatalf("seed %d, %d partitions, integrity row %d:\n%+v\nwant\n%+v", seed, n, i, g, w)
				}
				violations += g.Violations
			}
			if violations == 0 {
				t.Fatal("no violations in the stream: a weak test")
			}
		}
	}
}

func stream(t *testing.T, cfg Config, events []event.Event, disorder int64, flushEvery int) ([]Row, []IntegrityRow) {
	t.Helper()
	p, err := New(cfg, window.ScopeAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	wmk := window.NewWatermark(time.Duration(disorder) * time.Millisecond)
	latest := map[[3]any]Row{}
	ilatest := map[[3]any]IntegrityRow{}
	keep := func(rows []Row, irows []IntegrityRow) {
		for _, r := range rows {
			latest[[3]any{r.Start, r.Placement, r.BidderID}] = r
		}
		for _, r := range irows {
			ilatest[[3]any{r.Start, r.Placement, r.Kind}] = r
		}
	}
	for i := range events {
		wm := wmk.Observe(events[i].EventTime)
		if missed := p.Add(&events[i], wm); missed != 0 {
			t.Fatalf("event %d late within the disorder bound", i)
		}
		if i%flushEvery == 0 {
			keep(p.Flush(wm))
		}
	}
	end := wmk.Max() + 1e9
	p.Advance(end)
	keep(p.Flush(end))
	var rows []Row
	for _, r := range latest {
		rows = append(rows, r)
	}
	var irows []IntegrityRow
	for _, r := range ilatest {
		irows = append(irows, r)
	}
	return rows, irows
}

// TestLastAuctionForgotten: the auction of the last event (the run
// shortcut) is forgotten when auctions are evicted or restored, so a later
// event of that id finds the auction the map holds (a new one after
// eviction; the snapshot's after a restore), as without the shortcut.
func TestLastAuctionForgotten(t *testing.T) {
	cfg := Config{Window: window.Spec{Size: 2 * time.Minute, Slide: time.Minute, Lateness: time.Minute}, Grace: time.Minute}
	newP := func() *Processor {
		p, err := New(cfg, window.ScopeAll, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	A := mk{"A", t0 + 10*minute}
	p := newP()
	for _, e := range []event.Event{A.ev(event.BidRequest, req("feed")), A.ev(event.Bid, bidEv("b1", "bid", 1_000_000, 50))} {
		p.Add(&e, A.t)
	}
	p.Advance(A.t + 20*minute)
	p.Flush(A.t + 20*minute)
	if p.Auctions() != 0 {
		t.Fatalf("%d auctions after their eviction", p.Auctions())
	}
	late := mk{"A", A.t + 21*minute}.ev(event.BidRequest, req("feed"))
	p.Add(&late, late.EventTime)
	if p.Auctions() != 1 {
		t.Fatalf("an event of an evicted auction's id left %d auctions, want 1 (a new one)", p.Auctions())
	}

	// Restore into a processor that went on after its snapshot.
	B := mk{"B", t0 + 10*minute}
	p = newP()
	for _, e := range []event.Event{B.ev(event.BidRequest, req("feed")), B.ev(event.Bid, bidEv("b1", "bid", 1_000_000, 50))} {
		p.Add(&e, B.t)
	}
	js, err := json.Marshal(p.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	state := func() *State {
		var s State
		if err := json.Unmarshal(js, &s); err != nil {
			t.Fatal(err)
		}
		return &s
	}
	lost := B.ev(event.Bid, bidEv("b2", "no_bid", 0, 20)) // after the snapshot: undone by the restore
	p.Add(&lost, B.t)
	p.Restore(state())
	fresh := newP()
	fresh.Restore(state())
	next := B.ev(event.AuctionWon, won("b1", 800_000))
	var out [2]string
	for i, q := range []*Processor{p, fresh} {
		e := next
		q.Add(&e, B.t)
		q.Advance(B.t + 3*minute) // the auction is kept until B.t + 4 min
		rows, irows := q.Flush(B.t + 3*minute)
		st, _ := json.Marshal(q.Snapshot())
		out[i] = fmt.Sprint(rows, irows, string(st))
	}
	if out[0] != out[1] {
		t.Fatalf("after a restore, rows or state differ from a fresh processor's:\n%s\n%s", out[0], out[1])
	}
}

// TestAuctionOverflow: auctions with more bids than an auction holds
// inline and several billed amounts (the overflow of the auction table's
// records) give the batch rows, and their snapshot lists every bid and
// amount in arrival order, across a restore.
func TestAuctionOverflow(t *testing.T) {
	cfg := DefaultConfig()
	var events []event.Event
	for i := range 40 {
		m := mk{fmt.Sprintf("A%d", i), t0 + int64(i)*7*sec}
		events = append(events, m.ev(event.BidRequest, req("feed")))
		for b := range 2 + i%6 { // 2 to 7 bids
			events = append(events, m.ev(event.Bid, bidEv(fmt.Sprintf("b%d", b%5), "bid", int64(600_000+b*1000), int64(10+b))))
		}
		events = append(events, m.ev(event.AuctionWon, won("b1", 601_000)))
		for k := range i % 4 { // 0 to 3 billed amounts
			events = append(events, m.ev(event.Billed, amount(int64(601_000+k))))
		}
	}
	wantRows, wantInteg := Batch(cfg, window.ScopeAll, events, nil)
	gotRows, gotInteg := stream(t, cfg, events, 0, 3)
	gotRows, gotInteg = Merge(gotRows), MergeIntegrity(gotInteg)
	if len(gotRows) != len(wantRows) || len(gotInteg) != len(wantInteg) {
		t.Fatalf("%d rows, %d integrity rows, want %d, %d", len(gotRows), len(gotInteg), len(wantRows), len(wantInteg))
	}
	for i := range gotRows {
		g, w := gotRows[i], wantRows[i]
		if g.Start != w.Start || g.Placement != w.Placement || g.BidderID != w.BidderID || g.Counts != w.Counts || !g.Hist.Equal(&w.Hist) {
			t.Fatalf("row %d:\n%+v\nwant\n%+v", i, g, w)
		}
	}
	for i := range gotInteg {
		if g := gotInteg[i]; g.Violations != wantInteg[i].Violations || g.Auctions != wantInteg[i].Auctions {
			t.Fatalf("integrity row %d:\n%+v\nwant\n%+v", i, g, wantInteg[i])
		}
	}

	p, err := New(cfg, window.ScopeAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range events {
		p.Add(&events[i], t0)
	}
	s := p.Snapshot()
	a := s.Auctions["A5"] // 7 bids, 1 billed amount
	if len(a.Bidders) != 7 || a.Bidders[6] != "b1" || a.Prices[6] != 606_000 || len(a.Billed) != 1 {
		t.Fatalf("snapshot of A5: %+v", a)
	}
	if a := s.Auctions["A7"]; len(a.Bidders) != 3 || len(a.Billed) != 3 || a.Billed[2] != 601_002 {
		t.Fatalf("snapshot of A7: %+v", a)
	}
	q, _ := New(cfg, window.ScopeAll, nil)
	q.Restore(s)
	js1, _ := json.Marshal(s.Auctions)
	js2, _ := json.Marshal(q.Snapshot().Auctions)
	if string(js1) != string(js2) {
		t.Fatalf("auctions after a restore differ:\n%s\n%s", js1, js2)
	}
}

// TestInlineBidWords: a bid's outcome and latency survive the inline
// word, and its price the 32-bit inline price, at their limits, and a
// latency or price they cannot hold (or an outcome out of range, as a
// damaged snapshot might have) moves the auction's bids to its overflow,
// in arrival order.
func TestInlineBidWords(t *testing.T) {
	for _, bids := range [][]bid{
		{{price: 1, latency: -1, bidder: 1, outcome: outBid}, {price: 2, latency: 0, bidder: 2, outcome: outError}, {price: 3, latency: latMax, bidder: 3, outcome: outTimeout}},
		{{price: 1, latency: 5, bidder: 1, outcome: outNoBid}, {price: 2, latency: latMax + 1, bidder: 2, outcome: outBid}},
		{{price: 7, latency: event.MaxNumber, bidder: 4, outcome: outBid}},
		{{price: 1, latency: 5, bidder: 1, outcome: outNoBid}, {price: 2, latency: -2, bidder: 2, outcome: 200}},
		{{price: 1, latency: 5, bidder: 1<<16 - 1, outcome: outNoBid}},
		{{price: 1, latency: 5, bidder: 1, outcome: outNoBid}, {price: 2, latency: 5, bidder: 1 << 16, outcome: outBid}},
		{{price: math.MaxInt32, latency: 5, bidder: 1, outcome: outBid}, {price: math.MinInt32, latency: 5, bidder: 2, outcome: outBid}},
		{{price: 1, latency: 5, bidder: 1, outcome: outBid}, {price: math.MaxInt32 + 1, latency: 5, bidder: 2, outcome: outBid}},
		{{price: math.MinInt32 - 1, latency: 5, bidder: 1, outcome: outBid}},
		{{price: event.MaxNumber, latency: 5, bidder: 1, outcome: outBid}},
	} {
		var a auction
		var o overflow
		for _, b := range bids {
			a.addBid(b, &o)
		}
		var buf [inlineBids]bid
		got := a.bidList(&o, &buf)
		if fmt.Sprint(got) != fmt.Sprint(bids) {
			t.Fatalf("bids %v, want %v", got, bids)
		}
		_, fits := packLat(bids[len(bids)-1])
		if fits = fits && len(bids) <= inlineBids; a.has(bSpilled) == fits {
			t.Fatalf("%v: spilled %v", bids, a.has(bSpilled))
		}
	}
}

// TestAuctionChunkPages: an auction record is 80 bytes and a chunk of
// them a whole number of 8 KiB pages (a large allocation is rounded up to
// pages: a field added to the record, or another chunk size, would waste
// up to a page per chunk unnoticed).
func TestAuctionChunkPages(t *testing.T) {
	size := unsafe.Sizeof(auction{})
	if size != 80 || size*chunkAuctions%8192 != 0 {
		t.Fatalf("auction record %d bytes, chunk %d bytes", size, size*chunkAuctions)
	}
}

// TestWideAmounts: a floor or clearing price outside 32 bits moves both to
// the auction's overflow, where they stay exact (also when set again
// small), the inline bids stay inline, and the violations see them.
func TestWideAmounts(t *testing.T) {
	var a auction
	var o overflow
	a.set(bReq, true)
	a.set(bFloor, true)
	a.setAmounts(math.MaxInt32, math.MinInt32, &o)
	if f, c := a.amounts(&o); f != math.MaxInt32 || c != math.MinInt32 || a.has(bSpilled) {
		t.Fatalf("inline: %d, %d, spilled %v", f, c, a.has(bSpilled))
	}
	a.addBid(bid{price: 10, latency: 1, bidder: 1, outcome: outBid}, &o)
	a.wins = 1
	a.winner = 1
	a.setAmounts(math.MaxInt32+1, 9, &o)
	if f, c := a.amounts(&o); f != math.MaxInt32+1 || c != 9 || !a.has(bWide) {
		t.Fatalf("wide: %d, %d, wide %v", f, c, a.has(bWide))
	}
	var buf [inlineBids]bid
	bids := a.bidList(&o, &buf)
	if len(bids) != 1 || o.of(&a).bids != nil {
		t.Fatalf("bids %v, overflow bids %v", bids, o.of(&a).bids)
	}
	var c contribution
	a.contribute(&c, &o)
	if c.kinds != 1<<ClearingBelowFloor {
		t.Fatalf("violations %b, want clearing below floor", c.kinds)
	}
	a.setAmounts(5, 6, &o)
	if f, c := a.amounts(&o); f != 5 || c != 6 || !a.has(bWide) {
		t.Fatalf("set small again: %d, %d, wide %v", f, c, a.has(bWide))
	}
	o.drop(&a)
	if len(o.m) != 0 {
		t.Fatal("overflow kept")
	}
}

// TestInlineBilled: the first billed amount is inline when it fits in 32
// bits; one that does not, or a second one, puts all of them in the
// overflow, in arrival order.
func TestInlineBilled(t *testing.T) {
	for _, amts := range [][]int64{
		{math.MaxInt32}, {math.MinInt32}, {math.MaxInt32 + 1}, {math.MinInt32 - 1},
		{5, math.MaxInt32 + 1}, {math.MaxInt32 + 1, 5}, {1, 2, 3}, {event.MaxNumber},
	} {
		var a auction
		var o overflow
		for _, amt := range amts {
			a.addBilled(amt, &o)
		}
		var buf [1]int64
		if got := a.billedList(&o, &buf); fmt.Sprint(got) != fmt.Sprint(amts) {
			t.Fatalf("billed %v, want %v", got, amts)
		}
		inline := len(amts) == 1 && amts[0] == int64(int32(amts[0]))
		if a.has(bSpilled) == inline || a.has(bBilled) != inline {
			t.Fatalf("%v: spilled %v, inline %v", amts, a.has(bSpilled), a.has(bBilled))
		}
	}
}

// TestRetractedOrphanZeroRows: an auction's offer_shown before its
// bid_request makes it an orphan anchored at the offer; the windows of the
// offer are written; then the bid_request comes, within the lateness,
// and the auction moves to its own windows. The rows written for the
// offer's windows (an orphan, an impression) must be replaced by zero
// rows: they stayed as the latest row of their identity, an orphan and an
// impression that the batch definition does not have.
func TestRetractedOrphanZeroRows(t *testing.T) {
	cfg := Config{Window: window.Spec{Size: 2 * time.Minute, Slide: time.Minute, Lateness: 10 * time.Minute}, Grace: 30 * time.Minute}
	shown := mk{"X", t0 + 10*minute}
	request := mk{"X", t0 + 5*minute}
	other := mk{"Y", t0 + 13*minute}
	events := []event.Event{
		shown.ev(event.OfferShown, placement("feed")),
		other.ev(event.BidRequest, req("other")),  // the watermark passes the offer's windows: written
		request.ev(event.BidRequest, req("feed")), // within the lateness: the orphan is taken back
	}
	rows, irows := stream(t, cfg, events, 30*sec, 1)
	wantRows, wantInteg := Batch(cfg, window.ScopeAll, events, nil)
	want := map[[3]any]bool{}
	for _, r := range wantRows {
		want[[3]any{r.Start, r.Placement, r.BidderID}] = true
	}
	zeros := 0
	for _, r := range rows {
		if !want[[3]any{r.Start, r.Placement, r.BidderID}] {
			if !r.Counts.zero() {
				t.Errorf("offer_yield %d..%d %q %q: the latest row is %+v, want a zero row", (r.Start-t0)/minute, (r.End-t0)/minute, r.Placement, r.BidderID, r.Counts)
			}
			zeros++
		}
	}
	iwant := map[[3]any]IntegrityRow{}
	for _, r := range wantInteg {
		iwant[[3]any{r.Start, r.Placement, r.Kind}] = r
	}
	for _, r := range irows {
		w, ok := iwant[[3]any{r.Start, r.Placement, r.Kind}]
		switch {
		case !ok && (r.Violations != 0 || r.Auctions != 0):
			t.Errorf("bidstream_integrity %d..%d %q %s: the latest row has %d violations of %d auctions, want a zero row", (r.Start-t0)/minute, (r.End-t0)/minute, r.Placement, r.Kind, r.Violations, r.Auctions)
		case !ok:
			zeros++
		case r.Violations != w.Violations || r.Auctions != w.Auctions || r.CleanAuctions != w.CleanAuctions:
			t.Errorf("bidstream_integrity %d..%d %q %s: %+v, want %+v", (r.Start-t0)/minute, (r.End-t0)/minute, r.Placement, r.Kind, r, w)
		}
	}
	if zeros == 0 {
		t.Fatal("no row was written for the offer's windows before the bid_request came: the scenario did not happen")
	}
}

// TestNamesForgotten: placement and bidder ids are client input; a stream
// where most auctions bring a placement and a bidder never seen again
// (helper-37: kept for ever, the key index growing with their square)
// gets its names renumbered from the live state once they pile up
// (compact), and its rows stay those of the batch definition.
func TestNamesForgotten(t *testing.T) {
	cfg := DefaultConfig()
	sc := streamgen.Config{Seed: 3, Events: 30_000, Disorder: 60 * sec, Gap: 1500, Users: 30}
	events := streamgen.Generate(sc)
	distinct := map[string]bool{}
	for i := range events {
		e := &events[i]
		if e.AuctionID != "" && e.AuctionID[len(e.AuctionID)-1]%5 != 0 { // 4 auctions in 5
			if e.Placement != "" {
				e.Placement += "-" + e.AuctionID
			}
			if e.BidderID != "" {
				e.BidderID += "-" + e.AuctionID
			}
		}
		distinct[e.Placement], distinct[e.BidderID] = true, true
	}
	wantRows, wantInteg := Batch(cfg, window.ScopeAll, events, nil)
	p, err := New(cfg, window.ScopeAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	wmk := window.NewWatermark(time.Duration(sc.Disorder) * time.Millisecond)
	latest, ilatest := map[[3]any]Row{}, map[[3]any]IntegrityRow{}
	keep := func(rows []Row, irows []IntegrityRow) {
		for _, r := range rows {
			latest[[3]any{r.Start, r.Placement, r.BidderID}] = r
		}
		for _, r := range irows {
			ilatest[[3]any{r.Start, r.Placement, r.Kind}] = r
		}
	}
	most, shrunk := 0, 0
	for i := range events {
		wm := wmk.Observe(events[i].EventTime)
		p.Add(&events[i], wm)
		if i%7 == 0 {
			before := len(p.names.Names())
			keep(p.Flush(wm))
			most = max(most, before)
			if len(p.names.Names()) < before {
				shrunk++
			}
		}
	}
	end := wmk.Max() + 1e9
	p.Advance(end)
	keep(p.Flush(end))
	if shrunk == 0 || most >= len(distinct)/2 {
		t.Fatalf("%d distinct names: at most %d held at once, renumbered %d times", len(distinct), most, shrunk)
	}
	if len(latest) != len(wantRows) || len(ilatest) != len(wantInteg) {
		t.Fatalf("%d rows and %d integrity rows, want %d and %d", len(latest), len(ilatest), len(wantRows), len(wantInteg))
	}
	for _, w := range wantRows {
		g := latest[[3]any{w.Start, w.Placement, w.BidderID}]
		if g.Counts != w.Counts || !g.Hist.Equal(&w.Hist) {
			t.Fatalf("row %v %s %s:\n%+v\nwant\n%+v", w.Start, w.Placement, w.BidderID, g, w)
		}
	}
	for _, w := range wantInteg {
		g := ilatest[[3]any{w.Start, w.Placement, w.Kind}]
		g.Version = 0
		if g != w {
			t.Fatalf("integrity row:\n%+v\nwant\n%+v", g, w)
		}
	}
	t.Logf("%d distinct names: at most %d held at once, renumbered %d times", len(distinct), most, shrunk)
}

// TestClosedAuctionIsLate: once every window of an auction with a
// bid_request has closed, Flush keeps only that the auction is known
// (Processor.closed) until its grace ends. An event of it arriving then
// with a current event time (a billing sent late) is late, as with the
// auction's whole state, not an orphan in an open window; the same across
// a snapshot; after the grace it starts an orphan. In the clean scope,
// whose filter restricts the windows an auction reaches, likewise.
func TestClosedAuctionIsLate(t *testing.T) {
	cfg := Config{Window: window.Spec{Size: 2 * time.Minute, Slide: time.Minute, Lateness: time.Minute}, Grace: 10 * time.Minute}
	for _, scope := range []string{window.ScopeAll, window.ScopeClean} {
		var filter window.Filter
		if scope == window.ScopeClean {
			filter = func(_ string, t int64, spec window.Spec) window.Range {
				newest := window.Floor(t, spec.Slide.Milliseconds())
				return window.Range{Lo: newest, Hi: newest} // the newest window only
			}
		}
		newP := func() *Processor {
			p, err := New(cfg, scope, filter)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		A := mk{"A", t0 + 10*minute}
		first := []event.Event{A.ev(event.BidRequest, req("feed")), A.ev(event.Bid, bidEv("b1", "bid", 1_000_000, 50)),
			A.ev(event.AuctionWon, won("b1", 800_000)), A.ev(event.Billed, amount(800_000))}
		closeWM := int64(t0 + 13*minute) // the newest window of A's pane (10–12 min) closes at its end + lateness
		late := mk{"A", t0 + 14*minute}.ev(event.Billed, amount(800_000))
		// run feeds the first events, moves the watermark past A's
		// windows (flushing there when flush is set, which closes A),
		// optionally through a snapshot, then the late billing, and
		// returns its missed windows and the rows of the windows from 12
		// minutes (those the billing's own time is in).
		run := func(flush, snapshot bool) (int, string) {
			p := newP()
			var rows []string
			keep := func(y []Row, i []IntegrityRow) {
				for _, r := range y {
					if r.Start >= t0+12*minute {
						rows = append(rows, fmt.Sprint(r))
					}
				}
				for _, r := range i {
					if r.Start >= t0+12*minute {
						rows = append(rows, fmt.Sprint(r))
					}
				}
			}
			for _, e := range first {
				p.Add(&e, A.t)
			}
			p.Advance(closeWM)
			if flush {
				keep(p.Flush(closeWM))
				if len(p.closed) != 1 || p.auctions.len() != 0 {
					t.Fatalf("%s: after its windows closed: %d closed, %d auctions in full; want 1, 0", scope, len(p.closed), p.auctions.len())
				}
			}
			if snapshot {
				js, err := json.Marshal(p.Snapshot())
				if err != nil {
					t.Fatal(err)
				}
				var s State
				if err := json.Unmarshal(js, &s); err != nil {
					t.Fatal(err)
				}
				p = newP()
				p.Restore(&s)
			}
			e := late
			missed := p.Add(&e, e.EventTime)
			p.Advance(t0 + 40*minute)
			keep(p.Flush(t0 + 40*minute))
			if len(p.closed) != 0 {
				t.Errorf("%s, closed %v, snapshot %v: %d closed auctions past their grace", scope, flush, snapshot, len(p.closed))
			}
			return missed, strings.Join(rows, "\n")
		}
		wantMissed, want := run(false, false)
		if wantMissed != 2 || want != "" {
			t.Fatalf("%s: with the auction's whole state the late billing missed %d windows and left rows %q; want 2 and none", scope, wantMissed, want)
		}
		for _, c := range []struct{ flush, snapshot bool }{{true, false}, {true, true}} {
			if missed, got := run(c.flush, c.snapshot); missed != wantMissed || got != want {
				t.Errorf("%s, closed (snapshot %v): the late billing missed %d windows and left rows %q; want %d and none", scope, c.snapshot, missed, got, wantMissed)
			}
		}
		// Past its grace a Flush forgets it, and the id starts a new
		// auction (an orphan) even before.
		grace := t0 + 10*minute + cfg.Window.Size.Milliseconds() + cfg.Window.Lateness.Milliseconds() + cfg.Grace.Milliseconds()
		p := newP()
		for _, e := range first {
			p.Add(&e, A.t)
		}
		p.Advance(closeWM)
		p.Flush(closeWM)
		p.Advance(grace)
		p.Flush(grace)
		if len(p.closed) != 0 {
			t.Errorf("%s: a Flush past its grace left %d closed auctions, want 0", scope, len(p.closed))
		}
		p = newP()
		for _, e := range first {
			p.Add(&e, A.t)
		}
		p.Advance(closeWM)
		p.Flush(closeWM)
		again := mk{"A", t0 + 30*minute}.ev(event.Billed, amount(800_000))
		p.Add(&again, again.EventTime)
		if len(p.closed) != 0 || p.auctions.len() != 1 {
			t.Errorf("%s: an event after the grace left %d closed, %d auctions; want 0, 1 (an orphan)", scope, len(p.closed), p.auctions.len())
		}
	}
}
