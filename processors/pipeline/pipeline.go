// Package pipeline runs every metric processor over the events of one
// Kafka partition of questline.events: one watermark, the all scope at once,
// and the clean scope on a lagged second pass over the same events.
//
// The clean scope leaves out users the bot processor flagged in a window
// overlapping the row's window. A bot window's flag is final only once the
// watermark has passed its end + lateness, so the clean pass processes an
// event only when the main watermark is Lag beyond the newest event time
// seen at that event: by then every bot window overlapping any window the
// event can reach is closed. Both passes see the same events in the same
// order, so the clean rows are a function of the partition's records, like
// the all rows.
package pipeline

import (
	"fmt"
	"strings"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/latency"
	"github.com/questline/questline/processors/lift"
	"github.com/questline/questline/processors/quest"
	"github.com/questline/questline/processors/window"
	"github.com/questline/questline/processors/yield"
)

// Config configures a partition pipeline.
type Config struct {
	// OutOfOrder is the watermark's bound on disorder. Default 30 s.
	OutOfOrder time.Duration
	// Clean enables the clean scope. Default true via DefaultConfig.
	Clean   bool
	Quest   quest.Config
	Latency latency.Config
	Yield   yield.Config
	Lift    lift.Config
	Bots    bots.Config
	// ForwardDevices makes Add record, for the device stage, every event
	// with a device_id that is on time for at least one bot window
	// (Output.Devices). Default false; processors.Run sets it.
	ForwardDevices bool
	// DevicePartitions is the number of the device stage's partitions
	// whose markers the clean pass waits for besides the watermark, their
	// flags applied (AddDeviceFlags). Default 0: no device flags, the
	// clean pass goes by the watermark alone; processors.Run sets it.
	DevicePartitions int
}

// DefaultConfig returns the SPEC §5 defaults.
func DefaultConfig() Config {
	return Config{
		OutOfOrder: 30 * time.Second,
		Clean:      true,
		Quest:      quest.DefaultConfig(),
		Latency:    latency.DefaultConfig(),
		Yield:      yield.DefaultConfig(),
		Lift:       lift.DefaultConfig(),
		Bots:       bots.DefaultConfig(),
	}
}

// Lag returns how far the clean pass trails the main watermark: the longest
// metric window, plus a bot window and its lateness.
func (c *Config) Lag() time.Duration {
	longest := max(c.Quest.Window.Size, c.Latency.Window.Size, c.Yield.Window.Size)
	return longest + c.Bots.Window.Size + c.Bots.Window.Lateness
}

// DedupHorizon is how far behind the watermark an event id is remembered
// (ms): past it, a copy of the event is late for every window of every
// processor (the clean pass's lag, which holds the longest window, the
// longest lateness, the disorder bound).
func (c *Config) DedupHorizon() int64 {
	lateness := max(c.Quest.Window.Lateness, c.Latency.Window.Lateness, c.Yield.Window.Lateness, c.Bots.Window.Lateness)
	return (c.Lag() + lateness + c.OutOfOrder).Milliseconds()
}

// Processor names, as in the late-event records and metrics.
const (
	NameQuest   = "quest_completion"
	NameLatency = "conversion_latency"
	NameYield   = "offer_yield"
	NameLift    = "creator_lift"
	NameBots    = "bot_signals"
)

// Late is the record of an event that missed at least one of its windows
// (or a finalized drop) in the all scope.
type Late struct {
	EventID   string
	Type      event.Type
	UserID    string
	EventTime int64
	Watermark int64
	Processor string
	Missed    int // windows missed
}

// Output is what a Flush returns. The slices are reused by the next Flush.
type Output struct {
	Quest       []quest.Row
	Latency     []latency.Row
	Conversions []latency.Conversion
	Yield       []yield.Row
	Integrity   []yield.IntegrityRow
	Lift        []lift.Row
	Bots        []bots.Row
	Late        []Late
	Devices     []DeviceEvent
}

// DeviceEvent is an event forwarded to the device stage: its record (the
// fields the device bot signals read, see deviceRecord) and
// the first bot window (start, Unix ms) that was still open at the source,
// so the device stage decides lateness as the source did.
type DeviceEvent struct {
	Lo     int64
	Offset int64 // of the source record (AddRecord), for de-duplication
	Record []byte
}

type scope struct {
	quest   *quest.Processor
	latency *latency.Processor
	yield   *yield.Processor
	lift    *lift.Processor
}

