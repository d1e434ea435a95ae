// Package bots computes bot signals per user or per device in hopping
// windows (SPEC §5; default size 1 min, slide 10 s) and keeps the flags the
// clean scope of every other table needs.
//
// Signals, each with a weight; score = 1 − Π(1 − weight) over the signals
// present, so it is in [0,1] and grows with every extra signal; the entity is
// flagged when score ≥ Threshold:
//
//	velocity          0.6  more than Velocity events in the window
//	impossible_quest  0.8  a quest_completed with duration_ms below the quest's minimum
//	metronome         0.7  ≥ MetronomeEvents events whose gaps have a coefficient of variation below MetronomeCV
//	shared_device     0.25 (devices) more than SharedDeviceUsers users
//	geo_mismatch      0.3  an event whose declared country differs from the edge's
//	claim_burst       0.6  ≥ ClaimBurst claims (drop_claimed, and claim_rejected
//	                       but for sold_out and not_live)
//	country_hopping   0.6  a geo-mismatched event in the window and another one of
//	                       the entity up to GeoHop before it declaring another country
//
// Only the entity's own events count (Counted): the exchange's answers to
// an auction (bid, auction_won, billed) and payouts carry the user's id
// but are not the user's doing, and a feed with many bidders would
// otherwise make a reader "fast" (velocity). A claim refused because the
// drop was not live yet or sold out is what a fan tapping at the opening
// gets; claim_burst counts granted claims and the refusals of a burst
// (rate_limited, suspected_bot, or a reason it does not know). Two weak
// signals do not flag together: a family of four sharing a tablet abroad
// (shared_device and geo_mismatch) scores 0.475 (0.58 before session 14,
// flagged); with any strong signal a shared device flags.
//
// One geo mismatch stays below the default threshold (travellers, VPNs,
// stale SIM or locale settings all cause it, on every event), and so does a
// persistent mismatch with one declared country; a declared country that
// changes from event to event while disagreeing with the network is what a
// spoofing client does, and flags (0.3 and 0.6: score 0.72). The signal is
// in the windows of the later event of such a pair; it looks back GeoHop
// before the window (never after its end), so any partner within the
// allowed lateness arrives while the window is open, and a partner arriving
// after the window was emitted re-emits it.
//
// bot_signals holds a row per entity and window with a score above zero; a
// late event that lowers a score to zero writes a zero row over it.
package bots

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/internal/intern"
	"github.com/questline/questline/processors/internal/pool"
	"github.com/questline/questline/processors/window"
)

// Entity types (the entity_type column).
const (
	EntityUser   = "user"
	EntityDevice = "device"
)

// Signal is one bot signal.
type Signal uint8

// The signals, in reasons order.
const (
	Velocity Signal = iota
	ImpossibleQuest
	Metronome
	SharedDevice
	GeoMismatch
	ClaimBurst
	CountryHopping
	numSignals
)

var (
	signalNames   = [numSignals]string{"velocity", "impossible_quest", "metronome", "shared_device", "geo_mismatch", "claim_burst", "country_hopping"}
	signalWeights = [numSignals]float64{0.6, 0.8, 0.7, 0.25, 0.3, 0.6, 0.6}
)

// String returns the signal's name in reasons.
func (s Signal) String() string { return signalNames[s] }

