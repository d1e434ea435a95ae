// Package quest computes micro-quest completion (SPEC §5) per window, per
// quest_id and for all quests (quest_id ”): starts, completions, abandons
// and completion_rate = completions / starts, NULL when there are no starts.
//
// A quest_completed or quest_abandoned counts in the windows holding its own
// event time, whether or not its quest_started is in the same window, so the
// rate of one window can exceed 1 (a started-then-completed quest straddling a
// window start); that is the definition of SPEC §5 applied literally.
package quest

import (
	"slices"
	"strings"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/window"
)

// Config configures the processor.
type Config struct {
	// Window is the window shape. Default: size 10 min, slide 1 min,
	// allowed lateness 10 min.
	Window window.Spec
}

// DefaultConfig returns the SPEC §5 defaults.
func DefaultConfig() Config {
	return Config{Window: window.Spec{Size: 10 * time.Minute, Slide: time.Minute, Lateness: 10 * time.Minute}}
}

// Counts are the additive measures of a row.
type Counts struct {
	Starts, Completions, Abandons uint64
}

func (c *Counts) add(o *Counts) {
	c.Starts += o.Starts
	c.Completions += o.Completions
	c.Abandons += o.Abandons
}

// Row is one row of quest_completion: window × quest × scope. Rows of one
// identity (Start, QuestID, Scope) from different partitions add up (Merge).
type Row struct {
	Start, End int64 // Unix ms
	QuestID    string
	Scope      string
	Counts
	// Version grows with the information in the row (ReplacingMergeTree).
	Version uint64
}

// CompletionRate returns completions / starts, nil (NULL) without starts.
func (r *Row) CompletionRate() *float64 {
	return window.Ratio(float64(r.Completions), float64(r.Starts))
}

type pane struct{ ByQuest map[string]*Counts }

// Processor computes the rows of one partition and scope.
type Processor struct {
	scope  string
	spec   window.Spec
	filter window.Filter
	eng    *window.Engine[pane]
	rows   []Row
	sum    map[string]*Counts
	keys   []string
}

// New returns a processor writing rows of scope; filter (nil for the all
// scope) restricts the windows each user's events reach.
func New(cfg Config, scope string, filter window.Filter) (*Processor, error) {
	p := &Processor{scope: scope, spec: cfg.Window, filter: filter, sum: make(map[string]*Counts)}
	eng, err := window.NewEngine(cfg.Window,
		func(int64) *pane { return &pane{ByQuest: make(map[string]*Counts)} },
		p.emit)
	if err != nil {
		return nil, err
	}
	p.eng = eng
	return p, nil
}

// Add folds e in, given the partition watermark wm (after e). It returns
// how many of e's windows had closed: e is late for them.
func (p *Processor) Add(e *event.Event, wm int64) (missed int) {
	switch e.Type {
	case event.QuestStarted, event.QuestCompleted, event.QuestAbandoned:
	default:
		return 0
	}
	r := window.Every
	if p.filter != nil {
		r = p.filter(e.UserID, e.EventTime, p.spec)
	}
	pn, missed := p.eng.PaneRange(e.EventTime, wm, r)
	if pn == nil {
		return missed
	}
	c := pn.ByQuest[e.QuestID]
	if c == nil {
		c = &Counts{}
		pn.ByQuest[strings.Clone(e.QuestID)] = c // the key must not pin the decoded record
	}
	switch e.Type {
	case event.QuestStarted:
		c.Starts++
	case event.QuestCompleted:
		c.Completions++
	case event.QuestAbandoned:
		c.Abandons++
	}
	return missed
}

// Flush emits the windows the emission watermark has passed (see
// window.Engine.Flush) and returns every row emitted since the last call.
// The slice is reused by the next call.
func (p *Processor) Flush(emitWM int64) []Row {
	p.eng.Flush(emitWM)
	rows := p.rows
	p.rows = p.rows[:0]
	return rows
}

// Advance moves the watermark to wm without an event, finalizing the
// windows it closes (for example at the end of a bounded input).
func (p *Processor) Advance(wm int64) { p.eng.Advance(wm) }

// Watermark returns the event-time watermark last seen.
func (p *Processor) Watermark() int64 { return p.eng.Watermark() }

// Panes returns the number of live panes (state size).
func (p *Processor) Panes() int { return p.eng.Len() }

func (p *Processor) emit(r window.Result, panes []*pane) {
	clear(p.sum)
	var total Counts
	for _, pn := range panes {
		for q, c := range pn.ByQuest {
			s := p.sum[q]
			if s == nil {
				s = &Counts{}
				p.sum[q] = s
			}
			s.add(c)
			total.add(c)
		}
	}
	p.keys = p.keys[:0]
	for q := range p.sum {
		p.keys = append(p.keys, q)
	}
	slices.Sort(p.keys)
	p.rows = append(p.rows, Row{Start: r.Start, End: r.End, Scope: p.scope, Counts: total, Version: r.Version})
	for _, q := range p.keys {
		p.rows = append(p.rows, Row{Start: r.Start, End: r.End, QuestID: q, Scope: p.scope, Counts: *p.sum[q], Version: r.Version})
	}
}
