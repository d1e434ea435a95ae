package pipeline

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/internal/streamgen"
)

// TestCrashRestoreIdentical crashes the partition at random points (rows
// emitted since the last written Flush are lost, state is lost), restores
// the last snapshot, re-reads the records from the snapshot's position, and
// requires the same tables as an uninterrupted run.
func TestCrashRestoreIdentical(t *testing.T) {
	cfg := testConfig()
	// Disorder beyond the watermark's bound (within the allowed lateness),
	// so late updates, re-attributions and retractions cross restores too.
	late := streamgen.Generate(streamgen.Config{Seed: 12, Events: 8000, Disorder: 5 * minute, Gap: 400, Users: 40, Drops: 2})
	for _, events := range [][]event.Event{stream(11), late} {
		crashRestore(t, cfg, events, nil)
	}
}

// crashRestore runs events through a partition that crashes at random
// points and restores its last snapshot; with l, as records of l's log
// whose clean pass reads them again (ReadCleanFrom), else by Add.
func crashRestore(t *testing.T, cfg Config, events []event.Event, l *memLog) {
	want := run(t, cfg, events, 1, 50, 0)
	var e event.Event
	start := func(p *Partition) *Partition {
		if l != nil {
			p.ReadCleanFrom(l.read)
		}
		return p
	}
	p := start(newTestPartition(t, cfg))
	tb := newTables()
	rng := rand.New(rand.NewPCG(5, 5))
	var snap []byte
	snapAt, crashes, restoredBytes := 0, 0, 0
	for i := 0; i < len(events); {
		if l != nil {
			l.addAt(t, p, i, &e)
		} else {
			p.Add(&events[i])
		}
		i++
		if i%50 == 0 {
			tb.keep(p.Flush(p.Watermark()))
			p.Reset()
			if rng.IntN(3) == 0 {
				var buf bytes.Buffer
				if err := p.Snapshot(&buf); err != nil {
					t.Fatal(err)
				}
				snap, snapAt = buf.Bytes(), i
			}
		}
		if crashes < 25 && rng.IntN(len(events)/30) == 0 {
			crashes++
			if snap == nil {
				p = start(newTestPartition(t, cfg))
				i = 0
				continue
			}
			r, err := Restore(cfg, catalog.New(), bytes.NewReader(snap))
			if err != nil {
				t.Fatal(err)
			}
			p = start(r)
			restoredBytes = max(restoredBytes, len(snap))
			i = snapAt
		}
	}
	finish(t, p, tb)
	if crashes < 20 {
		t.Fatalf("only %d crashes", crashes)
	}
	if l != nil && l.reads == 0 {
		t.Fatal("the clean pass read nothing from the log: a weak test")
	}
	sameTables(t, tb, want)
	t.Logf("%d crashes, largest snapshot %d bytes", crashes, restoredBytes)
}

// TestCrashRestoreSmallChunks: crash and restore with clean-queue chunks of
// a few records each, so snapshots hold many chunks, the first one cut at
// the first waiting record.
func TestCrashRestoreSmallChunks(t *testing.T) {
	defer func(size, slack int) { chunkSize, chunkSlack = size, slack }(chunkSize, chunkSlack)
	chunkSize, chunkSlack = 1024, 200
	crashRestore(t, testConfig(), stream(11), nil)
}