// Config configures the processor. DefaultConfig gives the defaults each
// field names; New refuses a Threshold outside (0, 1] (a zero Config
// would flag every entity with a signal).
type Config struct {
	// Window is the window shape. Default: size 1 min, slide 10 s, allowed
	// lateness 10 min, updates at most every minute of event time. The
	// slide must not exceed 65 s.
	Window window.Spec
	// Entity is EntityUser (default) or EntityDevice.
	Entity string
	// Velocity: more events than this in a window is a signal. Default 120.
	Velocity int
	// MetronomeEvents: the fewest events for metronome. Default 20.
	MetronomeEvents int
	// MetronomeCV: gaps with a coefficient of variation below it are
	// near-constant. Default 0.1.
	MetronomeCV float64
	// SharedDeviceUsers is K: more users than it on a device is a signal.
	// Default 3.
	SharedDeviceUsers int
	// ClaimBurst: this many claims in a window is a signal. Default 5.
	ClaimBurst int
	// GeoHop: two geo-mismatched events of an entity at most this far
	// apart that declare different countries are country_hopping (in the
	// windows of the later one). Default 10 min.
	GeoHop time.Duration
	// Threshold flags an entity whose score reaches it: SPEC §5's
	// configurable threshold (questline process -process-bot-threshold).
	// Default 0.5; in (0, 1].
	Threshold float64
}

// DefaultConfig returns the defaults for users.
func DefaultConfig() Config {
	return Config{
		// An emission reads every event of the window (bot signals are
		// not sums), so a window's updates for late events come at most
		// once a minute of event time (window.Spec.UpdateEvery).
		Window:   window.Spec{Size: time.Minute, Slide: 10 * time.Second, Lateness: 10 * time.Minute, UpdateEvery: time.Minute},
		Entity:   EntityUser,
		Velocity: 120, MetronomeEvents: 20, MetronomeCV: 0.1,
		SharedDeviceUsers: 3, ClaimBurst: 5, GeoHop: 10 * time.Minute, Threshold: 0.5,
	}
}

// Row is one row of bot_signals: window × entity.
type Row struct {
	Start, End int64
	EntityType string
	EntityID   string
	Events     int
	Signals    uint8 // bit set of Signal
	Score      float64
	Flagged    bool
	Version    uint64
	// Users are, for a flagged device, the distinct users of its events
	// in the window (sorted): the device stage flags them for the clean
	// scope once the window is closed. Nil otherwise. A pointer: the rows'
	// buffers are state, and a slice header would add 16 bytes to every
	// row (2 B per active user, TestStateBytesPerUser).
	Users *[]string
}

// Reasons returns the names of the signals present, in Signal order.
func (r *Row) Reasons() []string {
	var out []string
	for s := range numSignals {
		if r.Signals&(1<<s) != 0 {
			out = append(out, s.String())
		}
	}
	return out
}

// evt is one event of a pane: its entity, and its time as an offset from
// the pane start (below 2^16: a slide is at most 65 s) with the event's
// marks in the high bits. A pane holds it in 6 bytes (evBlock).
type evt struct{ id, off uint32 }

const (
	offMask        = 1<<29 - 1
	markClaim      = 1 << 29 // drop_claimed or claim_rejected
	markImpossible = 1 << 30 // a quest completed faster than its minimum
	markGeo        = 1 << 31 // declared country ≠ edge country
)

// marks returns the event's marks as 0 or 1 each, to be counted.
func (e evt) marks() (claim, impossible, geo int) {
	return int(e.off&markClaim) / markClaim, int(e.off&markImpossible) / markImpossible, int(e.off&markGeo) / markGeo
}

// events is a pane's events in blocks (the first of 64, each next twice
// as large up to eventsBlock): growing never copies what it holds, and a
// full pane wastes at most the end of its last block.
type events struct{ blocks []evBlock }

// evBlock is a block of events in 6 bytes each, as parallel arrays: the
// entity number with the event's marks in the bits above offMask (as in
// evt.off), and the offset, below 2^16 (a slide is at most 65 s).
type evBlock struct {
	ids  []uint32
	offs []uint16
}

// at returns the i-th event of b.
func (b *evBlock) at(i int) evt {
	w := b.ids[i]
	return evt{id: w & offMask, off: uint32(b.offs[i]) | w&^offMask}
}

// eventsBlock is the largest block of events (6 KiB).
const eventsBlock = 1024

// maxEntity bounds the entity numbers, which share a word with an
// event's marks.
const maxEntity = offMask

