// Package latency computes completion-to-conversion latency (SPEC §5): each
// conversion of a user is attributed to that user's latest quest_completed
// at or before it and within the attribution window; latency_ms is the
// difference of their event times. Per window (by conversion time), per
// quest_id of the attributed completion and for all quests (”):
// conversions, p50/p90/p99 from an HDR histogram (the buckets of hdrhistogram-go at 3
// significant digits, see package histogram), exact max and mean. Every attributed conversion is
// also a row of its own (quest_conversions).
//
// Conversions wait in a queue until the watermark passes their event time,
// so every completion at or before them that is within the out-of-orderness
// bound has arrived. A completion that arrives later, while every window of
// a conversion it should take is still open (within allowed lateness),
// re-attributes that conversion: the old contribution is retracted from the
// window panes and the new one added, and the quest_conversions row is
// written again with a higher Version. So the final rows equal the batch
// definition for any arrival order within the allowed lateness. Ties (two
// completions at the same millisecond) go to the greater quest_id, whatever
// their order. A conversion without an attributable completion is in no row.
package latency

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/internal/minheap"
	"github.com/questline/questline/processors/histogram"
	"github.com/questline/questline/processors/internal/arena"
	"github.com/questline/questline/processors/internal/intern"
	"github.com/questline/questline/processors/window"
)

// Config configures the processor.
type Config struct {
	// Window is the window shape. Default: size 10 min, slide 1 min,
	// allowed lateness 10 min.
	Window window.Spec
	// Attribution is the longest completion-to-conversion latency that is
	// attributed. Default 30 min.
	Attribution time.Duration
	// Conversions makes the processor return quest_conversions rows (set
	// it on one scope only). Default false.
	Conversions bool
}

// DefaultConfig returns the SPEC §5 defaults.
func DefaultConfig() Config {
	return Config{
		Window:      window.Spec{Size: 10 * time.Minute, Slide: time.Minute, Lateness: 10 * time.Minute},
		Attribution: 30 * time.Minute,
	}
}

// Conversion is one row of quest_conversions.
type Conversion struct {
	EventID        string
	OrderID        string
	UserID         string
	QuestID        string // of the attributed completion
	DropID         string
	CreatorID      string
	ConversionTime int64 // Unix ms
	CompletionTime int64 // Unix ms
	LatencyMs      int64
	AmountMicros   int64
	Currency       string
	// Version is 1 for the first attribution and grows by one with each
	// re-attribution by a late completion: the row of highest version per
	// EventID is the current one.
	Version uint64
}

type completion struct {
	T     int64
	Quest string
}

// after reports whether completion a is a better attribution than b (later,
// ties to the greater quest id) for a conversion both precede.
func (a completion) after(b completion) bool {
	return a.T > b.T || a.T == b.T && a.Quest > b.Quest
}

// userComp is a completion as a user's state holds it: the quest a number in
// the processor's names; next links the user's list (lists.go).
type userComp struct {
	T     int64
	quest uint32
	next  uint32
}

// after reports whether completion a is a better attribution than b (see
// completion.after).
func (p *Processor) after(a, b userComp) bool {
	return a.T > b.T || a.T == b.T && p.names.Name(a.quest) > p.names.Name(b.quest)
}

type stats struct {
	N, Sum, Max int64
	Hist        histogram.Sparse
	// Lats are the latencies recorded, so that a retraction can recompute
	// the exact maximum.
	Lats []int64
}

func (s *stats) record(lat int64) {
	s.N++
	s.Sum += lat
	s.Max = max(s.Max, lat)
	s.Hist.Record(lat)
	s.Lats = append(s.Lats, lat)
}

// retract removes one recorded lat.
func (s *stats) retract(lat int64) {
	i := slices.Index(s.Lats, lat)
	if i < 0 {
		panic("latency: retracting a latency that was not recorded")
	}
	s.Lats = slices.Delete(s.Lats, i, i+1)
	s.N--
	s.Sum -= lat
	s.Max = 0
	for _, l := range s.Lats {
		s.Max = max(s.Max, l)
	}
	s.Hist.RecordN(lat, -1)
	s.Hist.Buckets = slices.DeleteFunc(s.Hist.Buckets, func(b histogram.Bucket) bool { return b.Count == 0 })
}

type pane struct{ ByQuest map[string]*stats }

