package pipeline

// A property test of docs/processors.md, "Partitions, processes, exactly
// once" (1, 2): a partition's rows are a function of its record prefix, so
// the FINAL tables (per row identity, the highest version; equal versions:
// the later insert) are the same whether one process ran the log through,
// or a process wrote rows at its flushes, took a snapshot at k1, went on to
// k2 writing rows and crashed, and a successor restored the k1 snapshot
// (through its encoding, as processors/snapshots.go does) and replayed
// k1.. to the end with another flush cadence, writing into the same tables.
// Every table a Partition produces is compared (window tables with their
// versions, quest_conversions, bot_signals, window_late_events), and so is
// the device stage's input (forwarded events, re-sent ones dropped by
// offset as devicePart.apply does) and its rows (their versions only with
// REPLAY_VERSIONS: see rpKnown). Written by helper-46 (session 15).

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/internal/streamgen"
	"github.com/questline/questline/processors/window"
)

// rpEntry is a record of the partition's log: an event, or (rec nil) a
// watermark record (kafka.WatermarkRecord) of watermark wm. The flags say
// which runs flush after applying it.
type rpEntry struct {
	rec              []byte
	wm               int64
	refFlush, p1, p2 bool
	fixed            bool // not removed by minimization
}

// rpScenario: p1 applies log[:crash] (flushing where p1 says), flushes and
// freezes a snapshot after log[:snap] (written at its next flush, as the
// source stage writes a frozen state in the background), loses what it
// emitted after its last flush before crash; p2 restores the snapshot and
// applies log[snap:]. The reference applies the log at refFlush. Every run
// flushes after the last record (a watermark far ahead).
type rpScenario struct {
	cfg         Config
	log         []rpEntry
	snap, crash int
	freezeLag   bool // write p1's frozen snapshot only at its next flush
	devEvery    int  // the device stage polls after every devEvery-th source flush
}

// rpTables is a FINAL view of the tables: table → identity → row.
type rpTables map[string]map[string]rpRow

type rpRow struct {
	v       uint64
	content string
}

func (t rpTables) put(table, id string, v uint64, row any) {
	b, err := json.Marshal(row)
	if err != nil {
		panic(err)
	}
	m := t[table]
	if m == nil {
		m = map[string]rpRow{}
		t[table] = m
	}
	if old, ok := m[id]; ok && old.v > v {
		return
	}
	m[id] = rpRow{v, string(b)}
}

func dtSec(ms int64) int64 { return ms / 1000 } // DateTime columns: seconds

// write inserts a flush's rows into t, keyed as the tables' ORDER BY
// (sinks/clickhouse/migrations/0100_windows.sql).
func (t rpTables) write(o *Output, devMax *int64, dev *[]string) {
	for _, r := range o.Quest {
		t.put("quest_completion", fmt.Sprint(r.Scope, "|", r.QuestID, "|", dtSec(r.Start)), r.Version, r)
	}
	for _, r := range o.Latency {
		t.put("conversion_latency", fmt.Sprint(r.Scope, "|", r.QuestID, "|", dtSec(r.Start)), r.Version, r)
	}
	for _, r := range o.Conversions {
		t.put("quest_conversions", fmt.Sprint(dtSec(r.ConversionTime), "|", r.EventID), r.Version, r)
	}
	for _, r := range o.Lift {
		t.put("creator_lift", fmt.Sprint(r.Scope, "|", r.DropID, "|", dtSec(r.UpdatedAt), "|", r.Final), r.Version, r)
	}
	for _, r := range o.Yield {
		t.put("offer_yield", fmt.Sprint(r.Scope, "|", r.Placement, "|", r.BidderID, "|", dtSec(r.Start)), r.Version, r)
	}
	for _, r := range o.Integrity {
		t.put("bidstream_integrity", fmt.Sprint(r.Scope, "|", r.Placement, "|", r.Kind, "|", dtSec(r.Start)), r.Version, r)
	}
	for _, r := range o.Bots {
		t.put("bot_signals", fmt.Sprint(r.EntityType, "|", r.EntityID, "|", dtSec(r.Start)), r.Version, r)
	}
	for _, l := range o.Late {
		// ReplacingMergeTree without a version: the later insert.
		t.put("window_late_events", fmt.Sprint(l.Processor, "|", dtSec(l.EventTime), "|", l.EventID), 0, l)
	}
	for _, d := range o.Devices {
		// The device stage drops what a restored source re-sends.
		if d.Offset <= *devMax {
			continue
		}
		*devMax = d.Offset
		*dev = append(*dev, fmt.Sprintf("%d %d %x", d.Offset, d.Lo, d.Record))
	}
}