// Partition is the pipeline of one partition. It is not safe for
// concurrent use.
type Partition struct {
	cfg   Config
	cat   *catalog.Catalog
	wm    window.Watermark
	flags *bots.Flags
	bots  *bots.Processor
	all   scope

	clean   *scope
	cleanWM window.Watermark
	lag     int64
	queue   cleanQueue // the events waiting for the clean pass
	log     LogReader  // reads them again, if set (ReadCleanFrom)
	err     error      // the first error of log: the clean pass stops
	// devMarks are the device partitions' markers (AddDeviceFlags);
	// flagsNext is the offset of the flags log to apply next.
	devMarks  []int64
	flagsNext int64
	wmQueued  int64 // the last watermark entry's (Advance); 0 after a restore: a second one is harmless
	// cleanTaken counts the entries the clean pass took (CleanProgress).
	cleanTaken uint64
	scratch    event.Event
	enc        []byte // an event's record, encoded again (Add)

	out    Output
	stats  Stats
	offset int64 // of the record being added (AddRecord)
	seen   dedup // event ids within the horizon
}

// Stats are a partition's running totals.
type Stats struct {
	Events       uint64
	Duplicates   uint64    // events dropped as a repeated event_id
	SeenIDs      int       // event ids remembered for de-duplication
	Late         [5]uint64 // by processor: quest, latency, yield, lift, bots
	CleanPending int       // events waiting for the clean pass
	// State size, all scope: live panes of every windowed processor,
	// users with attribution state, auctions, (drop, user) lift facts,
	// flagged entities.
	Panes, AttributionUsers, Auctions, LiftUsers, Flagged int
}

// New returns the pipeline of one partition. cat is the catalog, shared by
// the partitions of a process and updated by the caller.
func New(cfg Config, cat *catalog.Catalog) (*Partition, error) {
	p := &Partition{cfg: cfg, cat: cat, wm: window.NewWatermark(cfg.OutOfOrder), cleanWM: window.NewWatermark(cfg.OutOfOrder)}
	p.seen = newDedup(cfg.DedupHorizon())
	p.flags = bots.NewFlags(cfg.Bots.Window)
	p.devMarks = make([]int64, cfg.DevicePartitions)
	for i := range p.devMarks {
		p.devMarks[i] = window.None
	}
	var err error
	if p.bots, err = bots.New(cfg.Bots, cat, p.flags); err != nil {
		return nil, err
	}
	if p.all, err = newScope(cfg, window.ScopeAll, cat, nil, nil, true); err != nil {
		return nil, err
	}
	if cfg.Clean {
		c, err := newScope(cfg, window.ScopeClean, cat, p.flags.Filter, p.flags, false)
		if err != nil {
			return nil, err
		}
		p.clean = &c
		p.lag = cfg.Lag().Milliseconds()
	}
	return p, nil
}

func newScope(cfg Config, name string, cat *catalog.Catalog, filter window.Filter, exclude lift.Excluder, conversions bool) (scope, error) {
	var s scope
	var err error
	if s.quest, err = quest.New(cfg.Quest, name, filter); err != nil {
		return s, err
	}
	lc := cfg.Latency
	lc.Conversions = conversions
	if s.latency, err = latency.New(lc, name, filter); err != nil {
		return s, err
	}
	if s.yield, err = yield.New(cfg.Yield, name, filter); err != nil {
		return s, err
	}
	s.lift = lift.New(cfg.Lift, name, cat, exclude)
	return s, nil
}

// LogReader returns the value of the record at offset of the partition's
// log, which the partition was given earlier (AddRecord). The bytes must
// stay unchanged until the next call. An error is final for the partition
// (Partition.Err): return one only when the record cannot be read (gone
// from the log, or the reader stopped), after retrying what can be.
type LogReader func(offset int64) ([]byte, error)

// ReadCleanFrom makes the clean pass read the events it waits for from
// the partition's log through r when it takes them, instead of holding
// them: the queue keeps each AddRecord's offset (two or three bytes)
// rather than a copy of its record (about 120). Entries queued before
// (by Add, or restored from a snapshot) keep their records. Default: no
// reader, every event held.
func (p *Partition) ReadCleanFrom(r LogReader) { p.log = r }

// Err returns the error that stopped the clean pass (from the LogReader),
// or nil. The clean pass of a partition with an error takes no more
// events (the one it could not read stays first in its queue, so the
// state, and a snapshot of it, is the state before the attempt): its
// caller should stop, and restore it from a snapshot.
func (p *Partition) Err() error { return p.err }