// Processor computes the rows of one partition and scope.
type Processor struct {
	cfg     Config
	scope   string
	filter  window.Filter
	attrMs  int64
	lateMs  int64
	slideMs int64
	eng     *window.Engine[pane]
	users   users
	// prune is at most the earliest watermark at which Flush has a
	// completion or released conversion to forget: it looks from then on.
	prune int64
	queue minheap.Heap[queued]
	// forgotten counts list entries forgotten past MaxUserList.
	forgotten uint64
	seq       uint64
	missed    int // late windows of released conversions, reported by Add

	rows  []Row
	convs []Conversion
	sum   map[string]*Row
	keys  []string
	// names numbers the quest, drop, creator and currency ids of
	// completions and released conversions.
	names *intern.Table
	// convIDs holds the event and order ids of released conversions.
	convIDs arena.Names
	// compactAt: when names holds this many, Flush renumbers them
	// (compact).
	compactAt int
}

// New returns a processor writing rows of scope; filter (nil for the all
// scope) restricts the windows each user's conversions reach.
func New(cfg Config, scope string, filter window.Filter) (*Processor, error) {
	p := &Processor{
		cfg: cfg, scope: scope, filter: filter,
		attrMs: cfg.Attribution.Milliseconds(), lateMs: cfg.Window.Lateness.Milliseconds(),
		slideMs: cfg.Window.Slide.Milliseconds(),
		users:   newUsers(), sum: make(map[string]*Row),
		names: intern.New(), compactAt: minCompact,
		prune: math.MaxInt64, queue: minheap.Heap[queued]{Less: queuedLess},
	}
	eng, err := window.NewEngine(cfg.Window,
		func(int64) *pane { return &pane{ByQuest: make(map[string]*stats)} },
		p.emit)
	if err != nil {
		return nil, err
	}
	p.eng = eng
	return p, nil
}

// Add folds e in, given the partition watermark wm (after e). It returns
// how many windows of conversions released by this call had closed (late).
func (p *Processor) Add(e *event.Event, wm int64) (missed int) {
	switch e.Type {
	case event.QuestCompleted:
		u := p.user(e.UserID)
		c := userComp{T: e.EventTime, quest: p.names.ID(e.QuestID)}
		if p.users.insertComp(u, c, p.after) {
			p.forgotten++
		}
		p.prune = lower(p.prune, p.compGone(c))
		p.reattribute(u, c, e.UserID)
	case event.Conversion:
		p.seq++
		// The strings outlive the record: copies (the ids in one).
		q := queued{seq: p.seq, r: window.Every, t: e.EventTime, user: strings.Clone(e.UserID)}
		if p.cfg.Conversions { // else only the user and time are kept
			q.ids, q.eventLen = concat(e.ID, e.OrderID), uint32(len(e.ID))
			q.amount = e.AmountMicros
			q.drop, q.creator, q.currency = p.names.ID(e.DropID), p.names.ID(e.CreatorID), p.names.ID(e.Currency)
		}
		if p.filter != nil {
			q.r = p.filter(e.UserID, e.EventTime, p.cfg.Window)
		}
		p.queue.Push(q)
	}
	p.release(wm)
	m := p.missed
	p.missed = 0
	return m
}

// user returns the state of the user with id, creating it (the caller
// adds to its lists).
func (p *Processor) user(id string) *user {
	if u := p.users.find(id); u != nil {
		return u
	}
	return p.users.add(id)
}

// open reports whether every window of a conversion at t still takes
// updates under the engine's watermark.
func (p *Processor) open(t int64) bool {
	wm := p.eng.Watermark()
	return wm == window.None || window.Floor(t, p.slideMs)+p.slideMs+p.lateMs > wm
}

// reattribute gives the released conversions of u that completion c now
// precedes most closely to c: their old contribution is retracted, the new
// one added, and their quest_conversions row written again. Only
// conversions whose windows are all open change, so the window rows and
// the quest_conversions row always agree; it is applied under the
// watermark of before the record, like the conversions release applies.
func (p *Processor) reattribute(u *user, c userComp, userID string) {
	uid := "" // userID, cloned once a row needs it
	for i := u.rels; i != 0; i = p.users.rel(i).next {
		rc := p.users.rel(i)
		t := rc.t
		if t < c.T || t-c.T > p.attrMs || !p.open(t) {
			continue
		}
		if rc.attributed && !p.after(c, userComp{T: rc.compT, quest: rc.quest}) {
			continue
		}
		if rc.applied {
			if pn, _ := p.eng.PaneRange(t, p.eng.Watermark(), rc.r); pn != nil {
				pn.ByQuest[p.names.Name(rc.quest)].retract(rc.latency())
			}
			rc.applied = false
		}
		if uid == "" {
			uid = strings.Clone(userID)
		}
		p.attribute(rc, c, uid)
	}
}