// TestRestoreOlderVersions: snapshots of versions 1 (the clean queue in
// one Arena, event ids in Seen), 2 (the queue in Chunks, ids in Seen), 3
// (ids' hashes in arrival order in a raw section) and 4 (the queue's
// entries in a section of their own) restore and continue to the same
// tables.
func TestRestoreOlderVersions(t *testing.T) {
	defer func(size, slack int) { chunkSize, chunkSlack = size, slack }(chunkSize, chunkSlack)
	chunkSize, chunkSlack = 1024, 200
	cfg := testConfig()
	events := stream(11)
	want := run(t, cfg, events, 1, 50, 0)
	for _, version := range []int{1, 2, 3, 4} {
		p := newTestPartition(t, cfg)
		tb := newTables()
		half := len(events) / 2 / 50 * 50
		for i := range events[:half] {
			p.Add(&events[i])
			if (i+1)%50 == 0 {
				tb.keep(p.Flush(p.Watermark()))
				p.Reset()
			}
		}
		st := snapshotState(t, p)
		if len(st.Chunks) < 3 || st.CleanN == 0 || len(st.SeenHashes) == 0 {
			t.Fatalf("%d chunks, %d queued, %d bytes of ids: a weak test", len(st.Chunks), st.CleanN, len(st.SeenHashes))
		}
		asVersion(st, version)
		if version == 1 {
			// One arena, offsets into it.
			base := make([]int, len(st.Chunks))
			for i, c := range st.Chunks {
				base[i] = len(st.Arena)
				st.Arena = append(st.Arena, c...)
			}
			for i := range st.Queue {
				q := &st.Queue[i]
				q.Off, q.End, q.Chunk = q.Off+base[q.Chunk], q.End+base[q.Chunk], 0
			}
			st.Chunks = nil
		}
		var buf bytes.Buffer
		if version >= 3 {
			writeVersion3or4(t, &buf, st)
		} else if err := gob.NewEncoder(&buf).Encode(st); err != nil {
			t.Fatal(err)
		}
		p, err := Restore(cfg, catalog.New(), &buf)
		if err != nil {
			t.Fatal(err)
		}
		for i := half; i < len(events); i++ {
			p.Add(&events[i])
			if (i+1)%50 == 0 {
				tb.keep(p.Flush(p.Watermark()))
				p.Reset()
			}
		}
		p.Advance(p.Watermark() + 1e9)
		tb.keep(p.Flush(p.Watermark()))
		got := merged([]*tables{tb})
		for k, w := range want {
			if !slices.Equal(got[k], w) {
				t.Fatalf("version %d: table %s differs (%d vs %d rows)\n%s", version, k, len(got[k]), len(w), firstDiff(got[k], w))
			}
		}
	}
}