// AddRecord is Add for the event e decoded (event.DecodeBinary) from rec,
// the value of the record at offset of the source partition (the offset
// goes with the event to the device stage): the clean pass's queue keeps
// offset (ReadCleanFrom) or a copy of rec, and the device stage a copy of
// rec, instead of encoding e again. e must be as decoded.
func (p *Partition) AddRecord(rec []byte, e *event.Event, offset int64) {
	p.offset = offset
	p.add(e, rec)
}

// Add processes one event of the partition, in partition order. Catalog
// events update the catalog.
func (p *Partition) Add(e *event.Event) { p.add(e, nil) }

// add is Add; rec, if not nil, is the encoding of e.
func (p *Partition) add(e *event.Event, rec []byte) {
	p.stats.Events++
	if !p.seen.first(e.ID, e.EventTime, p.wm.Time()) {
		p.stats.Duplicates++
		return
	}
	if p.cat.Apply(e) {
		if due, passed := p.all.lift.EndPassed(e.DropID); e.DropID != "" && passed {
			// A drop's end that came after its final row's time (see
			// lift.Processor.advance): a late event of lift. Every
			// partition holding the drop records it (a copy reaches each),
			// and window_late_events keeps one row of an event, whichever
			// was inserted last: its watermark is the one the final row
			// was due at, the same everywhere, not this partition's.
			p.late(e, due, NameLift, 3, 1)
		}
		return
	}
	wm := p.wm.Observe(e.EventTime)
	p.late(e, wm, NameQuest, 0, p.all.quest.Add(e, wm))
	p.late(e, wm, NameLatency, 1, p.all.latency.Add(e, wm))
	p.late(e, wm, NameYield, 2, p.all.yield.Add(e, wm))
	p.late(e, wm, NameLift, 3, p.all.lift.Add(e, wm))
	p.late(e, wm, NameBots, 4, p.bots.Add(e, wm))
	if p.cfg.ForwardDevices && e.DeviceID != "" && bots.Counted(e.Type) {
		spec := p.cfg.Bots.Window
		first, last := spec.Starts(e.EventTime)
		// Windows closed at wm start at or before this one.
		lo := max(first, window.Floor(wm-spec.Size.Milliseconds()-spec.Lateness.Milliseconds(), spec.Slide.Milliseconds())+spec.Slide.Milliseconds())
		if lo <= last {
			p.out.Devices = append(p.out.Devices, DeviceEvent{Lo: lo, Offset: p.offset, Record: p.deviceRecord(e)})
		}
	}
	if p.clean != nil {
		switch {
		case rec != nil && p.log != nil:
			p.queue.pushOffset(p.offset, p.wm.Max()+p.lag)
		case rec != nil:
			p.queue.push(rec, p.wm.Max()+p.lag)
		default:
			p.enc = event.AppendBinary(p.enc[:0], e)
			p.queue.push(p.enc, p.wm.Max()+p.lag)
		}
		p.releaseClean()
	}
}

// late records e as late for processor name (index i in Stats.Late) if
// it missed windows: five calls per event, nearly all with none missed,
// so the test is inlined and the record is made in addLate.
func (p *Partition) late(e *event.Event, wm int64, name string, i, missed int) {
	if missed != 0 {
		p.addLate(e, wm, name, i, missed)
	}
}

func (p *Partition) addLate(e *event.Event, wm int64, name string, i, missed int) {
	p.stats.Late[i]++
	// The record of a late event waits for the next flush and its write:
	// its strings must not keep the event's record alive.
	p.out.Late = append(p.out.Late, Late{
		EventID: strings.Clone(e.ID), Type: e.Type, UserID: strings.Clone(e.UserID), EventTime: e.EventTime,
		Watermark: wm, Processor: name, Missed: missed,
	})
}

