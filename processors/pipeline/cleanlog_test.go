package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/internal/streamgen"
)

// memLog is a partition's log in memory: each event's record at its
// offset, three apart (the offsets between are records the partition
// never takes as events, as a watermark record is).
type memLog struct {
	recs  map[int64][]byte
	reads int
	gone  int64 // offsets below it are gone from the log (-1: none)
}

func newMemLog(events []event.Event) *memLog {
	l := &memLog{recs: map[int64][]byte{}, gone: -1}
	for i := range events {
		l.recs[3*int64(i)+1] = event.AppendBinary(nil, &events[i])
	}
	return l
}

func (l *memLog) read(offset int64) ([]byte, error) {
	r, ok := l.recs[offset]
	if !ok || offset < l.gone {
		return nil, fmt.Errorf("offset %d: %w", offset, errGone)
	}
	l.reads++
	return r, nil
}

var errGone = errors.New("gone from the log")

// addAt adds the event i of the log as the source stage does.
func (l *memLog) addAt(t *testing.T, p *Partition, i int, e *event.Event) {
	off := 3*int64(i) + 1
	rec := l.recs[off]
	if err := event.DecodeBinaryShared(rec, e); err != nil {
		t.Fatal(err)
	}
	p.AddRecord(rec, e, off)
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestCleanPassReadsTheLog: with a LogReader the clean pass holds offsets
// and reads the records again when it takes them; the tables are the
// ones of a partition holding the records, across crashes and restores at
// random points (25), and a snapshot's clean queue is a few bytes per
// event instead of the records.
func TestCleanPassReadsTheLog(t *testing.T) {
	cfg := testConfig()
	late := streamgen.Generate(streamgen.Config{Seed: 12, Events: 8000, Disorder: 5 * minute, Gap: 400, Users: 40, Drops: 2})
	for _, events := range [][]event.Event{stream(11), late} {
		want := run(t, cfg, events, 1, 50, 0)
		l := newMemLog(events)
		var e event.Event
		var p *Partition
		fresh := func() {
			p = newTestPartition(t, cfg)
			p.ReadCleanFrom(l.read)
		}
		fresh()
		tb := newTables()
		rng := rand.New(rand.NewPCG(7, 7))
		var snap []byte
		snapAt, crashes := 0, 0
		for i := 0; i < len(events); {
			l.addAt(t, p, i, &e)
			i++
			if i%50 != 0 {
				continue
			}
			tb.keep(p.Flush(p.Watermark()))
			p.Reset()
			if rng.IntN(3) == 0 {
				var buf bytes.Buffer
				if err := p.Snapshot(&buf); err != nil {
					t.Fatal(err)
				}
				snap, snapAt = buf.Bytes(), i
			}
			if crashes < 25 && rng.IntN(len(events)/50/30) == 0 {
				crashes++
				if snap == nil {
					fresh()
					i = 0
					continue
				}
				var err error
				if p, err = Restore(cfg, catalog.New(), bytes.NewReader(snap)); err != nil {
					t.Fatal(err)
				}
				p.ReadCleanFrom(l.read)
				i = snapAt
			}
		}
		p.Advance(p.Watermark() + 1e9)
		tb.keep(p.Flush(p.Watermark()))
		if err := p.Err(); err != nil {
			t.Fatal(err)
		}
		if crashes < 20 || l.reads == 0 {
			t.Fatalf("%d crashes, %d reads: a weak test", crashes, l.reads)
		}
		got := merged([]*tables{tb})
		for k, w := range want {
			if !slices.Equal(got[k], w) {
				t.Fatalf("table %s differs (%d vs %d rows)\n%s", k, len(got[k]), len(w), firstDiff(got[k], w))
			}
		}
	}
}

// TestCleanQueueOfOffsetsIsSmall: halfway through a stream, the clean
// queue of a partition reading the log takes a few bytes per waiting
// event in its snapshot, the records' size in one holding them.
func TestCleanQueueOfOffsetsIsSmall(t *testing.T) {
	cfg := testConfig()
	events := stream(11)
	l := newMemLog(events)
	sizes := map[bool]int{}
	var pending int
	for _, fromLog := range []bool{false, true} {
		p := newTestPartition(t, cfg)
		if fromLog {
			p.ReadCleanFrom(l.read)
		}
		var e event.Event
		for i := range events[:len(events)/2] {
			l.addAt(t, p, i, &e)
		}
		pending = p.Stats().CleanPending
		var buf bytes.Buffer
		if err := p.Snapshot(&buf); err != nil {
			t.Fatal(err)
		}
		st, err := readState(&buf)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range st.Chunks {
			sizes[fromLog] += len(c)
		}
	}
	if pending < 1000 {
		t.Fatalf("%d events waiting: a weak test", pending)
	}
	held, offsets := float64(sizes[false])/float64(pending), float64(sizes[true])/float64(pending)
	t.Logf("clean queue per waiting event: %.1f bytes holding records, %.1f holding offsets", held, offsets)
	if offsets > 4 || held < 20*offsets {
		t.Fatalf("clean queue per waiting event: %.1f bytes holding records, %.1f holding offsets", held, offsets)
	}
}

// TestCleanQueueMixed: a snapshot of a partition that held its records,
// restored into one reading the log, takes the held records first and the
// offsets after, to the same tables.
func TestCleanQueueMixed(t *testing.T) {
	cfg := testConfig()
	events := stream(11)
	want := run(t, cfg, events, 1, 50, 0)
	l := newMemLog(events)
	p := newTestPartition(t, cfg)
	tb := newTables()
	var e event.Event
	half := len(events) / 2 / 50 * 50
	feed := func(from, to int) {
		for i := from; i < to; i++ {
			l.addAt(t, p, i, &e)
			if (i+1)%50 == 0 {
				tb.keep(p.Flush(p.Watermark()))
				p.Reset()
			}
		}
	}
	feed(0, half)
	var buf bytes.Buffer
	if err := p.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	var err error
	if p, err = Restore(cfg, catalog.New(), &buf); err != nil {
		t.Fatal(err)
	}
	held := p.Stats().CleanPending
	p.ReadCleanFrom(l.read)
	feed(half, len(events))
	p.Advance(p.Watermark() + 1e9)
	tb.keep(p.Flush(p.Watermark()))
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	if held == 0 || l.reads == 0 {
		t.Fatalf("%d held, %d read: a weak test", held, l.reads)
	}
	got := merged([]*tables{tb})
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Fatalf("table %s differs (%d vs %d rows)\n%s", k, len(got[k]), len(w), firstDiff(got[k], w))
		}
	}
}