func (l *events) add(e evt) {
	if e.id > offMask || e.off&offMask > 1<<16-1 {
		panic("bots: an event's entity number or offset out of range")
	}
	n := len(l.blocks)
	if n == 0 || len(l.blocks[n-1].ids) == cap(l.blocks[n-1].ids) {
		size := 64
		if n > 0 {
			size = min(2*cap(l.blocks[n-1].ids), eventsBlock)
		}
		l.blocks = append(l.blocks, evBlock{make([]uint32, 0, size), make([]uint16, 0, size)})
		n++
	}
	b := &l.blocks[n-1]
	b.ids = append(b.ids, e.id|e.off&^offMask)
	b.offs = append(b.offs, uint16(e.off))
}

// pane is a pane's events, pointer-free but for the devices' users: the
// panes of a window's lateness hold every event of the entities.
type pane struct {
	start  int64
	serial uint32              // numbers the aggregates (a pane's parts share its start)
	evs    events              // arrival order
	users  map[uint32][]string // devices: distinct users, by entity
	// For emission: the entities (numbers; repeats allowed) with an event
	// that can signal on its own (claim, impossible quest, geo mismatch,
	// a device's user), and those with at least Processor.heavy events
	// here. An entity reaching a count threshold in a window of k panes
	// has at least threshold/k events in one of them, so a first emission
	// needs to look at these only. The lists may hold more (an entity
	// whose events came out of order between panes is put in heavy
	// without counting): only their signals are computed.
	notable []uint32
	heavy   []uint32
}

// appendOnce appends id to list unless it is already its last element.
func appendOnce(list []uint32, id uint32) []uint32 {
	if n := len(list); n > 0 && list[n-1] == id {
		return list
	}
	return append(list, id)
}

// Processor computes bot signals of one partition (users) or one device
// partition (devices).
type Processor struct {
	cfg     Config
	catalog *catalog.Catalog
	eng     *window.Engine[pane]
	flags   *Flags
	rows    []Row
	heavy   int // events in one pane that make an entity a candidate

	ents   entities
	swept  int64  // the last sweep's cut
	serial uint32 // of the last pane aggregate made

	// Emission scratch: accOf[entity] is 1 + the index of its accumulator
	// in pool (0: none), sel marks the entities whose times are gathered,
	// into times (and their distinct users into users) at the offsets
	// their accumulators hold: one array each, not one per entity.
	accOf  []int32
	accIDs []uint32
	pool   []accum
	times  []int64
	users  []string
	ids    []uint32
	sel    []bool
	byName func(a, b uint32) int
	// geo holds each entity's geo-mismatched events, by time: the first
	// node of a list in geoMarks (see geoMark), keyed by a copy of the
	// entity's name (they outlive the entity); geoBuf is a list as a
	// slice, for hopping.
	geo       map[string]uint32
	geoMarks  pool.Pool[geoMark]
	geoBuf    []geoMark
	geoMin    int64 // at most the oldest time in geo: Flush prunes from then on
	hopMs     int64
	countries *intern.Table // the declared countries of geo marks
	touched   []int64
}

// accum is an entity's window while it is emitted: pointer-free, its
// event times and distinct users in the Processor's scratch arrays. The
// counts and offsets are int32: a window's events in one partition (600 M
// in 10 minutes at 1 M events/s) fit.
type accum struct {
	n          int32 // events
	claims     int32
	impossible int32
	geo        int32
	devUsers   int32 // sum over panes of distinct users: ≥ distinct in window
	off, nt    int32 // its times: Processor.times[off : off+nt] (n, once gathered)
	uoff, nu   int32 // its distinct users: Processor.users[uoff : uoff+nu]
	hop        bool  // country_hopping
}

