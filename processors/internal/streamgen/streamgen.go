// Package streamgen generates random event streams with bounded disorder
// for the processors' property tests and benchmarks: every event type of
// the metrics, a few users per device, bots, auctions with integrity
// violations. Output order is arrival order; event times lag the arrival
// clock by at most Config.Disorder, so a watermark with that bound never
// sees a late event.
package streamgen

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"

	"github.com/questline/questline/event"
)

// Config shapes a stream.
type Config struct {
	Seed     uint64
	Events   int   // approximate number of events
	Users    int   // default 50
	Start    int64 // Unix ms of the first event; default 2026-01-01
	Gap      int64 // max ms between consecutive arrivals; default 400
	Disorder int64 // max ms an event time lags the arrival clock
	Quests   int   // default 4
	Drops    int   // live drops, default 2
}

// Generate returns the stream in arrival order. Event times are strictly
// inside [Start-Disorder, end]; event ids are unique.
func Generate(c Config) []event.Event {
	var out []event.Event
	Each(c, func(e *event.Event) { out = append(out, *e) })
	return out
}

// Each generates the stream of Generate without keeping it: fn receives
// each event in arrival order (the pointer is reused).
func Each(c Config, fn func(*event.Event)) {
	if c.Users == 0 {
		c.Users = 50
	}
	if c.Start == 0 {
		c.Start = 1767225600000
	}
	if c.Gap == 0 {
		c.Gap = 400
	}
	if c.Quests == 0 {
		c.Quests = 4
	}
	if c.Drops == 0 {
		c.Drops = 2
	}
	g := &gen{c: c, rng: rand.New(rand.NewPCG(c.Seed, 0x9e3779b97f4a7c15)), clock: c.Start, fn: fn}
	g.run()
}

type gen struct {
	c     Config
	rng   *rand.Rand
	clock int64
	fn    func(*event.Event)
	seq   int
}

func (g *gen) emit(e event.Event) {
	g.seq++
	e.ID = fmt.Sprintf("e%d", g.seq)
	e.EventTime = g.clock - g.rng.Int64N(g.c.Disorder+1)
	e.TS = e.EventTime
	e.ReceivedAt = g.clock
	e.Source = event.SourceClient
	g.fn(&e)
	g.clock += g.rng.Int64N(g.c.Gap + 1)
}

func (g *gen) user() (id, device string) {
	u := g.rng.IntN(g.c.Users)
	// Users 0..2 share device d0 (a shared device); others own one.
	if u < 3 {
		return fmt.Sprintf("u%d", u), "d0"
	}
	return fmt.Sprintf("u%d", u), fmt.Sprintf("d%d", u)
}

var placements = []string{"feed", "drop_banner", "end_card"}
var bidders = []string{"b1", "b2", "b3"}

func (g *gen) run() {
	drop := func() string { return fmt.Sprintf("drop%d", g.rng.IntN(g.c.Drops)) }
	auction := 0
	for g.seq < g.c.Events {
		uid, dev := g.user()
		base := event.Event{UserID: uid, DeviceID: dev, Country: "DE"}
		if g.rng.IntN(20) == 0 {
			base.EdgeCountry = "US" // geo mismatch
		} else {
			base.EdgeCountry = "DE"
		}
		q := fmt.Sprintf("q%d", g.rng.IntN(g.c.Quests))
		switch k := g.rng.IntN(100); {
		case k < 25:
			e := base
			e.Type = event.QuestStarted
			e.QuestID = q
			g.emit(e)
		case k < 42:
			e := base
			e.Type = event.QuestCompleted
			e.QuestID = q
			e.DurationMs = 30_000 + g.rng.Int64N(400_000)
			e.Has |= event.HasDurationMs
			g.emit(e)
		case k < 48:
			e := base
			e.Type = event.QuestAbandoned
			e.QuestID = q
			g.emit(e)
		case k < 58:
			e := base
			e.Type = event.Conversion
			e.OrderID = fmt.Sprintf("o%d", g.seq)
			e.AmountMicros = 1_000_000 + g.rng.Int64N(9_000_000)
			e.Has |= event.HasAmountMicros
			e.Currency = "EUR"
			if g.rng.IntN(2) == 0 {
				e.QuestID = q
			}
			if g.rng.IntN(3) == 0 {
				e.DropID = drop()
			}
			g.emit(e)
		case k < 68:
			e := base
			e.Type = event.DropViewed
			e.DropID = drop()
			g.emit(e)
		case k < 72:
			e := base
			if g.rng.IntN(4) == 0 {
				e.Type = event.ClaimRejected
				e.Reason = "sold_out"
			} else {
				e.Type = event.DropClaimed
			}
			e.DropID = drop()
			e.ClaimID = fmt.Sprintf("c%d", g.seq)
			g.emit(e)
		default:
			auction++
			g.auction(base, fmt.Sprintf("a%d", auction))
		}
	}
}

