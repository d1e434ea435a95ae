package pipeline

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/window"
)

// The device-flag timing property (helper-52): the clean rows must not
// depend on when the flags log is read, on the flush cadence, nor on a
// snapshot and restore at any point. dfStage is a device stage of one
// partition, as processors' device stage runs it (track, flagRecords),
// fed by the partition's forwarded events in the reference run; its flags
// log (flags, then a marker, after each of its flushes) is what every
// other run reads, at points chosen at random.

// dfStage is the device stage's part: the bot processor of devices, the
// flagged windows not yet closed, the flags log sent so far.
type dfStage struct {
	dev     *bots.Processor
	devWM   int64
	applied int64
	pending map[int64]map[string][]string
	marked  int64
	flags   [][]byte
	spec    window.Spec
}

func (d *dfStage) feed(o *Output, wm int64) {
	var e event.Event
	for _, x := range o.Devices {
		if x.Offset > d.applied {
			d.applied = x.Offset
			if err := event.DecodeBinaryShared(x.Record, &e); err != nil {
				panic(err)
			}
			d.dev.AddRange(&e, d.devWM, window.Range{Lo: x.Lo, Hi: 1<<63 - 1})
		}
	}
	if wm != window.None && wm > d.devWM {
		d.devWM = wm
		d.dev.Advance(wm)
	}
	for _, r := range d.dev.Flush(d.devWM) {
		w := d.pending[r.Start]
		switch {
		case r.Flagged && w == nil:
			d.pending[r.Start] = map[string][]string{r.EntityID: *r.Users}
		case r.Flagged:
			w[r.EntityID] = *r.Users
		case w != nil:
			delete(w, r.EntityID)
		}
	}
	if d.devWM == window.None {
		return
	}
	var closed []int64
	for s := range d.pending {
		if s+d.spec.Size.Milliseconds()+d.spec.Lateness.Milliseconds() <= d.devWM {
			closed = append(closed, s)
		}
	}
	slices.Sort(closed)
	for _, s := range closed {
		for _, dv := range slices.Sorted(maps.Keys(d.pending[s])) {
			for _, u := range d.pending[s][dv] {
				d.flags = append(d.flags, DeviceFlagValue(u, s))
			}
		}
		delete(d.pending, s)
	}
	if d.devWM > d.marked {
		d.flags = append(d.flags, DeviceMarkerValue(0, d.devWM))
		d.marked = d.devWM
	}
}

