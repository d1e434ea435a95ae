package loadgen

import (
	"math/rand/v2"
	"strconv"

	"github.com/questline/questline/event"
	"github.com/questline/questline/internal/minheap"
)

// actor is anything that acts on the simulated clock: a session, an
// auction, a pending conversion, a buffer flush, the arrival process. step
// runs at t and returns the time of its next step, or ok=false when done.
type actor interface {
	step(g *gen, t int64) (next int64, ok bool)
}

type item struct {
	t   int64
	seq uint64
	a   actor
}

func itemLess(a, b *item) bool { return a.t < b.t || a.t == b.t && a.seq < b.seq }

func batchLess(a, b **Batch) bool {
	x, y := *a, *b
	return x.SendAt < y.SendAt || x.SendAt == y.SendAt && x.Seq < y.Seq
}

// gen is the model: world state, the simulated clock and the outbox.
type gen struct {
	cfg    Config
	rng    *rand.Rand
	tag    string // run tag in every id, from the seed
	origin int64

	actors  minheap.Heap[item]
	outbox  minheap.Heap[*Batch]
	seq     uint64 // actor tie-break
	created uint64 // batches created (Batch.Seq is assigned at emission)
	emitted uint64

	quests   []*quest
	creators []string
	bidders  []*bidder
	drops    []*drop
	humans   []*user
	families []*family
	server   *buffer

	nEvents, nUsers, nDevices, nAuctions, nOrders, nClaims, nSessions, nSessionIDs uint64

	// Session accounting for the arrival rate: acct points at the running
	// session's event count while it steps; finished sessions add theirs.
	acct                   *int
	finEvents, finSessions int

	planted Planted
}

func newGen(cfg Config, origin int64) *gen {
	g := &gen{
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		actors: minheap.Heap[item]{Less: itemLess},
		outbox: minheap.Heap[*Batch]{Less: batchLess},
		tag:    strconv.FormatUint(cfg.Seed, 36),
		origin: origin,
	}
	g.planted = newPlanted(&g.cfg)
	g.server = &buffer{server: true}
	g.newWorld()
	g.catalog()
	g.schedule(origin-warmup, &arrivals{meanEvents: 14})
	return g
}

func (g *gen) schedule(t int64, a actor) {
	g.seq++
	g.actors.Push(item{t: t, seq: g.seq, a: a})
}

// next returns the next batch in send order. It never returns nil: the
// model runs forever; the caller stops it.
func (g *gen) next() *Batch {
	for {
		if g.outbox.Len() > 0 && (g.actors.Len() == 0 || (*g.outbox.Top()).SendAt <= g.actors.Top().t) {
			b := g.outbox.Pop()
			b.Seq = g.emitted
			g.emitted++
			return b
		}
		it := g.actors.Pop()
		if next, ok := it.a.step(g, it.t); ok {
			g.seq++
			g.actors.Push(item{t: next, seq: g.seq, a: it.a})
		}
	}
}

// newEvent returns an event of type typ at true time t with the next id.
func (g *gen) newEvent(typ event.Type, t int64, u *user) event.Event {
	g.nEvents++
	if g.acct != nil {
		*g.acct++
	}
	e := event.Event{ID: "ev." + g.tag + "." + strconv.FormatUint(g.nEvents, 36), Type: typ, TS: t}
	if u != nil {
		e.UserID = u.id
		e.Country = u.country
	}
	return e
}

// buffer collects the events of one device (or of the server) until a
// flush: when the batch is full or flushEvery after its first event.
type buffer struct {
	dev    *device // nil for the server
	server bool
	events []event.Event
	gen    int // bumped at every flush, so that stale flush timers do nothing
}

const (
	serverBatchSize  = 200
	serverFlushEvery = 1 * sec
)

// warmup is how long sessions run before the origin, so that the run
// starts in a steady state; their events before the origin are not sent.
const warmup = 10 * minute

// newSessionID returns the id of a new app session.
func (g *gen) newSessionID() string {
	g.nSessionIDs++
	return "s." + g.tag + "." + strconv.FormatUint(g.nSessionIDs, 36)
}

// emitClient queues e (TS in true time) from device d in app session sid.
func (g *gen) emitClient(d *device, sid string, e event.Event) {
	e.SessionID = sid
	if e.TS < g.origin {
		return
	}
	e.DeviceID = d.id
	e.TS += d.skew
	b := d.buf
	b.events = append(b.events, e)
	if len(b.events) == 1 {
		g.schedule(e.TS-d.skew+d.flushEvery, &flushTimer{b: b, gen: b.gen})
	}
	if len(b.events) >= d.batchSize {
		g.flush(b, e.TS-d.skew)
	}
}