// attribute sets rc's attribution to c and adds it to the panes of its
// windows still open (and to quest_conversions, as a row of userID).
func (p *Processor) attribute(rc *released, c userComp, userID string) {
	rc.attributed = true
	rc.quest, rc.compT = c.quest, c.T
	pn, missed := p.eng.PaneRange(rc.t, p.eng.Watermark(), rc.r)
	p.missed += missed
	if pn == nil {
		return
	}
	rc.applied = true
	if p.cfg.Conversions {
		rc.version++
		p.convs = append(p.convs, p.row(rc, userID))
	}
	quest := p.names.Name(c.quest)
	s := pn.ByQuest[quest]
	if s == nil {
		s = &stats{}
		pn.ByQuest[quest] = s
	}
	s.record(rc.latency())
}

// row returns the quest_conversions row of rc, a conversion of userID.
func (p *Processor) row(rc *released, userID string) Conversion {
	return rc.row(userID, &p.convIDs, p.names.Names())
}

// row returns rc's conversion row for userID, with its ids in ids (the
// processor's convIDs) and its names numbered in names.
func (rc *released) row(userID string, ids *arena.Names, names []string) Conversion {
	return Conversion{
		EventID: rc.eventID(ids), OrderID: rc.orderID(ids), UserID: userID, QuestID: names[rc.quest],
		DropID: names[rc.drop], CreatorID: names[rc.creator],
		ConversionTime: rc.t, CompletionTime: rc.compT, LatencyMs: rc.latency(),
		AmountMicros: rc.amount, Currency: names[rc.currency], Version: uint64(rc.version),
	}
}

// release attributes the queued conversions the watermark wm has passed,
// then moves the windows' watermark to wm. A conversion is applied under the
// watermark of before the release, the one it arrived under, so queueing it
// never makes it late, however far wm jumps.
func (p *Processor) release(wm int64) {
	defer p.eng.Advance(wm)
	for p.queue.Len() > 0 && p.queue.Top().t < wm {
		pd := p.queue.Pop()
		t := pd.t
		u := p.users.find(pd.user) // made only to keep rc (below)
		rc := released{
			r: pd.r, t: t, amount: pd.amount, drop: pd.drop, creator: pd.creator, currency: pd.currency,
			ids: p.convIDs.Add(pd.ids), eventLen: pd.eventLen,
		}
		// Latest completion at or before the conversion: the last one
		// with T ≤ t (ties: the greatest quest id, sorted last).
		var best *userComp
		if u != nil {
			for i := u.comps; i != 0 && p.users.comp(i).T <= t; i = p.users.comp(i).next {
				best = p.users.comp(i)
			}
		}
		if best != nil && t-best.T <= p.attrMs {
			p.attribute(&rc, *best, pd.user)
		} else {
			// Unattributed, it updates no pane, but it is late for the
			// windows it missed as an attributed one is (helper-43:
			// counted only when attributed, window_late_events missed
			// such conversions).
			p.missed += p.eng.Missed(t)
		}
		// Kept while a late completion could still change it. One that
		// missed windows is final: its rows are (partly) closed.
		if p.open(t) {
			if u == nil {
				u = p.user(pd.user)
			}
			if old, forgot := p.users.appendRel(u, rc); forgot {
				p.convIDs.Free(old.ids)
				p.forgotten++
			}
			p.prune = lower(p.prune, p.releasedGone(t))
		} else {
			p.convIDs.Free(rc.ids)
		}
	}
}

// Advance moves the watermark to wm without an event, releasing queued
// conversions and finalizing the windows it closes.
func (p *Processor) Advance(wm int64) { p.release(wm) }