// rpResult is what a run left: the FINAL tables and the device stage's
// input.
type rpResult struct {
	tables rpTables
	dev    []string
}

type rpRun struct {
	t      testing.TB
	s      *rpScenario
	res    rpResult
	devMax int64
	// devApplied: the highest source offset the device stage applied.
	devApplied int64
	buf        []byte
	e          event.Event
	// The device stage (processors.devicePart with one source): its bots
	// processor, its watermark (the source's highest marker) and the
	// marker the current owner last sent.
	dev     *bots.Processor
	devWM   int64
	markWM  int64
	flushes int
	// The merge stage's view of this source: its highest Done marker, and
	// the owner's last one.
	maxDone, markDone int64
}

func (r *rpRun) read(off int64) ([]byte, error) {
	if off < 0 || off >= int64(len(r.s.log)) || r.s.log[off].rec == nil {
		return nil, fmt.Errorf("no event at offset %d", off)
	}
	r.buf = append(r.buf[:0], r.s.log[off].rec...)
	return r.buf, nil
}

func (r *rpRun) apply(p *Partition, i int) {
	en := &r.s.log[i]
	if en.rec == nil {
		p.Advance(en.wm)
	} else {
		if err := event.DecodeBinaryShared(en.rec, &r.e); err != nil {
			r.t.Fatal(err)
		}
		p.AddRecord(en.rec, &r.e, int64(i))
	}
	if err := p.Err(); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rpRun) flush(p *Partition, write bool) {
	wm := p.Watermark()
	o := p.Flush(wm)
	if write {
		r.checkUntil(o)
		r.res.tables.write(o, &r.devMax, &r.res.dev)
		// As source.flush: the device events, then the watermark marker
		// if it changed; the merge stage's Done marker likewise.
		var e event.Event
		for _, d := range o.Devices {
			if d.Offset > r.devApplied {
				r.devApplied = d.Offset
				if err := event.DecodeBinaryShared(d.Record, &e); err != nil {
					r.t.Fatal(err)
				}
				r.dev.AddRange(&e, r.devWM, window.Range{Lo: d.Lo, Hi: 1<<63 - 1})
			}
		}
		if wm != window.None && wm != r.markWM {
			r.markWM = wm
			if wm > r.devWM {
				r.devWM = wm
				r.dev.Advance(wm)
			}
		}
		if done := p.Done(); done != window.None && done != r.markDone {
			r.markDone = done
			r.maxDone = max(r.maxDone, done)
		}
		r.flushes++
		if r.flushes%r.s.devEvery == 0 {
			r.devFlush()
		}
	}
	p.Reset()
}

// devFlush is a poll of the device stage: its rows into bot_signals.
func (r *rpRun) devFlush() {
	for _, row := range r.dev.Flush(r.devWM) {
		r.res.tables.put("bot_signals/device", fmt.Sprint(row.EntityType, "|", row.EntityID, "|", dtSec(row.Start)), row.Version, row)
	}
}