// releaseClean runs the clean pass over the queued entries the watermark
// and the device stage's markers allow (cleanLimit).
func (p *Partition) releaseClean() {
	wm := p.cleanLimit()
	for p.err == nil && p.queue.ready(wm) {
		p.cleanTaken++ // (counted as attempted: a failed read stops the pass)
		e := &p.scratch
		if offset, ok := p.queue.nextOffset(); ok {
			// Read before the entry is taken: after an error the queue,
			// and so the partition's state, is as before the attempt.
			rec, err := p.readLog(offset)
			if err == nil {
				if err = event.DecodeBinaryShared(rec, e); err != nil {
					// It decoded at this offset before: not the same log.
					err = fmt.Errorf("pipeline: clean pass: the record at offset %d no longer decodes: %w", offset, err)
				}
			}
			if err != nil {
				p.err = err
				return
			}
			p.queue.take()
		} else {
			need := p.queue.need
			rec, _ := p.queue.take()
			if len(rec) == 0 { // a watermark entry (Advance)
				p.raiseClean(need - p.lag)
				continue
			}
			if event.DecodeBinaryShared(rec, e) != nil {
				panic("pipeline: clean queue record does not decode") // we encoded it, or restore decoded it
			}
		}
		cwm := p.cleanWM.Observe(e.EventTime)
		p.clean.quest.Add(e, cwm)
		p.clean.latency.Add(e, cwm)
		p.clean.yield.Add(e, cwm)
		p.clean.lift.Add(e, cwm)
	}
}

func (p *Partition) readLog(offset int64) ([]byte, error) {
	if p.log == nil {
		return nil, fmt.Errorf("pipeline: clean pass: the event at offset %d is in the log, and the partition has no LogReader", offset)
	}
	rec, err := p.log(offset)
	if err != nil {
		return nil, fmt.Errorf("pipeline: clean pass: reading offset %d: %w", offset, err)
	}
	return rec, nil
}

// Advance moves the event-time watermark to wm without an event (the end
// of a bounded input, or a restored snapshot).
func (p *Partition) Advance(wm int64) {
	p.wm.Restore(max(p.wm.Max(), wm+p.cfg.OutOfOrder.Milliseconds()))
	wm = p.wm.Time()
	p.all.quest.Advance(wm)
	p.all.latency.Advance(wm)
	p.all.yield.Advance(wm)
	p.all.lift.Advance(wm)
	p.bots.Advance(wm)
	if p.clean != nil && wm != window.None && wm > p.wmQueued {
		// The clean pass moves its watermark here too, when it reaches
		// this point of the log (raiseClean): never at a point set by
		// when the device stage's markers were read (helper-51).
		p.wmQueued = wm
		if p.queue.n == 0 && p.err == nil && wm <= p.cleanLimit() {
			p.raiseClean(wm - p.lag) // the entry would be taken at once (helper-52)
		} else {
			p.queue.pushWatermark(wm)
			p.releaseClean()
		}
	}
}

// raiseClean moves the clean pass's watermark to cwm without an event, if
// that is later: a watermark entry of the queue (Advance), taken when the
// clean pass got to it. Windows close in the clean scope as in the all
// scope, the lag behind.
func (p *Partition) raiseClean(cwm int64) {
	if cwm <= p.cleanWM.Time() {
		return
	}
	p.cleanWM.Restore(cwm + p.cfg.OutOfOrder.Milliseconds())
	p.clean.quest.Advance(cwm)
	p.clean.latency.Advance(cwm)
	p.clean.yield.Advance(cwm)
	p.clean.lift.Advance(cwm)
}

// Flush emits what the emission watermark emitWM allows (the event-time
// watermark, or more to emit windows early without closing them) and
// returns every row produced since the last Flush.
func (p *Partition) Flush(emitWM int64) *Output {
	o := &p.out
	o.Quest = append(o.Quest, p.all.quest.Flush(emitWM)...)
	r, c := p.all.latency.Flush(emitWM)
	o.Latency, o.Conversions = append(o.Latency, r...), append(o.Conversions, c...)
	y, i := p.all.yield.Flush(emitWM)
	o.Yield, o.Integrity = append(o.Yield, y...), append(o.Integrity, i...)
	o.Lift = append(o.Lift, p.all.lift.Flush()...)
	o.Bots = append(o.Bots, p.bots.Flush(emitWM)...)
	if p.clean != nil {
		// The clean pass trails by the lag; so does its emission. (None is
		// the minimum int64: never subtract from it.)
		cEmit := p.cleanWM.Time()
		if emitWM != window.None {
			if p.queue.n == 0 { // nothing held back: early emission may run ahead
				cEmit = max(emitWM-p.lag, cEmit)
			} else {
				cEmit = min(emitWM-p.lag, cEmit)
			}
		}
		o.Quest = append(o.Quest, p.clean.quest.Flush(cEmit)...)
		r, _ := p.clean.latency.Flush(cEmit)
		o.Latency = append(o.Latency, r...)
		y, i := p.clean.yield.Flush(cEmit)
		o.Yield, o.Integrity = append(o.Yield, y...), append(o.Integrity, i...)
		o.Lift = append(o.Lift, p.clean.lift.Flush()...)
		if wm := p.cleanWM.Time(); wm != window.None {
			// Flags are only ever read for closed bot windows; keep them as
			// long as any clean row can ask: a window back, or a drop's
			// whole live and attribution window.
			p.flags.Prune(wm - p.lag - p.cfg.Lift.Attribution.Milliseconds() - p.cfg.Lift.Lateness.Milliseconds() - p.cfg.Lift.MaxLive.Milliseconds())
		}
	}
	return o
}