// Flush emits the windows the emission watermark has passed and returns the
// window rows and conversion rows produced since the last call. The slices
// are reused by the next call. It also evicts completions no conversion can
// still be attributed to.
func (p *Processor) Flush(emitWM int64) ([]Row, []Conversion) {
	p.eng.Flush(emitWM)
	if wm := p.eng.Watermark(); wm != window.None {
		// A conversion still accepted is at most lateness behind the
		// watermark and looks back at most the attribution window.
		horizon := wm - p.lateMs - p.cfg.Window.Size.Milliseconds() - p.attrMs
		if p.prune <= wm {
			p.prune = math.MaxInt64
			removed := false
			for n := range p.users.numbers() {
				if !p.users.held(n) {
					continue
				}
				u := p.users.rec(n)
				p.users.dropComps(u, horizon)
				p.users.dropRels(u, func(rc *released) bool {
					if p.open(rc.t) {
						return false
					}
					p.convIDs.Free(rc.ids)
					removed = true
					return true
				})
				if u.comps == 0 && u.rels == 0 {
					p.users.remove(n)
					removed = true
					continue
				}
				if u.comps != 0 {
					p.prune = lower(p.prune, p.compGone(*p.users.comp(u.comps)))
				}
				for i := u.rels; i != 0; i = p.users.rel(i).next {
					p.prune = lower(p.prune, p.releasedGone(p.users.rel(i).t))
				}
			}
			if removed {
				p.users.compact()
				p.convIDs.Compact(func(move func(arena.Ref) arena.Ref) {
					for n := range p.users.numbers() {
						for i := p.users.rec(n).rels; i != 0; i = p.users.rel(i).next {
							p.users.rel(i).ids = move(p.users.rel(i).ids)
						}
					}
				})
			}
		}
	}
	if len(p.names.Names()) >= p.compactAt {
		p.compact()
	}
	rows, convs := p.rows, p.convs
	p.rows, p.convs = p.rows[:0], p.convs[:0]
	return rows, convs
}

// compact renumbers the names from the live state, forgetting those of
// completions and conversions gone: quest, drop and creator ids are client
// input, and every distinct one was kept for ever (helper-37). It is the
// state's own snapshot restored (names by their strings, as from a file),
// done once the names have grown past twice the live ones plus the users
// and queued conversions held (at least minCompact): its O(state) cost is
// amortized over at least as many new names, O(1) per name. (As yield's.)
func (p *Processor) compact() {
	s := p.Snapshot()
	p.names = intern.New()
	p.Restore(s)
	p.compactAt = max(minCompact, 2*len(p.names.Names())+p.users.len()+p.queue.Len())
}

// minCompact is the fewest names that make compact renumber.
const minCompact = 1024

// lower is the builtin min (which the package's tests shadow).
func lower(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

// compGone returns the watermark from which Flush forgets completion c
// (c.T < wm − lateness − size − attribution).
func (p *Processor) compGone(c userComp) int64 {
	return c.T + p.lateMs + p.cfg.Window.Size.Milliseconds() + p.attrMs + 1
}

// releasedGone returns the watermark from which a released conversion at
// t is no longer open (see open).
func (p *Processor) releasedGone(t int64) int64 {
	return window.Floor(t, p.slideMs) + p.slideMs + p.lateMs
}

// Users returns the number of users with attribution state.
func (p *Processor) Users() int { return p.users.len() }

// Forgotten returns how many completions and released conversions were
// forgotten because a user's list was full (MaxUserList).
func (p *Processor) Forgotten() uint64 { return p.forgotten }

// Panes returns the number of live panes.
func (p *Processor) Panes() int { return p.eng.Len() }

// Pending returns the number of conversions waiting for the watermark.
func (p *Processor) Pending() int { return p.queue.Len() }

// Watermark returns the event-time watermark last seen.
func (p *Processor) Watermark() int64 { return p.eng.Watermark() }

func (p *Processor) emit(r window.Result, panes []*pane) {
	clear(p.sum)
	total := p.newRow(r, "")
	for _, pn := range panes {
		for q, s := range pn.ByQuest {
			row := p.sum[q]
			if row == nil {
				row = p.newRow(r, q)
				p.sum[q] = row
			}
			row.add(s)
			total.add(s)
		}
	}
	// A row that lost its last conversion to a re-attribution is written
	// again as a zero row over its earlier version. Its quest stays in
	// the panes, so the zero row is written even by a window this process
	// never emitted: one that restored an older snapshot and replayed the
	// records (the row its predecessor wrote is in the table; helper-43).
	// A window without any quest writes no row, emitted before or not:
	// quests are never removed from its panes, so it never had one (the
	// clean scope opens such windows for flagged users' conversions; an
	// update wrote a zero '' row for them, so its presence depended on
	// the flush cadence: helper-46).
	if len(p.sum) == 0 {
		return
	}
	p.keys = p.keys[:0]
	for q := range p.sum {
		p.keys = append(p.keys, q)
	}
	slices.Sort(p.keys)
	p.rows = append(p.rows, *total)
	for _, q := range p.keys {
		p.rows = append(p.rows, *p.sum[q])
	}
}

func (p *Processor) newRow(r window.Result, quest string) *Row {
	return &Row{Start: r.Start, End: r.End, QuestID: quest, Scope: p.scope, Version: r.Version}
}