// New returns a processor. cat supplies quest minimum durations (nil: the
// default for every quest); flags, if not nil, receives the flagged
// windows for the clean scope.
func New(cfg Config, cat *catalog.Catalog, flags *Flags) (*Processor, error) {
	if err := ValidThreshold(cfg.Threshold); err != nil {
		return nil, err
	}
	if cfg.Window.Slide > 65*time.Second {
		cfg.Window.Slide = 0 // rejected by Validate below
	}
	p := &Processor{cfg: cfg, catalog: cat, flags: flags, ents: newEntities(), swept: window.None, geoMin: math.MaxInt64,
		geo: map[string]uint32{}, geoMarks: pool.New[geoMark](geoChunk), hopMs: hopMs(cfg), countries: intern.New()}
	p.byName = func(a, b uint32) int { return strings.Compare(p.ents.name(a), p.ents.name(b)) }
	eng, err := window.NewEngine(cfg.Window, p.newPane, p.emit)
	if err != nil {
		return nil, err
	}
	p.eng = eng
	// ceil(smallest count threshold / panes per window), at least 1.
	panes := int(cfg.Window.Size / cfg.Window.Slide)
	p.heavy = max(1, (min(cfg.Velocity+1, cfg.MetronomeEvents)+panes-1)/panes)
	return p, nil
}

// Counted reports whether an event of type t is the entity's own doing,
// which bot signals read: every type with a user but the exchange's
// answers to an auction (bid, auction_won, billed) and payouts.
func Counted(t event.Type) bool {
	switch t {
	case event.Bid, event.AuctionWon, event.Billed, event.Payout:
		return false
	}
	return true
}

// claim reports whether e counts for claim_burst: a granted claim, or one
// refused for a reason other than the drop's state (sold_out, not_live).
func claim(e *event.Event) bool {
	switch e.Type {
	case event.DropClaimed:
		return true
	case event.ClaimRejected:
		return e.Reason != event.ReasonSoldOut && e.Reason != event.ReasonNotLive
	}
	return false
}

// ValidThreshold reports whether t can be a Threshold: a score in (0, 1]
// (scores are in [0, 1], and rows exist only for scores above zero).
func ValidThreshold(t float64) error {
	if !(t > 0 && t <= 1) { // (NaN too)
		return fmt.Errorf("bots: threshold %v: want a score above 0 and at most 1", t)
	}
	return nil
}

// Add folds e in, given the watermark wm (after e). It returns how many
// of e's windows had closed.
func (p *Processor) Add(e *event.Event, wm int64) (missed int) {
	return p.AddRange(e, wm, window.Every)
}

// AddRange is Add for the windows of e starting in r only (the device
// stage passes the windows that were open at the source partition).
func (p *Processor) AddRange(e *event.Event, wm int64, r window.Range) (missed int) {
	id := e.UserID
	if p.cfg.Entity == EntityDevice {
		id = e.DeviceID
	}
	if id == "" || !Counted(e.Type) {
		// Not this entity's event, but the watermark moves: the windows
		// it closes are finalized now, their flags set before the clean
		// pass takes an event they cover (helper-46: they waited for the
		// next counted event or a Flush, so a flagged user's completion
		// could reach the clean scope, depending on the flush cadence).
		p.eng.Advance(wm)
		return 0
	}
	pn, missed := p.eng.PaneRange(e.EventTime, wm, r)
	if pn == nil {
		return missed
	}
	eid := p.ents.id(id)
	t := p.ents.rec(eid)
	switch {
	case t.serial == pn.serial:
		t.count++
		if int(t.count) == p.heavy {
			pn.heavy = append(pn.heavy, eid)
		}
	case pn.start > t.last: // the entity's first event in pn
		t.last, t.serial, t.count = pn.start, pn.serial, 1
		if p.heavy <= 1 {
			pn.heavy = append(pn.heavy, eid)
		}
	default:
		// Back to an older pane (or another part of its newest): its
		// events there are not counted, so it is a candidate there.
		pn.heavy = appendOnce(pn.heavy, eid)
	}
	off := uint32(e.EventTime - pn.start)
	switch {
	case claim(e):
		off |= markClaim
	case e.Type == event.QuestCompleted:
		if e.Has&event.HasDurationMs != 0 {
			minMs := catalog.DefaultMinDuration.Milliseconds()
			switch {
			case p.cfg.Entity == EntityDevice && e.Has&event.HasMinDurationMs != 0:
				// Set from the source partition's catalog in the device
				// stage's events (pipeline's deviceRecord); a client's
				// own min_duration_ms on a completion counts nowhere.
				minMs = e.MinDurationMs
			case p.catalog != nil:
				minMs = p.catalog.MinDurationMs(e.QuestID)
			}
			if e.DurationMs < minMs {
				off |= markImpossible
			}
		}
	}
	if geoMismatch(e) {
		off |= markGeo
	}
	pn.evs.add(evt{eid, off})
	notable := off&^offMask != 0
	if p.cfg.Entity == EntityDevice && e.UserID != "" && !slices.Contains(pn.users[eid], e.UserID) {
		if pn.users == nil {
			pn.users = map[uint32][]string{}
		}
		pn.users[eid] = append(pn.users[eid], strings.Clone(e.UserID))
		notable = true
	}
	if notable {
		pn.notable = appendOnce(pn.notable, eid)
	}
	if off&markGeo != 0 {
		p.addGeo(p.ents.name(eid), e.EventTime, r.Lo, e.Country, wm) // may add panes
	}
	return missed
}