// dfRun runs the log; after record i it reads the flags log up to
// readTo(i) (≤ avail[i]); flushes where flush(i); snapshot+restore after
// record snapAt (if ≥ 0). Returns tables, and (when gen) the flags log and
// avail.
func dfRun(t *testing.T, s *rpScenario, flagsLog [][]byte, avail []int, readTo func(i int) int, flush func(i int) bool, snapAt int) (rpTables, [][]byte, []int) {
	cfg := s.cfg
	cfg.DevicePartitions = 1
	gen := flagsLog == nil
	var d *dfStage
	if gen {
		dc := cfg.Bots
		dc.Entity = bots.EntityDevice
		bp, err := bots.New(dc, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		d = &dfStage{dev: bp, devWM: window.None, applied: -1, pending: map[int64]map[string][]string{}, marked: window.None, spec: cfg.Bots.Window}
		avail = make([]int, len(s.log))
	}
	r := &rpRun{t: t, s: s}
	read := func(off int64) ([]byte, error) { return r.read(off) }
	p, err := New(cfg, catalog.New())
	if err != nil {
		t.Fatal(err)
	}
	p.ReadCleanFrom(read)
	tb := rpTables{}
	devMax := int64(-1)
	var devs []string
	next := 0
	var e event.Event
	for i := range s.log {
		en := &s.log[i]
		if en.rec == nil {
			p.Advance(en.wm)
		} else {
			if err := event.DecodeBinaryShared(en.rec, &e); err != nil {
				t.Fatal(err)
			}
			p.AddRecord(en.rec, &e, int64(i))
		}
		last := i == len(s.log)-1
		if flush(i) || last {
			wm := p.Watermark()
			o := p.Flush(wm)
			tb.write(o, &devMax, &devs)
			if gen {
				d.feed(o, wm)
			}
			p.Reset()
		}
		if gen {
			avail[i] = len(d.flags)
			flagsLog = d.flags
		}
		var to int
		if gen || last {
			to = avail[i]
		} else {
			to = readTo(i)
		}
		for ; next < to; next++ {
			if err := p.AddDeviceFlags(int64(next), flagsLog[next]); err != nil {
				t.Fatal(err)
			}
		}
		if last {
			// the device stage's last flags, then a final flush
			if gen {
				for k := 0; k < 3; k++ {
					o := p.Flush(p.Watermark())
					tb.write(o, &devMax, &devs)
					d.feed(o, p.Watermark())
					p.Reset()
					for ; next < len(d.flags); next++ {
						if err := p.AddDeviceFlags(int64(next), d.flags[next]); err != nil {
							t.Fatal(err)
						}
					}
				}
				flagsLog = d.flags
				avail[i] = len(flagsLog)
			}
			for ; next < len(flagsLog); next++ {
				if err := p.AddDeviceFlags(int64(next), flagsLog[next]); err != nil {
					t.Fatal(err)
				}
			}
			tb.write(p.Flush(p.Watermark()), &devMax, &devs)
			p.Reset()
		}
		if i == snapAt {
			// flush first (a snapshot follows a flush written), then restore
			tb.write(p.Flush(p.Watermark()), &devMax, &devs)
			p.Reset()
			if p.queue.marks > 0 {
				dfWaitingAtSnap++
			}
			var buf bytes.Buffer
			if err := p.Snapshot(&buf); err != nil {
				t.Fatal(err)
			}
			q, err := Restore(cfg, catalog.New(), &buf)
			if err != nil {
				t.Fatal(err)
			}
			q.ReadCleanFrom(read)
			if q.DeviceFlagsNext() != int64(next) {
				t.Fatalf("flags next %d, want %d", q.DeviceFlagsNext(), next)
			}
			p = q
		}
	}
	if p.Stats().CleanPending != 0 {
		t.Fatalf("clean pending %d at the end", p.Stats().CleanPending)
	}
	return tb, flagsLog, avail
}

var dfWaitingAtSnap int

// TestDeviceFlagTimingProperty: on the replay property test's random
// streams (rpScenarioFor), a run that reads the flags log eagerly, in
// random partial reads, or after long stalls, with another flush cadence
// and a snapshot and restore at a random record, gives the reference
// run's tables. DEVFLAG_SEEDS sets the number of seeds (default 20).
// Control: the flags change rows (replaced by flags of nobody, the tables
// differ) in most seeds, so the comparison sees them. Not reached: a
// very late event behind an idle watermark record, the case of
// TestMarkerTimingLeavesCleanRows (with that fix reverted, 150 seeds of
// this test pass; that test fails).
func TestDeviceFlagTimingProperty(t *testing.T) {
	seeds := 20
	if v := os.Getenv("DEVFLAG_SEEDS"); v != "" {
		seeds, _ = strconv.Atoi(v)
	}
	matter := 0
	for seed := uint64(0); seed < uint64(seeds); seed++ {
		s, desc := rpScenarioFor(seed)
		rng := rand.New(rand.NewPCG(seed, 52))
		refFlush := func(i int) bool { return s.log[i].refFlush }
		ref, flagsLog, avail := dfRun(t, s, nil, nil, nil, refFlush, -1)
		_, cadence := rpCadence(rng)
		mode := rng.IntN(3)
		cur := 0
		readTo := func(i int) int {
			switch mode {
			case 0: // at once
				cur = avail[i]
			case 1: // random partial reads
				if rng.IntN(4) == 0 {
					cur = max(cur, cur+rng.IntN(avail[i]-cur+1))
				}
			case 2: // a long stall, then all of it
				if rng.IntN(200) == 0 {
					cur = avail[i]
				}
			}
			return cur
		}
		snapAt := rng.IntN(len(s.log) - 1)
		got, _, _ := dfRun(t, s, flagsLog, avail, readTo, cadence, snapAt)
		if d := rpDiff(rpResult{tables: ref}, rpResult{tables: got}); len(d) > 0 {
			t.Errorf("%s (reads %d, restore after record %d): %d rows differ; first:\n%s", desc, mode, snapAt, len(d), d[0])
		}
		nobody := make([][]byte, len(flagsLog))
		for i, v := range flagsLog {
			nobody[i] = v
			if v[0] == deviceFlag {
				nobody[i] = DeviceFlagValue("nobody", 0)
			}
		}
		without, _, _ := dfRun(t, s, nobody, avail, func(i int) int { return avail[i] }, refFlush, -1)
		if len(rpDiff(rpResult{tables: ref}, rpResult{tables: without})) > 0 {
			matter++
		}
	}
	t.Logf("%d seeds; the flags changed rows in %d; %d restores with a watermark entry waiting", seeds, matter, dfWaitingAtSnap)
	if matter < seeds/2 {
		t.Errorf("the device flags changed rows in %d seeds of %d: the property sees too little of them", matter, seeds)
	}
}