// checkUntil checks the rows of a flush against the merge stage's
// eviction (processors/merge.go, evict): once this source's Done marker
// has passed a row's Until (source.until), the stage may have forgotten
// the identity, and a partial for it starts a row of this source alone.
// That is harmless only for a partial the merged row already held: a
// lower version than the one written, or the same version and content.
func (r *rpRun) checkUntil(o *Output) {
	c := &r.s.cfg
	lag := c.Lag().Milliseconds()
	until := func(scope string, end int64, late time.Duration) int64 {
		u := end + late.Milliseconds()
		if scope == window.ScopeClean {
			u += lag
		}
		return u
	}
	check := func(table, id string, v uint64, u int64, row any) {
		if r.maxDone == window.None || u > r.maxDone {
			return
		}
		b, _ := json.Marshal(row)
		old, ok := r.res.tables[table][id]
		if ok && (old.v > v || old.v == v && old.content == string(b)) {
			return
		}
		r.res.tables.put("merge:"+table, id, v, fmt.Sprintf("partial after its marker: until %d, marker %d, written %+v", u, r.maxDone, old))
	}
	for _, x := range o.Quest {
		check("quest_completion", fmt.Sprint(x.Scope, "|", x.QuestID, "|", dtSec(x.Start)), x.Version, until(x.Scope, x.End, c.Quest.Window.Lateness), x)
	}
	for _, x := range o.Latency {
		check("conversion_latency", fmt.Sprint(x.Scope, "|", x.QuestID, "|", dtSec(x.Start)), x.Version, until(x.Scope, x.End, c.Latency.Window.Lateness), x)
	}
	for _, x := range o.Yield {
		check("offer_yield", fmt.Sprint(x.Scope, "|", x.Placement, "|", x.BidderID, "|", dtSec(x.Start)), x.Version, until(x.Scope, x.End, c.Yield.Window.Lateness), x)
	}
	for _, x := range o.Integrity {
		check("bidstream_integrity", fmt.Sprint(x.Scope, "|", x.Placement, "|", x.Kind, "|", dtSec(x.Start)), x.Version, until(x.Scope, x.End, c.Yield.Window.Lateness), x)
	}
	for _, x := range o.Lift {
		var late time.Duration
		if x.Final {
			late = c.Lift.Lateness
		}
		check("creator_lift", fmt.Sprint(x.Scope, "|", x.DropID, "|", dtSec(x.UpdatedAt), "|", x.Final), x.Version, until(x.Scope, x.UpdatedAt, late), x)
	}
}

func (r *rpRun) fresh() *Partition {
	p, err := New(r.s.cfg, catalog.New())
	if err != nil {
		r.t.Fatal(err)
	}
	p.ReadCleanFrom(r.read)
	return p
}