// newPane returns the aggregate of a new pane (or part of one).
func (p *Processor) newPane(start int64) *pane {
	p.serial++
	return &pane{start: start, serial: p.serial}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Advance moves the watermark to wm without an event.
func (p *Processor) Advance(wm int64) { p.eng.Advance(wm) }

// Flush emits the windows the emission watermark has passed and returns the
// rows produced since the last call (reused by the next call).
func (p *Processor) Flush(emitWM int64) []Row {
	p.eng.Flush(emitWM)
	if wm := p.eng.Watermark(); wm != window.None {
		// A window still open starts after wm − lateness − size; its
		// country_hopping looks GeoHop further back.
		horizon := wm - p.cfg.Window.Lateness.Milliseconds() - p.cfg.Window.Size.Milliseconds() - p.hopMs
		if p.geoMin < horizon {
			p.pruneGeo(horizon)
		}
		// Panes starting at or before cut are evicted.
		size, slide := p.cfg.Window.Size.Milliseconds(), p.cfg.Window.Slide.Milliseconds()
		if cut := wm - size - p.cfg.Window.Lateness.Milliseconds(); p.swept == window.None || cut >= p.swept+slide {
			p.ents.sweep(cut)
			p.swept = cut
		}
	}
	rows := p.rows
	p.rows = p.rows[:0]
	return rows
}

// Panes returns the number of live panes.
func (p *Processor) Panes() int { return p.eng.Len() }

func (p *Processor) emit(r window.Result, panes []*pane) {
	if n := int(p.ents.nums()) + 1; len(p.accOf) < n { // by number, from 1
		p.accOf = append(p.accOf, make([]int32, n-len(p.accOf))...)
		p.sel = append(p.sel, make([]bool, n-len(p.sel))...)
	}
	// First pass: counts only, of the candidates. On a first emission
	// (nothing to overwrite) an entity that is neither notable nor heavy in
	// any pane cannot signal; an update looks at everyone (a signal may have
	// to be withdrawn).
	if !r.Updated {
		for _, pn := range panes {
			for _, list := range [2][]uint32{pn.notable, pn.heavy} {
				for _, id := range list {
					p.accumFor(id)
				}
			}
		}
	}
	for _, pn := range panes {
		for bi := range pn.evs.blocks {
			// The counts need the entities and marks only, not the offsets.
			for _, w := range pn.evs.blocks[bi].ids {
				id := w & offMask
				k := p.accOf[id]
				if k == 0 {
					if !r.Updated {
						continue
					}
					k = p.accumFor(id)
				}
				a := &p.pool[k-1]
				a.n++
				if w&^offMask != 0 {
					c, i, g := evt{off: w &^ offMask}.marks()
					a.claims, a.impossible, a.geo = a.claims+int32(c), a.impossible+int32(i), a.geo+int32(g)
				}
			}
		}
		for id, us := range pn.users {
			if k := p.accOf[id]; k != 0 {
				p.pool[k-1].devUsers += int32(len(us))
			}
		}
	}
	p.ids = p.ids[:0]
	for _, id := range p.accIDs {
		a := &p.pool[p.accOf[id]-1]
		// Of the signals only metronome can go away when events are added
		// (and impossible_quest when a quest's minimum duration is
		// lowered), so an updated window needs no zero row for an entity
		// with fewer events than metronome needs: its score was zero
		// before too, unless it was flagged (selected below) or a
		// catalog change lowered it (its old row stays; documented). A
		// window's flags are set by its emissions only, so before its
		// first one no entity is flagged in it.
		if int(a.n) > p.cfg.Velocity || int(a.n) >= p.cfg.MetronomeEvents || int(a.claims) >= p.cfg.ClaimBurst ||
			a.impossible > 0 || a.geo > 0 || int(a.devUsers) > p.cfg.SharedDeviceUsers ||
			r.Updated && p.flags != nil && p.flags.Flagged(p.ents.name(id), r.Start) {
			p.ids = append(p.ids, id)
			p.sel[id] = true
		}
	}
	// Second pass for the selected: times and distinct users, each
	// entity's in its own range of the scratch arrays (the first pass
	// counted its events, and bounded its distinct users by devUsers).
	var nt, nu int32
	for _, id := range p.ids {
		a := &p.pool[p.accOf[id]-1]
		a.off, a.uoff = nt, nu
		nt += a.n
		nu += a.devUsers
	}
	p.times = slices.Grow(p.times[:0], int(nt))[:nt]
	p.users = slices.Grow(p.users[:0], int(nu))[:nu]
	for _, pn := range panes {
		for bi := range pn.evs.blocks {
			blk := &pn.evs.blocks[bi]
			for j, w := range blk.ids {
				if id := w & offMask; p.sel[id] {
					a := &p.pool[p.accOf[id]-1]
					p.times[a.off+a.nt] = pn.start + int64(blk.offs[j])
					a.nt++
				}
			}
		}
		for id, us := range pn.users {
			if p.sel[id] {
				a := &p.pool[p.accOf[id]-1]
				for _, u := range us {
					if !slices.Contains(p.users[a.uoff:a.uoff+a.nu], u) {
						p.users[a.uoff+a.nu] = u
						a.nu++
					}
				}
			}
		}
	}
	slices.SortFunc(p.ids, p.byName)
	for _, eid := range p.ids {
		a := &p.pool[p.accOf[eid]-1]
		id := p.ents.name(eid) // a view: cloned for a row
		if a.geo > 0 {
			a.hop = hopping(p.geoList(id), r.Start, r.End, p.hopMs)
		}
		times := p.times[a.off : a.off+a.nt]
		sig := p.signals(a, times, int(a.nu))
		score := Score(sig)
		flagged := score >= p.cfg.Threshold
		if p.flags != nil {
			p.flags.set(id, r.Start, flagged)
		}
		// Zero rows: only for an entity with the events metronome needs,
		// at every emission. Only metronome can go away as events come
		// (the other signals grow with them), so below its count no
		// earlier row needs overwriting; at or above it an earlier
		// emission may have written a metronome row, by this process or
		// by a predecessor whose records this one replays from an older
		// snapshot in one flush (helper-43's replay). Whether an emission
		// is an update plays no part: a zero row written by updates only
		// depended on the flush cadence (helper-46: a device candidate
		// selected by devUsers, a bound, got zero rows in updates).
		if score == 0 && len(times) < p.cfg.MetronomeEvents {
			continue
		}
		row := Row{
			Start: r.Start, End: r.End, EntityType: p.cfg.Entity, EntityID: strings.Clone(id),
			Events: len(times), Signals: sig, Score: score, Flagged: flagged, Version: r.Version,
		}
		if flagged && p.cfg.Entity == EntityDevice {
			users := make([]string, a.nu)
			row.Users = &users
			for i, u := range p.users[a.uoff : a.uoff+a.nu] {
				users[i] = strings.Clone(u)
			}
			slices.Sort(users)
		}
		p.rows = append(p.rows, row)
	}
	for _, id := range p.accIDs {
		p.accOf[id] = 0
		p.sel[id] = false
	}
	p.accIDs = p.accIDs[:0]
	p.pool = p.pool[:0]
	clear(p.users) // the user ids are the panes': do not keep them past theirs
}

// accumFor returns 1 + the index in pool of entity id's accumulator,
// making it.
func (p *Processor) accumFor(id uint32) int32 {
	if k := p.accOf[id]; k != 0 {
		return k
	}
	p.newAccum()
	k := int32(len(p.pool))
	p.accOf[id] = k
	p.accIDs = append(p.accIDs, id)
	return k
}

// newAccum returns a cleared accumulator, reusing the memory of the last
// emission's.
func (p *Processor) newAccum() *accum {
	if len(p.pool) < cap(p.pool) {
		p.pool = p.pool[:len(p.pool)+1]
		a := &p.pool[len(p.pool)-1]
		*a = accum{}
		return a
	}
	p.pool = append(p.pool, accum{})
	return &p.pool[len(p.pool)-1]
}

// signals returns the signals of an entity's window from its counts a,
// its event times (sorted in place) and its number of distinct users.
func (p *Processor) signals(a *accum, times []int64, users int) uint8 {
	var s uint8
	if len(times) > p.cfg.Velocity {
		s |= 1 << Velocity
	}
	if a.impossible > 0 {
		s |= 1 << ImpossibleQuest
	}
	if len(times) >= p.cfg.MetronomeEvents && metronome(times, p.cfg.MetronomeCV) {
		s |= 1 << Metronome
	}
	if p.cfg.Entity == EntityDevice && users > p.cfg.SharedDeviceUsers {
		s |= 1 << SharedDevice
	}
	if a.geo > 0 {
		s |= 1 << GeoMismatch
	}
	if int(a.claims) >= p.cfg.ClaimBurst {
		s |= 1 << ClaimBurst
	}
	if a.hop {
		s |= 1 << CountryHopping
	}
	return s
}

// metronome reports whether the gaps between the sorted times have a
// coefficient of variation below cv. Equal times (mean gap 0) are not a
// metronome: velocity covers bursts.
//
// The gaps are between distinct times: events at the same millisecond
// (a pair sent together, every 2 s) are one beat, not a gap of 0 that
// hid a perfectly regular cadence (helper-39, session 14). It sorts and
// compacts times in place.
func metronome(times []int64, cv float64) bool {
	slices.Sort(times)
	times = slices.Compact(times)
	if len(times) < 3 {
		return false
	}
	n := float64(len(times) - 1)
	var sum, sq float64
	for i := 1; i < len(times); i++ {
		g := float64(times[i] - times[i-1])
		sum += g
		sq += g * g
	}
	mean := sum / n
	if mean == 0 {
		return false
	}
	variance := max(sq/n-mean*mean, 0)
	return math.Sqrt(variance)/mean < cv
}

// Score returns the score of a set of signals: 1 − Π(1 − weight).
func Score(signals uint8) float64 {
	keep := 1.0
	for s := range numSignals {
		if signals&(1<<s) != 0 {
			keep *= 1 - signalWeights[s]
		}
	}
	return 1 - keep
}