// TestSnapshotReadersAndDamage: a snapshot restores from a reader that is
// not an io.ByteReader (gob must not read into the raw sections), and a
// truncated one fails with an error instead of restoring part of a state.
func TestSnapshotReadersAndDamage(t *testing.T) {
	cfg := testConfig()
	events := stream(11)
	buf := halfwaySnapshot(t, cfg, events)
	full := buf.Bytes()
	want, err := Restore(cfg, catalog.New(), bytes.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	if want.Stats().SeenIDs == 0 || want.Stats().CleanPending == 0 {
		t.Fatalf("%+v: a weak test (no ids or no clean queue)", want.Stats())
	}
	got, err := Restore(cfg, catalog.New(), struct{ io.Reader }{bytes.NewReader(full)})
	if err != nil {
		t.Fatal(err)
	}
	// (Snapshots are not byte-identical: gob writes maps in iteration
	// order.) Both continue to the same rows.
	wt, gt := newTables(), newTables()
	for i := len(events) / 2; i < len(events); i++ {
		want.Add(&events[i])
		got.Add(&events[i])
	}
	want.Advance(want.Watermark() + 1e9)
	got.Advance(got.Watermark() + 1e9)
	wt.keep(want.Flush(want.Watermark()))
	gt.keep(got.Flush(got.Watermark()))
	w, g := merged([]*tables{wt}), merged([]*tables{gt})
	if len(w) == 0 {
		t.Fatal("no rows: a weak test")
	}
	for k := range w {
		if !slices.Equal(w[k], g[k]) {
			t.Fatalf("restored through a plain io.Reader, table %s differs\n%s", k, firstDiff(g[k], w[k]))
		}
	}
	// A small state: gob's own buffering (of a plain reader) would read
	// past its value into the sections.
	small := newTestPartition(t, cfg)
	for i := range events[:5] {
		small.Add(&events[i])
	}
	var sbuf bytes.Buffer // (full is buf's memory)
	if err := small.Snapshot(&sbuf); err != nil {
		t.Fatal(err)
	}
	if r, err := Restore(cfg, catalog.New(), struct{ io.Reader }{bytes.NewReader(sbuf.Bytes())}); err != nil || r.Stats().SeenIDs != 5 {
		t.Fatalf("a small snapshot through a plain io.Reader: %v, %+v", err, r)
	}
	for _, cut := range []int{1, len(full) / 3, len(full) - 100, len(full) - 1} {
		if _, err := Restore(cfg, catalog.New(), bytes.NewReader(full[:cut])); err == nil {
			t.Fatalf("a snapshot cut at %d of %d bytes restored", cut, len(full))
		}
	}
}

// TestFrozenWhileThePartitionGoesOn: a snapshot frozen at one point and
// written on another goroutine while the partition takes the rest of the
// stream (growing and dropping the chunks the snapshot refers to) restores
// to the same rows as one written at once. Run with -race as well.
func TestFrozenWhileThePartitionGoesOn(t *testing.T) {
	defer func(size, slack int) { chunkSize, chunkSlack = size, slack }(chunkSize, chunkSlack)
	chunkSize, chunkSlack = 1024, 200 // many chunks, dropped as the clean pass reads them
	cfg := testConfig()
	events := stream(11)
	half := len(events) / 2
	p := newTestPartition(t, cfg)
	for i := range events[:half] {
		p.Add(&events[i])
	}
	var now bytes.Buffer
	if err := p.Snapshot(&now); err != nil {
		t.Fatal(err)
	}
	f := p.Freeze()
	var later bytes.Buffer
	done := make(chan error)
	go func() {
		_, err := f.WriteTo(&later)
		done <- err
	}()
	for i := half; i < len(events); i++ {
		p.Add(&events[i])
		if i%50 == 0 {
			p.Flush(p.Watermark())
			p.Reset()
		}
	}
	p.Advance(p.Watermark() + 1e9)
	p.Flush(p.Watermark())
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The goroutine may well have written everything before the partition
	// took a record; a second write, once it has taken them all, reads
	// what the partition could have overwritten since the freeze.
	var after bytes.Buffer
	if _, err := f.WriteTo(&after); err != nil {
		t.Fatal(err)
	}
	rows := func(snap []byte) map[string][]string {
		r, err := Restore(cfg, catalog.New(), bytes.NewReader(snap))
		if err != nil {
			t.Fatal(err)
		}
		if r.Stats().CleanPending == 0 || r.Stats().SeenIDs == 0 {
			t.Fatalf("%+v: a weak test (no clean queue or no ids)", r.Stats())
		}
		tb := newTables()
		for i := half; i < len(events); i++ {
			r.Add(&events[i])
		}
		r.Advance(r.Watermark() + 1e9)
		tb.keep(r.Flush(r.Watermark()))
		return merged([]*tables{tb})
	}
	want := rows(now.Bytes())
	for _, snap := range [][]byte{later.Bytes(), after.Bytes()} {
		got := rows(snap)
		for k := range want {
			if !slices.Equal(got[k], want[k]) {
				t.Fatalf("table %s differs\n%s", k, firstDiff(got[k], want[k]))
			}
		}
	}
}

// TestRestoredSectionsAreExact: the raw sections are read into slices of
// their own length (bytes.Buffer, which they were read through, grew each
// one to twice its size at its end, copying it: a restored clean queue
// held twice its memory until read).
func TestRestoredSectionsAreExact(t *testing.T) {
	cfg := testConfig()
	events := stream(11)
	buf := halfwaySnapshot(t, cfg, events)
	st, err := readState(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Chunks) == 0 || len(st.SeenHashes) == 0 {
		t.Fatalf("a weak test: %d chunks, %d bytes of hashes", len(st.Chunks), len(st.SeenHashes))
	}
	if cap(st.SeenHashes) != len(st.SeenHashes) {
		t.Errorf("event ids: %d bytes in a slice of %d", len(st.SeenHashes), cap(st.SeenHashes))
	}
	for i, c := range st.Chunks {
		if cap(c) != len(c) {
			t.Errorf("chunk %d: %d bytes in a slice of %d", i, len(c), cap(c))
		}
	}
}

// TestDamagedSnapshotErrs: a snapshot damaged anywhere gives Restore an
// error or a partition that runs, never a panic later: the clean queue's
// records, a raw section without a checksum since version 3 (bytes in the
// gob value before), were decoded only when the clean pass took them,
// which panicked ("we encoded it"), on every restart from the snapshot.
func TestDamagedSnapshotErrs(t *testing.T) {
	cfg := testConfig()
	events := stream(11)
	p := newTestPartition(t, cfg)
	for i := range events[:len(events)/2] {
		p.Add(&events[i])
	}
	var buf bytes.Buffer
	f := p.Freeze()
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	st, err := readState(bytes.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	// A record of the clean queue overwritten.
	var recs [][]byte
	fq := frozenQueue{chunks: st.Chunks, n: st.CleanN, need: st.CleanNeed, baseOff: st.CleanBase}
	if err := fq.each(func(_ int64, chunk, off, end int, _ int64) error {
		recs = append(recs, st.Chunks[chunk][off:end])
		return nil
	}); err != nil || len(recs) == 0 {
		t.Fatalf("%d records: %v", len(recs), err)
	}
	rec := recs[len(recs)/2]
	at := bytes.Index(full, rec)
	if at < 0 {
		t.Fatal("the record is not in the snapshot")
	}
	d := bytes.Clone(full)
	for i := range rec {
		d[at+i] = 0xff
	}
	if _, err := Restore(cfg, catalog.New(), bytes.NewReader(d)); err == nil {
		t.Fatal("a snapshot with an undecodable clean-queue record restored")
	}
	// Damage at random places of the raw sections. (Damage in the gob
	// value can still panic, in the processors' Restore or later: gob
	// checks its encoding, not the state's consistency.)
	var g bytes.Buffer // the gob value's length (its bytes vary with map order)
	if err := gob.NewEncoder(&g).Encode(f.state()); err != nil {
		t.Fatal(err)
	}
	gobLen := g.Len()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		d := bytes.Clone(full)
		for range 1 + rng.IntN(3) {
			d[gobLen+rng.IntN(len(d)-gobLen)] ^= byte(1 + rng.IntN(255))
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("a damaged snapshot: panic %v", r)
				}
			}()
			r, err := Restore(cfg, catalog.New(), bytes.NewReader(d))
			if err != nil {
				return
			}
			for i := len(events) / 2; i < len(events); i += 7 {
				r.Add(&events[i])
			}
			r.Advance(r.Watermark() + 1e9)
			r.Flush(r.Watermark())
		}()
	}
}