// Reset clears the rows of the last Flush, once the caller has written them.
func (p *Partition) Reset() {
	o := &p.out
	o.Quest, o.Latency, o.Conversions = o.Quest[:0], o.Latency[:0], o.Conversions[:0]
	o.Yield, o.Integrity, o.Lift, o.Bots, o.Late = o.Yield[:0], o.Integrity[:0], o.Lift[:0], o.Bots[:0], o.Late[:0]
	clear(o.Devices)
	o.Devices = o.Devices[:0]
}

// Catalog returns the partition's catalog (to fold in catalog events from
// other partitions; see processors.Run).
func (p *Partition) Catalog() *catalog.Catalog { return p.cat }

// CleanWatermark returns the clean pass's event-time watermark
// (window.None without the clean scope, or before its first event): it
// trails Watermark by the lag, and more while the pass waits.
func (p *Partition) CleanWatermark() int64 {
	if p.clean == nil {
		return window.None
	}
	return p.cleanWM.Time()
}

// CleanProgress returns the number of entries the clean pass has taken
// since the partition was made or restored, and whether it is held back by
// something other than the watermark: an entry the watermark allows waits
// for the device stage's markers (or a log read that failed). A pass held
// back while its count stays put is stuck.
func (p *Partition) CleanProgress() (taken uint64, held bool) {
	if p.clean == nil {
		return 0, false
	}
	return p.cleanTaken, p.queue.n > 0 && p.queue.need <= p.wm.Time()
}

// Watermark returns the partition's event-time watermark.
func (p *Partition) Watermark() int64 { return p.wm.Time() }

// Drained reports whether the partition holds nothing a watermark could
// still emit or finalize: no live pane in either scope, no conversion
// waiting, no auction or live drop, no event waiting for the clean pass.
// What remains (attribution completions, bot flags, event ids) emits
// nothing by itself.
func (p *Partition) Drained() bool {
	scopes := []*scope{&p.all}
	if p.clean != nil {
		// Watermark entries alone emit nothing once the clean panes are
		// empty (checked below): a partition waiting for the device
		// stage's marker is drained, and idle writes it a watermark
		// record once per bot window, not every IdleTimeout (helper-52).
		if p.queue.n > p.queue.marks {
			return false
		}
		scopes = append(scopes, p.clean)
	}
	if p.bots.Panes() > 0 {
		return false
	}
	for _, s := range scopes {
		if s.quest.Panes()+s.latency.Panes()+s.latency.Pending()+s.yield.Panes()+s.yield.Auctions()+s.lift.Users() > 0 {
			return false
		}
	}
	return true
}

// Stats returns the running totals.
func (p *Partition) Stats() Stats {
	s := p.stats
	s.CleanPending = p.queue.n - p.queue.marks
	s.Panes = p.all.quest.Panes() + p.all.latency.Panes() + p.all.yield.Panes() + p.bots.Panes()
	s.AttributionUsers = p.all.latency.Users()
	s.Auctions = p.all.yield.Auctions()
	s.LiftUsers = p.all.lift.Users()
	s.Flagged = p.flags.Len()
	s.SeenIDs = p.seen.len()
	return s
}

// Done returns the partition's watermark in the terms of a row's Until:
// rows of the all scope are final once the watermark passes their window's
// end plus lateness; rows of the clean scope once the clean pass's own
// watermark does, and that trails the watermark by the lag and more (the
// clean pass takes an event only when the watermark is the lag past the
// newest event time seen before it, and its watermark is then the disorder
// bound behind that). So Done is the watermark, or the clean pass's plus
// the lag if that is lower: a row whose window's end + lateness (+ the lag
// in the clean scope) is at or below Done is never emitted again. The
// merge stage forgets identities on that promise.
func (p *Partition) Done() int64 {
	wm := p.wm.Time()
	if p.clean == nil || wm == window.None {
		return wm
	}
	cwm := p.cleanWM.Time()
	if cwm == window.None {
		return window.None
	}
	return min(wm, cwm+p.lag)
}
