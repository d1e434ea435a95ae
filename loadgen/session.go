package loadgen

import (
	"math"
	"strconv"

	"github.com/questline/questline/event"
)

// startSession starts a human or bot session at t.
func (g *gen) startSession(t int64) {
	if g.rng.Float64() < g.cfg.BotShare {
		k := botKind(1 + g.rng.IntN(int(numBotKinds)-1))
		s := g.botScript(k, t)
		g.finEvents += len(s.steps)
		g.finSessions++
		g.schedule(s.steps[0].t, s)
		return
	}
	u := g.humanFor()
	d := u.devices[g.rng.IntN(len(u.devices))]
	g.startHuman(u, d, t)
	if f := d.family; f != nil && g.rng.Float64() < familyEvening {
		// A family evening: the others on the tablet join within 40 s,
		// up to four users on one device in a minute (shared_device).
		for _, m := range f.users {
			if m != u && !m.active {
				g.startHuman(m, d, t+g.between(1, 40))
			}
		}
	}
}

// startHuman starts a session of human u on device d at t.
func (g *gen) startHuman(u *user, d *device, t int64) {
	u.active = true
	s := &humanSession{u: u, d: d, questsLeft: 1 + g.rng.IntN(3), sid: g.newSessionID()}
	g.acct = &s.n
	defer func() { g.acct = nil }()
	if g.rng.Float64() < 0.3 {
		g.schedule(t+sec, g.newAuction(u, "feed", nil, t+sec))
	}
	g.schedule(t, s)
}

// touch runs the drop experiment for a human's event at t: the first event
// of a human inside a drop's live window enrolls them in that drop. The
// model then decides, once, whether they are exposed (only when the event
// comes from their session, which can show the drop) and whether they
// convert within the horizon, with probability BaseConversion, times
// (1+lift) when exposed. Pending quest-driven conversions are cancelled, so
// that the drop's decision is the only conversion in its horizon. touch
// returns the drop when the human is exposed now.
func (g *gen) touch(u *user, t int64, fromSession bool) *drop {
	if u.bot != human {
		return nil
	}
	d := g.liveDrop(t)
	if d == nil || u.enrolled == d.idx+1 {
		return nil
	}
	u.enrolled = d.idx + 1
	u.horizonEnd = d.end + ms(g.cfg.Windows.AttributionWindow)
	u.convGen++
	exposed := fromSession && g.rng.Float64() < g.cfg.ExposeShare
	p := g.cfg.BaseConversion
	if exposed {
		p *= 1 + d.lift
		d.enrolledExposed++
	} else {
		d.enrolledControl++
	}
	if g.rng.Float64() < p {
		if exposed {
			d.convExposed++
		} else {
			d.convControl++
		}
		upper := min(20*minute, ms(g.cfg.Windows.AttributionWindow)*2/3) / sec
		at := t + g.between(30, max(upper, 31)) + convHalf
		if g.acct != nil {
			*g.acct += 2
		}
		g.schedule(at, &conversion{u: u, drop: d, gen: u.convGen})
	}
	if exposed {
		return d
	}
	return nil
}

// Shares of the humans who come near a bot signal without passing it
// (session 14): fans who tap again after a refused claim, fast players,
// and families sharing a device (world.go).
const (
	retapShare    = 0.5  // of refused claims
	fastShare     = 0.1  // of completed quests
	familyStart   = 0.03 // of new humans: their first device becomes a family's
	familyJoin    = 0.04 // of new humans: join a family's device, up to 4 members
	familyMax     = 4    // shared_device is more than 3 users: 4 trips it, alone 0.25
	familyAbroad  = 0.3  // of families: their tablet on a foreign network (on holiday)
	familyEvening = 0.5  // of a member's sessions on the tablet: the others join
)

// humanSession is a human doing one to three micro-quests.
type humanSession struct {
	sid        string // session_id
	u          *user
	d          *device
	questsLeft int
	phase      int // 0 start a quest, 1 finish it, 2 end
	q          *quest
	qStart     int64
	abandon    bool
	claim      *drop // claim attempt pending after a view
	taps       int   // more claim attempts after a refusal
	n          int   // events generated or planned by the session
}