// TestInconsistentSnapshotErrs: a snapshot that decodes but holds what no
// processor wrote (here an auction with bidders and no outcomes) fails to
// restore with an error instead of a panic, so the partition is rebuilt
// from its log instead of crashing the process at every start.
func TestInconsistentSnapshotErrs(t *testing.T) {
	cfg := testConfig()
	events := stream(11)
	buf := halfwaySnapshot(t, cfg, events)
	st, err := readState(buf)
	if err != nil {
		t.Fatal(err)
	}
	damaged := false
	for id, a := range st.All.Yield.Auctions {
		if len(a.Bidders) > 0 {
			a.Outcomes = nil
			st.All.Yield.Auctions[id] = a
			damaged = true
			break
		}
	}
	if !damaged {
		t.Fatal("no auction with bids: a weak test")
	}
	// Written as version 2 (everything in the gob value).
	asVersion(st, 2)
	buf.Reset()
	if err := gob.NewEncoder(buf).Encode(st); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(cfg, catalog.New(), buf); err == nil || !strings.Contains(err.Error(), "inconsistent state") {
		t.Fatalf("restored an inconsistent snapshot: %v", err)
	}
}

// halfwaySnapshot returns the snapshot of a partition that took the first
// half of events.
func halfwaySnapshot(t *testing.T, cfg Config, events []event.Event) *bytes.Buffer {
	t.Helper()
	p := newTestPartition(t, cfg)
	for i := range events[:len(events)/2] {
		p.Add(&events[i])
	}
	var buf bytes.Buffer
	if err := p.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// writeVersion3or4 writes st (of version 3 or 4, asVersion) as those
// versions did: the gob value, then the sections of the keys (4 only),
// the hashes, the clean queue's chunks and its entries.
func writeVersion3or4(t *testing.T, w io.Writer, st *State) {
	keys, hashes, chunks, queue := st.SeenKeys, st.SeenHashes, st.Chunks, st.Queue
	st.SeenKeys, st.SeenHashes, st.Chunks, st.Queue = nil, nil, nil, nil
	cw := &countingWriter{w: w}
	if err := gob.NewEncoder(cw).Encode(st); err != nil {
		t.Fatal(err)
	}
	if st.Version == 4 {
		cw.uvarint(uint64(len(keys)))
		cw.write(keys)
	}
	cw.uvarint(uint64(len(hashes)))
	cw.write(hashes)
	cw.uvarint(uint64(len(chunks)))
	for _, c := range chunks {
		cw.uvarint(uint64(len(c)))
		cw.write(c)
	}
	cw.uvarint(uint64(len(queue)))
	for _, q := range queue {
		b := binary.AppendUvarint(nil, uint64(q.Chunk))
		b = binary.AppendUvarint(b, uint64(q.Off))
		b = binary.AppendUvarint(b, uint64(q.End))
		cw.write(binary.AppendVarint(b, q.Need))
	}
	if cw.err != nil {
		t.Fatal(cw.err)
	}
}

// asVersion turns a snapshot's state of version 5 into version 1, 2, 3
// or 4's: the clean queue's entries (records only) in Queue, and for 1, 2
// and 3 the event ids as their hashes in arrival order (each key's from the set;
// a test's ids share no key), in SeenHashes (3) or one SeenID each, with
// its block's time, in the gob value (1, 2; the caller writes the rest of
// it, gob-encoded whole).
func asVersion(st *State, version int) {
	f := frozenQueue{chunks: st.Chunks, n: st.CleanN, need: st.CleanNeed, baseOff: st.CleanBase}
	if err := f.each(func(need int64, chunk, off, end int, _ int64) error {
		if end < 0 {
			return errors.New("pipeline: a log offset in a test's queue")
		}
		st.Queue = append(st.Queue, QueuedState{Chunk: chunk, Off: off, End: end, Need: need})
		return nil
	}); err != nil {
		panic(err)
	}
	st.CleanN, st.CleanNeed, st.CleanBase = 0, 0, 0
	st.Version = version
	if version == 4 {
		return
	}
	byKey := map[uint32]uint64{}
	for i := 0; i < len(st.SeenHashes); i += 8 {
		h := binary.LittleEndian.Uint64(st.SeenHashes[i:])
		byKey[uint32(h)] = h
	}
	if len(byKey) != len(st.SeenHashes)/8 || len(st.SeenShared) > 0 {
		panic("pipeline: test ids share a key")
	}
	var hashes []byte
	for i := 0; i < len(st.SeenKeys); i += 4 {
		h := byKey[binary.LittleEndian.Uint32(st.SeenKeys[i:])]
		if version == 3 {
			hashes = binary.LittleEndian.AppendUint64(hashes, h)
		} else {
			st.Seen = append(st.Seen, SeenID{Hash: h, Time: int64(st.SeenMaxes[i/4/dedupBlock]) * 1000})
		}
	}
	st.Version, st.SeenHashes, st.SeenKeys, st.SeenShared = version, hashes, nil, nil
	if version < 3 {
		st.SeenMaxes = nil
	}
}
