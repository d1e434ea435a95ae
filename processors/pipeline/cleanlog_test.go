package pipeline

import (
	"bytes"
	"errors"
	"fmt"
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
	gone  int64  // offsets below it are gone from the log (-1: none)
	buf   []byte // what read returns: valid until the next read only
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
	clear(l.buf) // the last record's bytes, which the caller must not keep
	l.buf = append(l.buf[:0], r...)
	return l.buf, nil
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

// feed adds the log's events from to to (addAt), flushing every 50 into tb.
func (l *memLog) feed(t *testing.T, p *Partition, tb *tables, from, to int) {
	var e event.Event
	for i := from; i < to; i++ {
		l.addAt(t, p, i, &e)
		if (i+1)%50 == 0 {
			tb.keep(p.Flush(p.Watermark()))
			p.Reset()
		}
	}
}

// finish closes every window of p into tb; the clean pass must have read
// everything it asked for.
func finish(t *testing.T, p *Partition, tb *tables) {
	t.Helper()
	p.Advance(p.Watermark() + 1e9)
	tb.keep(p.Flush(p.Watermark()))
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

// snapshotState returns p's snapshot, as readState reads it.
func snapshotState(t *testing.T, p *Partition) *State {
	t.Helper()
	var buf bytes.Buffer
	if err := p.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	st, err := readState(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// sameTables fails unless tb's tables are want's.
func sameTables(t *testing.T, tb *tables, want map[string][]string) {
	t.Helper()
	got := merged([]*tables{tb})
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Fatalf("table %s differs (%d vs %d rows)\n%s", k, len(got[k]), len(w), firstDiff(got[k], w))
		}
	}
}

// TestCleanPassReadsTheLog: with a LogReader the clean pass holds offsets
// and reads the records again when it takes them; the tables are the
// ones of a partition holding the records, across crashes and restores at
// random points (25), with the queue's chunks of 1 MiB and of a few
// entries each (so entries, and snapshots' first chunks, cross chunk
// boundaries).
func TestCleanPassReadsTheLog(t *testing.T) {
	defer func(size, slack int) { chunkSize, chunkSlack = size, slack }(chunkSize, chunkSlack)
	cfg := testConfig()
	late := streamgen.Generate(streamgen.Config{Seed: 12, Events: 8000, Disorder: 5 * minute, Gap: 400, Users: 40, Drops: 2})
	for _, c := range []struct {
		events      []event.Event
		size, slack int
	}{{stream(11), 1 << 20, 4 << 10}, {late, 1 << 20, 4 << 10}, {stream(11), 64, 16}} {
		chunkSize, chunkSlack = c.size, c.slack
		crashRestore(t, cfg, c.events, newMemLog(c.events))
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
		st := snapshotState(t, p)
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

// TestCleanLogGone: a record the clean pass cannot read again stops the
// clean pass with an error naming its offset (Err), instead of a panic or
// rows without it, and leaves the partition as it was before the attempt:
// a snapshot taken then restores, once the record can be read, to the
// tables of an uninterrupted run. A snapshot with offsets restored
// without a LogReader errs too.
func TestCleanLogGone(t *testing.T) {
	cfg := testConfig()
	events := stream(11)
	want := run(t, cfg, events, 1, 50, 0)
	l := newMemLog(events)
	p := newTestPartition(t, cfg)
	p.ReadCleanFrom(l.read)
	tb := newTables()
	var e event.Event
	half := len(events) / 2
	l.feed(t, p, tb, 0, half)
	l.gone = 3*int64(half) + 1 // retention took everything before this point
	i := half
	for ; i < len(events) && p.Err() == nil; i++ {
		off := 3*int64(i) + 1
		if err := event.DecodeBinaryShared(l.recs[off], &e); err != nil {
			t.Fatal(err)
		}
		p.AddRecord(l.recs[off], &e, off)
		if p.Err() == nil && (i+1)%50 == 0 {
			tb.keep(p.Flush(p.Watermark()))
			p.Reset()
		}
	}
	if err := p.Err(); err == nil || !errors.Is(err, errGone) || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("err %v, want the log's error with its offset", err)
	}
	// Flushed and snapshotted after the error, as a stage would not, but
	// could: the state is the one before the failed read.
	p.Advance(p.Watermark())
	tb.keep(p.Flush(p.Watermark()))
	p.Reset()
	var buf bytes.Buffer
	if err := p.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	snap := buf.Bytes()
	l.gone = -1 // the log is whole again
	r, err := Restore(cfg, catalog.New(), bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	r.ReadCleanFrom(l.read)
	l.feed(t, r, tb, i, len(events))
	finish(t, r, tb)
	sameTables(t, tb, want)
	// Without a LogReader, the restored partition's clean pass errs.
	r, err = Restore(cfg, catalog.New(), bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	r.Advance(r.Watermark() + 1e9)
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "no LogReader") {
		t.Fatalf("restored without a LogReader: err %v", err)
	}
}

// TestVersion4IntoTheLog: a snapshot of version 4 (the records held)
// restored into a partition reading the log, then snapshotted with both
// kinds of entries in its queue and restored again, gives the tables of
// an uninterrupted run.
func TestVersion4IntoTheLog(t *testing.T) {
	defer func(size, slack int) { chunkSize, chunkSlack = size, slack }(chunkSize, chunkSlack)
	chunkSize, chunkSlack = 1024, 200
	cfg := testConfig()
	events := stream(11)
	want := run(t, cfg, events, 1, 50, 0)
	l := newMemLog(events)
	p := newTestPartition(t, cfg)
	tb := newTables()
	feed := func(p *Partition, from, to int) { l.feed(t, p, tb, from, to) }
	third := len(events) / 3 / 50 * 50
	feed(p, 0, third) // no LogReader: records held
	st := snapshotState(t, p)
	asVersion(st, 4)
	var buf bytes.Buffer
	var err error
	writeVersion3or4(t, &buf, st)
	if p, err = Restore(cfg, catalog.New(), &buf); err != nil {
		t.Fatal(err)
	}
	p.ReadCleanFrom(l.read)
	held := p.Stats().CleanPending
	feed(p, third, 2*third)
	buf.Reset()
	if err := p.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	mixed, err := readState(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[bool]int{}
	fq := frozenQueue{chunks: mixed.Chunks, n: mixed.CleanN, need: mixed.CleanNeed, baseOff: mixed.CleanBase}
	if err := fq.each(func(_ int64, _, _, end int, _ int64) error { kinds[end < 0]++; return nil }); err != nil {
		t.Fatal(err)
	}
	if held == 0 || kinds[false] == 0 || kinds[true] == 0 {
		t.Fatalf("%d held after the restore, then %d records and %d offsets: a weak test", held, kinds[false], kinds[true])
	}
	if p, err = Restore(cfg, catalog.New(), &buf); err != nil {
		t.Fatal(err)
	}
	p.ReadCleanFrom(l.read)
	feed(p, 2*third, len(events))
	finish(t, p, tb)
	sameTables(t, tb, want)
}