// auction emits one auction's events, sometimes with an integrity
// violation.
func (g *gen) auction(base event.Event, id string) {
	base.AuctionID = id
	placement := placements[g.rng.IntN(len(placements))]
	floor := int64(500_000)
	if g.rng.IntN(15) != 0 { // else: orphan (no bid_request)
		e := base
		e.Type = event.BidRequest
		e.Placement = placement
		e.FloorMicros = floor
		e.Has |= event.HasFloorMicros
		g.emit(e)
	}
	best, bestPrice := "", int64(0)
	for _, b := range bidders {
		e := base
		e.Type = event.Bid
		e.BidderID = b
		e.Currency = "EUR"
		e.LatencyMs = 5 + g.rng.Int64N(200)
		e.Has |= event.HasLatencyMs
		switch k := g.rng.IntN(10); {
		case k < 6:
			e.Outcome = "bid"
			e.PriceMicros = 200_000 + g.rng.Int64N(2_000_000)
			e.Has |= event.HasPriceMicros
			if e.PriceMicros > bestPrice {
				best, bestPrice = b, e.PriceMicros
			}
		case k < 8:
			e.Outcome = "no_bid"
		case k < 9:
			e.Outcome = "timeout"
		default:
			e.Outcome = "error"
		}
		g.emit(e)
	}
	if best == "" {
		if g.rng.IntN(10) == 0 { // win without bid
			best, bestPrice = bidders[0], 600_000
		} else {
			return
		}
	}
	clearing := bestPrice
	switch g.rng.IntN(12) {
	case 0:
		clearing = bestPrice + 1 // above bid
	case 1:
		clearing = floor - 1 // below floor
	}
	won := event.Event{}
	if g.rng.IntN(12) != 0 {
		won = base
		won.Type = event.AuctionWon
		won.BidderID = best
		won.ClearingMicros = clearing
		won.Has |= event.HasClearingMicros
		won.Currency = "EUR"
		g.emit(won)
		if g.rng.IntN(15) == 0 {
			g.emit(won) // duplicate win (new event id)
		}
	}
	e := base
	e.Type = event.OfferShown
	e.OfferID = "of1"
	e.Placement = placement
	g.emit(e)
	if g.rng.IntN(3) == 0 {
		e := base
		e.Type = event.OfferClicked
		e.OfferID = "of1"
		g.emit(e)
	}
	b := base
	b.Type = event.Billed
	b.AmountMicros = clearing
	if g.rng.IntN(12) == 0 {
		b.AmountMicros += 10 // billing mismatch
	}
	b.Has |= event.HasAmountMicros
	b.Currency = "EUR"
	g.emit(b)
	if g.rng.IntN(15) == 0 {
		g.emit(b) // duplicate billing
	}
}

// Partition splits events by user (the Kafka key) into n partitions,
// keeping arrival order within each.
func Partition(events []event.Event, n int) [][]event.Event {
	parts := make([][]event.Event, n)
	for _, e := range events {
		h := fnv.New32a()
		h.Write([]byte(e.Key()))
		i := int(h.Sum32() % uint32(n))
		parts[i] = append(parts[i], e)
	}
	return parts
}