// TestCleanLogGone: a record the clean pass cannot read again stops the
// clean pass with an error naming its offset (Err), instead of a panic or
// rows without it; a snapshot with offsets and no LogReader does too.
func TestCleanLogGone(t *testing.T) {
	cfg := testConfig()
	events := stream(11)
	l := newMemLog(events)
	p := newTestPartition(t, cfg)
	p.ReadCleanFrom(l.read)
	var e event.Event
	half := len(events) / 2
	for i := range events[:half] {
		l.addAt(t, p, i, &e)
	}
	var buf bytes.Buffer
	if err := p.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	snap := buf.Bytes()
	l.gone = 3*int64(half) + 1 // retention took everything before this point
	for i := half; i < len(events) && p.Err() == nil; i++ {
		off := 3*int64(i) + 1
		if err := event.DecodeBinaryShared(l.recs[off], &e); err != nil {
			t.Fatal(err)
		}
		p.AddRecord(l.recs[off], &e, off)
	}
	if err := p.Err(); err == nil || !errors.Is(err, errGone) || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("err %v, want the log's error with its offset", err)
	}
	r, err := Restore(cfg, catalog.New(), bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	r.Advance(r.Watermark() + 1e9)
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "no LogReader") {
		t.Fatalf("restored without a LogReader: err %v", err)
	}
}