func (s *humanSession) step(g *gen, t int64) (int64, bool) {
	u := s.u
	if s.phase == 2 {
		g.flush(s.d.buf, t)
		u.active = false
		g.finEvents += s.n
		g.finSessions++
		return 0, false
	}
	g.acct = &s.n
	defer func() { g.acct = nil }()
	if s.claim != nil {
		g.touch(u, t, true)
		e := g.claimEvent(u, s.claim, t, false)
		g.emitClient(s.d, s.sid, e)
		switch {
		case e.Type == event.DropClaimed:
			s.taps = 0
		case s.taps > 0:
			s.taps--
		case g.rng.Float64() < retapShare:
			// A fan refused (sold out, or the drop not live) taps again,
			// 3–5 times a second or two apart: 4–6 refusals in a minute,
			// which claim_burst must not take for a bot's burst.
			s.taps = 3 + g.rng.IntN(3)
		}
		if s.taps > 0 {
			return t + g.between(1, 2), true
		}
		s.claim = nil
		return t + g.between(2, 10), true
	}
	if d := g.touch(u, t, true); d != nil {
		e := g.newEvent(event.DropViewed, t, u)
		e.DropID, e.CreatorID = d.id, d.creator
		g.emitClient(s.d, s.sid, e)
		if g.rng.Float64() < 0.25 {
			s.claim = d
		}
		if g.rng.Float64() < 0.4 {
			g.schedule(t+sec, g.newAuction(u, "drop_live", d, t+sec))
		}
		return t + g.between(2, 8), true
	}
	switch s.phase {
	case 0:
		s.q = g.quests[g.rng.IntN(len(g.quests))]
		s.qStart = t
		s.abandon = g.rng.Float64() < 0.25
		e := g.newEvent(event.QuestStarted, t, u)
		e.QuestID = s.q.id
		g.emitClient(s.d, s.sid, e)
		s.phase = 1
		if s.abandon {
			return t + g.between(30, 170), true
		}
		if g.rng.Float64() < fastShare {
			// A fast player: 1.0–1.2 times the quest's minimum, never
			// under it (impossible_quest is strictly below).
			return t + g.between(s.q.minDurMs/sec, s.q.minDurMs*12/10/sec), true
		}
		lo := max(180, s.q.minDurMs/sec+30)
		return t + g.between(lo, 480), true
	default:
		typ := event.QuestCompleted
		if s.abandon {
			typ = event.QuestAbandoned
		}
		e := g.newEvent(typ, t, u)
		e.QuestID = s.q.id
		if !s.abandon {
			e.DurationMs = t - s.qStart
			e.Has |= event.HasDurationMs
		}
		g.emitClient(s.d, s.sid, e)
		if !s.abandon {
			g.afterCompletion(u, s.q, t)
		}
		s.questsLeft--
		if s.questsLeft > 0 {
			s.phase = 0
			return t + g.between(10, 90), true
		}
		s.phase = 2
		return t + sec, true
	}
}

// afterCompletion plants a quest-driven conversion (outside drop
// horizons) with the planted latency, and maybe an auction.
func (g *gen) afterCompletion(u *user, q *quest, t int64) {
	if t >= u.horizonEnd && g.rng.Float64() < g.cfg.BaseConversion {
		lat := g.logNormal(float64(ms(g.cfg.LatencyMedian)), g.cfg.LatencySigma)
		latMs := max(sec, int64(math.Round(lat/1000))*sec)
		g.planted.latencyDraws = append(g.planted.latencyDraws, latMs)
		if g.acct != nil {
			*g.acct++
		}
		g.schedule(t+latMs+convHalf, &conversion{u: u, questID: q.id, gen: u.convGen})
	}
	if g.rng.Float64() < 0.5 {
		g.schedule(t+sec, g.newAuction(u, "quest_end", nil, t+sec))
	}
}

// claimEvent returns a claim attempt on d: granted while live and in
// stock, else rejected. Bots in a burst are rate limited after two.
func (g *gen) claimEvent(u *user, d *drop, t int64, limited bool) event.Event {
	g.nClaims++
	claimID := "cl." + g.tag + "." + strconv.FormatUint(g.nClaims, 36)
	var e event.Event
	switch {
	case limited:
		e = g.newEvent(event.ClaimRejected, t, u)
		e.Reason = "rate_limited"
	case g.liveDrop(t) != d:
		e = g.newEvent(event.ClaimRejected, t, u)
		e.Reason = "not_live"
	case d.claimed >= d.inventory:
		e = g.newEvent(event.ClaimRejected, t, u)
		e.Reason = "sold_out"
	default:
		d.claimed++
		e = g.newEvent(event.DropClaimed, t, u)
	}
	e.DropID, e.ClaimID = d.id, claimID
	return e
}

// conversion is a pending conversion of a user (a server event, on a half
// second), followed by the creator's payout when it came from a drop.
type conversion struct {
	u       *user
	drop    *drop
	questID string
	gen     int
	phase   int
	order   string
	amount  int64
}

func (c *conversion) step(g *gen, t int64) (int64, bool) {
	u := c.u
	if c.phase == 1 {
		g.touch(u, t, false)
		e := g.newEvent(event.Payout, t, u)
		e.PayoutID = "po." + c.order
		e.OrderID, e.CreatorID, e.Currency = c.order, c.drop.creator, "USD"
		e.AmountMicros, e.Has = c.amount/5, event.HasAmountMicros
		g.emitServer(e)
		return 0, false
	}
	if c.drop == nil {
		// Quest-driven: cancelled by a drop enrollment, and never the
		// first activity of a user inside a live window.
		if c.gen != u.convGen {
			return 0, false
		}
		if d := g.liveDrop(t); d != nil && u.enrolled != d.idx+1 {
			return 0, false
		}
	}
	g.nOrders++
	c.order = "o." + g.tag + "." + strconv.FormatUint(g.nOrders, 36)
	c.amount = int64(math.Round(g.logNormal(12e6, 0.6)/10000)) * 10000
	e := g.newEvent(event.Conversion, t, u)
	e.OrderID, e.Currency = c.order, "USD"
	e.AmountMicros, e.Has = c.amount, event.HasAmountMicros
	e.QuestID = c.questID
	if c.drop != nil {
		e.DropID, e.CreatorID, e.OfferID = c.drop.id, c.drop.creator, c.drop.offerID
	}
	g.emitServer(e)
	if c.drop == nil {
		return 0, false
	}
	c.phase = 1
	return t + sec + convHalf, true
}