// emitServer queues a server event (TS is true time).
func (g *gen) emitServer(e event.Event) {
	if e.TS < g.origin {
		return
	}
	b := g.server
	b.events = append(b.events, e)
	if len(b.events) == 1 {
		g.schedule(e.TS+serverFlushEvery, &flushTimer{b: b, gen: b.gen})
	}
	if len(b.events) >= serverBatchSize {
		g.flush(b, e.TS)
	}
}

// flush turns the buffer into a batch sent at now (or later, for offline
// devices) and puts it in the outbox.
func (g *gen) flush(b *buffer, now int64) {
	if len(b.events) == 0 {
		return
	}
	bt := &Batch{Server: b.server, SendAt: now, Events: b.events}
	if d := b.dev; d != nil {
		bt.DeviceID, bt.EdgeCountry, bt.Clock, bt.Skew = d.id, d.edgeCountry, d.clock, d.skew
		switch d.offline {
		case 1:
			bt.SendAt += g.between(30, max(30, min(300, int64(g.cfg.Windows.AllowedLateness.Seconds())/2)))
		case 2:
			bt.SendAt += g.between(int64(g.cfg.LongHoldMin.Seconds()), int64(g.cfg.LongHoldMax.Seconds()))
		}
	}
	b.events = nil
	b.gen++
	g.created++
	g.outbox.Push(bt)
}

type flushTimer struct {
	b   *buffer
	gen int
}

func (f *flushTimer) step(g *gen, t int64) (int64, bool) {
	if f.b.gen == f.gen {
		g.flush(f.b, t)
	}
	return 0, false
}

// arrivals is the session arrival process. Each session "pays" for the
// events it generates: the gap to the next arrival is exponential with
// mean (events per session so far) / rate, so the long-run event rate is
// the target rate.
type arrivals struct {
	meanEvents float64
	clock      float64 // exact arrival clock, ms; sessions start on its whole seconds
}

func (a *arrivals) step(g *gen, t int64) (int64, bool) {
	g.nSessions++
	if g.finSessions >= 200 {
		a.meanEvents = float64(g.finEvents) / float64(g.finSessions)
	}
	g.startSession(t)
	if a.clock == 0 {
		a.clock = float64(t)
	}
	a.clock += g.rng.ExpFloat64() * a.meanEvents / g.cfg.Rate * 1000
	next := int64(a.clock)
	return next - next%sec, true
}

// catalog emits quest_defined and the first drop's schedule at the origin.
func (g *gen) catalog() {
	for _, q := range g.quests {
		e := g.newEvent(event.QuestDefined, g.origin, nil)
		e.QuestID = q.id
		e.MinDurationMs, e.MaxDurationMs = q.minDurMs, q.maxDurMs
		e.Has |= event.HasMinDurationMs | event.HasMaxDurationMs
		e.Title = "Quest " + q.id
		g.emitServer(e)
	}
	g.schedule(g.origin, &dropLifecycle{k: 0})
}

// dropLifecycle emits drop k's drop_scheduled (at the origin or 10 min
// before it starts), drop_started and drop_ended, then hands over to k+1.
type dropLifecycle struct {
	k     int
	phase int
}

func (l *dropLifecycle) step(g *gen, t int64) (int64, bool) {
	d := g.dropAt(l.k)
	switch l.phase {
	case 0:
		e := g.newEvent(event.DropScheduled, t, nil)
		e.DropID, e.CreatorID, e.OfferID = d.id, d.creator, d.offerID
		e.StartsAt, e.EndsAt, e.Inventory = d.start, d.end, d.inventory
		e.Has |= event.HasStartsAt | event.HasEndsAt | event.HasInventory
		g.emitServer(e)
		l.phase = 1
		return d.start, true
	case 1:
		e := g.newEvent(event.DropStarted, t, nil)
		e.DropID, e.CreatorID, e.EndsAt, e.Inventory = d.id, d.creator, d.end, d.inventory
		e.Has |= event.HasEndsAt | event.HasInventory
		g.emitServer(e)
		l.phase = 2
		return d.end, true
	default:
		e := g.newEvent(event.DropEnded, t, nil)
		e.DropID = d.id
		g.emitServer(e)
		next := g.dropAt(l.k + 1)
		at := max(t+sec, next.start-10*minute)
		g.schedule(at, &dropLifecycle{k: l.k + 1})
		return 0, false
	}
}