func runScenario(t testing.TB, s *rpScenario, replay bool) rpResult {
	r := &rpRun{t: t, s: s, res: rpResult{tables: rpTables{}}, devMax: -1, devApplied: -1,
		devWM: window.None, markWM: window.None, maxDone: window.None, markDone: window.None}
	dc := s.cfg.Bots
	dc.Entity = bots.EntityDevice
	var err error
	if r.dev, err = bots.New(dc, nil, nil); err != nil {
		t.Fatal(err)
	}
	p := r.fresh()
	if !replay {
		for i := range s.log {
			r.apply(p, i)
			if s.log[i].refFlush || i == len(s.log)-1 {
				r.flush(p, true)
			}
		}
		r.devFlush()
		return r.res
	}
	var frozen *Frozen
	var snap []byte
	writeSnap := func() {
		if frozen != nil && snap == nil {
			var b bytes.Buffer
			if _, err := frozen.WriteTo(&b); err != nil {
				t.Fatal(err)
			}
			snap = b.Bytes()
		}
	}
	for i := range s.crash {
		r.apply(p, i)
		if i+1 == s.snap {
			r.flush(p, true)
			frozen = p.Freeze()
			if !s.freezeLag {
				writeSnap()
			}
		} else if s.log[i].p1 {
			r.flush(p, true)
			writeSnap()
		}
	}
	// The crash: what p1 emitted since its last flush is lost, unwritten.
	r.flush(p, false)
	writeSnap()
	// A new owner: it sends its first markers whatever they are.
	r.markWM, r.markDone = window.None, window.None
	q, err := Restore(s.cfg, catalog.New(), bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	q.ReadCleanFrom(r.read)
	if err := q.CheckNext(int64(s.snap)); err != nil {
		t.Fatal(err)
	}
	for i := s.snap; i < len(s.log); i++ {
		r.apply(q, i)
		if s.log[i].p2 || i == len(s.log)-1 {
			r.flush(q, true)
		}
	}
	r.devFlush()
	return r.res
}

// rpDiff lists the rows that differ, "table identity: ref | replay".
func rpDiff(a, b rpResult) []string {
	var out []string
	names := map[string]bool{}
	for k := range a.tables {
		names[k] = true
	}
	for k := range b.tables {
		names[k] = true
	}
	for name := range names {
		ids := map[string]bool{}
		for id := range a.tables[name] {
			ids[id] = true
		}
		for id := range b.tables[name] {
			ids[id] = true
		}
		for id := range ids {
			x, okx := a.tables[name][id]
			y, oky := b.tables[name][id]
			if okx != oky || x != y {
				fx, fy := "(none)", "(none)"
				if okx {
					fx = x.content
				}
				if oky {
					fy = y.content
				}
				kind := ""
				switch {
				case okx && oky && unversioned(fx) == unversioned(fy):
					kind = " (version only)"
				case !okx || !oky:
					kind = " (one side only)"
				}
				out = append(out, fmt.Sprintf("%s %s%s:\n    uninterrupted %s\n    replayed      %s", name, id, kind, fx, fy))
			}
		}
	}
	if !slices.Equal(a.dev, b.dev) {
		out = append(out, fmt.Sprintf("device stage input: %d vs %d forwarded events", len(a.dev), len(b.dev)))
	}
	sort.Strings(out)
	return out
}

// unversioned returns a row's JSON without its version.
func unversioned(row string) string {
	var m map[string]any
	if json.Unmarshal([]byte(row), &m) != nil {
		return row
	}
	delete(m, "Version")
	b, _ := json.Marshal(m)
	return string(b)
}

func rpTable(d string) string { return d[:strings.IndexByte(d, ' ')] }

// rpLog builds a partition's log from a generated stream: metronome bots
// (runs of events 2 s apart, sometimes broken by a late event), records
// held back in arrival order (a bid_request after its auction's other
// events, a completion after its conversion), catalog events where their
// time comes in arrival order (the producer's copies), idle spells
// (arrivals shifted, watermark records as the source stage writes for a
// quiet partition), retries (an event again, same id), some events
// delayed far beyond the allowed lateness, and a last watermark far ahead.
func rpLog(rng *rand.Rand, cfg Config, sc streamgen.Config, farLate, holdBack int) []rpEntry {
	events := streamgen.Generate(sc)
	ooo := cfg.OutOfOrder.Milliseconds()
	start := events[0].ReceivedAt
	span := events[len(events)-1].ReceivedAt - start
	// Metronome bots.
	for j := range rng.IntN(5) {
		user := fmt.Sprintf("tick%d", j%2)
		at := start + rng.Int64N(span)
		n := 18 + rng.IntN(10)
		for i := range n {
			t := at + int64(i)*2000 + rng.Int64N(40)
			typ := []event.Type{event.QuestStarted, event.DropViewed, event.QuestAbandoned}[rng.IntN(3)]
			events = append(events, event.Event{ID: fmt.Sprintf("m%d-%d", j, i), Type: typ, UserID: user, DeviceID: "d" + user, Country: "DE", EdgeCountry: "DE",
				QuestID: "q0", DropID: "drop0", EventTime: t, TS: t, ReceivedAt: t, Source: event.SourceClient})
		}
		if rng.IntN(2) == 0 { // breaks the rhythm, late
			t := at + int64(n/2)*2000 + 1000
			events = append(events, event.Event{ID: fmt.Sprintf("m%d-x", j), Type: event.QuestStarted, UserID: user, DeviceID: "d" + user, Country: "DE", EdgeCountry: "DE",
				QuestID: "q0", EventTime: t, TS: t, ReceivedAt: at + int64(n)*2000 + rng.Int64N(5*60_000), Source: event.SourceClient})
		}
	}
	slices.SortStableFunc(events, func(a, b event.Event) int { return cmp.Compare(a.ReceivedAt, b.ReceivedAt) })
	// Held back in arrival order.
	if holdBack > 0 {
		var out []event.Event
		type held struct {
			at int
			e  event.Event
		}
		var hs []held
		for i, e := range events {
			for k := 0; k < len(hs); {
				if hs[k].at <= i {
					h := hs[k].e
					h.ReceivedAt = e.ReceivedAt
					out = append(out, h)
					hs = slices.Delete(hs, k, k+1)
					continue
				}
				k++
			}
			if rng.IntN(holdBack) == 0 {
				hs = append(hs, held{i + 1 + rng.IntN(300), e})
				continue
			}
			out = append(out, e)
		}
		for _, h := range hs {
			out = append(out, h.e)
		}
		events = out
	}
	// Auction events held past their auction's grace (anchor + slide +
	// lateness + 30 min): yield must evict the old auction in Add whether
	// or not a Flush did (helper-48: no seed reached that path).
	if farLate > 0 {
		var out, late []event.Event
		for _, e := range events {
			for len(late) > 0 && late[0].ReceivedAt+50*60_000 <= e.ReceivedAt {
				h := late[0]
				h.ReceivedAt = e.ReceivedAt
				out = append(out, h)
				late = late[1:]
			}
			if e.AuctionID != "" && e.Type != event.BidRequest && rng.IntN(farLate) == 0 {
				late = append(late, e)
				continue
			}
			out = append(out, e)
		}
		events = append(out, late...)
	}
	cat := []event.Event{
		{ID: "cat-q1", Type: event.QuestDefined, QuestID: "q1", MinDurationMs: 100_000, EventTime: start},
		{ID: "cat-d1", Type: event.DropScheduled, DropID: "drop1", CreatorID: "cr1", StartsAt: start + span/3, EndsAt: start + span/2, Inventory: 5, EventTime: start + span/10},
		{ID: "cat-d0s", Type: event.DropStarted, DropID: "drop0", CreatorID: "cr0", EventTime: start + span/8},
		{ID: "cat-d0e", Type: event.DropEnded, DropID: "drop0", EventTime: start + span*5/8},
	}
	var out []rpEntry
	var shift int64
	var retries []event.Event
	ci := 0
	push := func(e *event.Event) {
		out = append(out, rpEntry{rec: event.AppendBinary(nil, e)})
	}
	for i := range events {
		e := events[i]
		if rng.IntN(400) == 0 {
			// An idle spell: the partition is quiet, the source stage
			// writes watermark records (the wall clock − the bound).
			gap := (1 + rng.Int64N(12)) * 60_000
			last := e.ReceivedAt + shift
			for w := last + 30_000; w < last+gap; w += 20_000 + rng.Int64N(60_000) {
				out = append(out, rpEntry{wm: w - ooo})
			}
			shift += gap
		}
		e.ReceivedAt += shift
		e.EventTime += shift
		e.TS = e.EventTime
		for ci < len(cat) && cat[ci].EventTime+shift <= e.ReceivedAt {
			c := cat[ci]
			c.EventTime += shift
			if c.StartsAt != 0 {
				c.StartsAt += shift
				c.EndsAt += shift
			}
			push(&c)
			ci++
		}
		if farLate > 0 && rng.IntN(farLate) == 0 {
			// Beyond the allowed lateness (10 min) for some windows.
			e.EventTime -= 5*60_000 + rng.Int64N(15*60_000)
			e.TS = e.EventTime
		}
		push(&e)
		if rng.IntN(150) == 0 {
			retries = append(retries, e)
		}
		if len(retries) > 0 && rng.IntN(60) == 0 {
			r := retries[0]
			retries = retries[1:]
			push(&r)
		}
	}
	last := events[len(events)-1].ReceivedAt + shift
	out = append(out, rpEntry{wm: last + 48*3600_000, fixed: true})
	return out
}

// rpCadence returns a flush decision per record: every n-th, at random,
// or only at the end.
func rpCadence(rng *rand.Rand) (string, func(i int) bool) {
	switch k := rng.IntN(6); k {
	case 0:
		return "every record", func(int) bool { return true }
	case 1, 2:
		n := []int{3, 17, 60, 250, 1000}[rng.IntN(5)]
		return "every " + strconv.Itoa(n), func(i int) bool { return i%n == n-1 }
	case 3:
		p := []int{5, 40, 300}[rng.IntN(3)]
		return "random 1/" + strconv.Itoa(p), func(int) bool { return rng.IntN(p) == 0 }
	default:
		return "once at the end", func(int) bool { return false }
	}
}

func rpScenarioFor(seed uint64) (*rpScenario, string) {
	rng := rand.New(rand.NewPCG(seed, 46))
	cfg := testConfig()
	cfg.Clean = true
	cfg.ForwardDevices = true // as processors.Run sets it
	if rng.IntN(2) == 0 {
		cfg.Bots.Velocity, cfg.Bots.ClaimBurst = 120, 5 // the defaults: metronome alone can flag
	}
	disorder := []int64{5 * sec, 20 * sec, 3 * minute, 12 * minute}[rng.IntN(4)]
	sc := streamgen.Config{Seed: seed, Events: 1500 + rng.IntN(3500), Disorder: disorder, Gap: 400, Users: 10 + rng.IntN(40), Drops: 2, Quests: 2 + rng.IntN(3)}
	farLate := []int{0, 50, 300}[rng.IntN(3)]
	holdBack := []int{0, 20, 100}[rng.IntN(3)]
	s := &rpScenario{cfg: cfg, log: rpLog(rng, cfg, sc, farLate, holdBack), freezeLag: rng.IntN(2) == 0}
	n := len(s.log)
	names := make([]string, 3)
	for j := range 3 {
		name, f := rpCadence(rng)
		names[j] = name
		for i := range s.log {
			switch v := f(i); j {
			case 0:
				s.log[i].refFlush = v
			case 1:
				s.log[i].p1 = v
			case 2:
				s.log[i].p2 = v
			}
		}
	}
	s.devEvery = 1 + rng.IntN(3)
	s.snap = 1 + rng.IntN(n-2)
	s.crash = s.snap + 1 + rng.IntN(n-1-s.snap)
	desc := fmt.Sprintf("seed %d: velocity %d, %d records, disorder %v, far late 1/%d, held back 1/%d, ref %s, p1 %s, snapshot at %d, crash at %d, p2 %s, freezeLag %v",
		seed, cfg.Bots.Velocity, n, time.Duration(disorder)*time.Millisecond, farLate, holdBack, names[0], names[1], s.snap, s.crash, names[2], s.freezeLag)
	return s, desc
}

// TestReplayFromOlderSnapshotProperty: random streams and scenarios; the
// replayed FINAL tables must equal the uninterrupted run's.
// REPLAY_SEEDS sets the number of seeds (default 30); REPLAY_MINIMIZE=1
// shrinks the first failing scenario and prints it.
func TestReplayFromOlderSnapshotProperty(t *testing.T) {
	seeds := 30
	if v := os.Getenv("REPLAY_SEEDS"); v != "" {
		seeds, _ = strconv.Atoi(v)
	}
	first := uint64(0)
	if v := os.Getenv("REPLAY_FIRST"); v != "" {
		f, _ := strconv.Atoi(v)
		first = uint64(f)
	}
	failed := map[string]int{}
	for seed := first; seed < first+uint64(seeds); seed++ {
		s, desc := rpScenarioFor(seed)
		ref := runScenario(t, s, false)
		if testing.Verbose() {
			var st []string
			for k, m := range ref.tables {
				st = append(st, fmt.Sprintf("%s=%d", k, len(m)))
			}
			sort.Strings(st)
			t.Logf("%s\n  rows: %v, device events %d", desc, st, len(ref.dev))
		}
		got := runScenario(t, s, true)
		d := rpKnown(rpDiff(ref, got))
		if skip := os.Getenv("REPLAY_SKIP"); skip != "" {
			// Tables left out, comma-separated (known differences).
			d = slices.DeleteFunc(d, func(x string) bool { return slices.Contains(strings.Split(skip, ","), rpTable(x)) })
		}
		if len(d) == 0 {
			continue
		}
		tabs := map[string]bool{}
		for _, x := range d {
			tabs[rpTable(x)] = true
		}
		for k := range tabs {
			failed[k]++
		}
		counts := map[string]int{}
		for _, x := range d {
			k := rpTable(x)
			for _, c := range []string{"(version only)", "(one side only)"} {
				if strings.Contains(x, c) {
					k += " " + c
				}
			}
			counts[k]++
		}
		t.Errorf("%s: %d rows differ %v; first:\n  %s", desc, len(d), counts, d[0])
		if os.Getenv("REPLAY_VERBOSE") != "" {
			t.Log(strings.Join(d, "\n"))
		}
		if os.Getenv("REPLAY_MINIMIZE") != "" {
			// The first table with a difference of content (REPLAY_TABLE:
			// that table).
			table := os.Getenv("REPLAY_TABLE")
			for _, x := range d {
				if table == "" && (os.Getenv("REPLAY_VERSIONS") != "" || !strings.Contains(x, "(version only)")) {
					table = rpTable(x)
				}
			}
			if table != "" {
				rpMinimize(t, s, table)
			}
			return
		}
	}
	if len(failed) > 0 {
		t.Logf("failing seeds by table: %v", failed)
	}
}

// rpKnown leaves out the differences known and accepted: a device
// window's version (never its content) depends on the source interleaving
// and flush cadence, since a range-restricted event bumps its whole
// pane's version (docs/processors.md, "Devices"). A per-part version
// would fix it but lower versions that older processes wrote, which
// ReplacingMergeTree and the merge stage would then prefer (helper-48);
// REPLAY_VERSIONS=1 shows them.
func rpKnown(d []string) []string {
	if os.Getenv("REPLAY_VERSIONS") != "" {
		return d
	}
	return slices.DeleteFunc(d, func(x string) bool {
		return rpTable(x) == "bot_signals/device" && strings.Contains(x, "(version only)")
	})
}

// rpFails reports whether s shows a difference in table.
func rpFails(t testing.TB, s *rpScenario, table string) bool {
	d := rpKnown(rpDiff(runScenario(t, s, false), runScenario(t, s, true)))
	for _, x := range d {
		if rpTable(x) == table && (os.Getenv("REPLAY_VERSIONS") != "" || !strings.Contains(x, "(version only)")) {
			return true
		}
	}
	return false
}

// rpMinimize removes records (then flushes) while the difference in table
// stays, and prints what is left.
func rpMinimize(t *testing.T, s *rpScenario, table string) {
	cur := *s
	cur.log = slices.Clone(s.log)
	remove := func(lo, hi int) *rpScenario {
		for i := lo; i < hi; i++ {
			if cur.log[i].fixed || i == cur.snap || i == cur.snap-1 || i == cur.crash-1 {
				return nil
			}
		}
		c := cur
		c.log = append(slices.Clone(cur.log[:lo]), cur.log[hi:]...)
		k := hi - lo
		if lo < cur.snap {
			c.snap -= k
		}
		if lo < cur.crash {
			c.crash -= k
		}
		if c.snap < 1 || c.crash <= c.snap {
			return nil
		}
		return &c
	}
	for chunk := len(cur.log) / 2; chunk >= 1; chunk /= 2 {
		for changed := true; changed; {
			changed = false
			for lo := 0; lo+chunk <= len(cur.log); {
				if c := remove(lo, lo+chunk); c != nil && rpFails(t, c, table) {
					cur = *c
					changed = true
					continue
				}
				lo += chunk
			}
		}
		// Also move the snapshot and crash points where that keeps it.
	}
	// Drop flushes that are not needed.
	for i := range cur.log {
		for _, f := range []*bool{&cur.log[i].refFlush, &cur.log[i].p1, &cur.log[i].p2} {
			if *f {
				*f = false
				if !rpFails(t, &cur, table) {
					*f = true
				}
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "minimized (%s): %d records, snapshot after %d, crash after %d, freezeLag %v\n", table, len(cur.log), cur.snap, cur.crash, cur.freezeLag)
	var e event.Event
	base := int64(-1)
	for i, en := range cur.log {
		fl := ""
		if en.refFlush {
			fl += " F-ref"
		}
		if en.p1 {
			fl += " F-p1"
		}
		if en.p2 {
			fl += " F-p2"
		}
		if en.rec == nil {
			fmt.Fprintf(&b, "  %3d watermark record %d%s\n", i, en.wm, fl)
			continue
		}
		if err := event.DecodeBinary(en.rec, &e); err != nil {
			t.Fatal(err)
		}
		if base < 0 {
			base = e.EventTime / 60000 * 60000
		}
		fmt.Fprintf(&b, "  %3d %s %s t=%+.3fs recv=%+.3fs user=%s dev=%s q=%s drop=%s auc=%s pl=%s bidder=%s outcome=%s dur=%d%s\n", i, e.ID, e.Type, float64(e.EventTime-base)/1e3, float64(e.ReceivedAt-base)/1e3,
			e.UserID, e.DeviceID, e.QuestID, e.DropID, e.AuctionID, e.Placement, e.BidderID, e.Outcome, e.DurationMs, fl)
	}
	ref := runScenario(t, &cur, false)
	d := rpDiff(ref, runScenario(t, &cur, true))
	for _, x := range d {
		fmt.Fprintf(&b, "  %s\n", x)
	}
	// The same log without a crash, flushed only at its end: does the
	// flush cadence alone make the difference?
	once := cur
	once.log = slices.Clone(cur.log)
	for i := range once.log {
		once.log[i].refFlush = false
	}
	fmt.Fprintf(&b, "  uninterrupted, flushed only at the end, against the reference: %d rows differ\n", len(rpDiff(ref, runScenario(t, &once, false))))
	t.Log(b.String())
}
