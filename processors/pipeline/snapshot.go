package pipeline

import (
	"bufio"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/latency"
	"github.com/questline/questline/processors/lift"
	"github.com/questline/questline/processors/quest"
	"github.com/questline/questline/processors/yield"
)

// snapshotVersion is the version of the snapshot encoding: 5 holds the
// clean queue's chunks as the queue holds them, headers and all, with
// its entry count, first need and offset base in the gob value (CleanN,
// CleanNeed, CleanBase): its entries may be log offsets
// (Partition.ReadCleanFrom), which a version 4 process cannot read. 4 holds the
// remembered event ids as the eviction queue's keys and the set's hashes
// in raw sections (SeenKeys, SeenHashes; SeenMaxes, SeenShared in the gob
// value), 3 as raw hashes in arrival order (SeenHashes, SeenMaxes); both
// hold the clean queue's chunks and entries in raw sections (see Frozen),
// 2 the clean queue in Chunks. Restore also reads 3, 2 (ids in Seen) and
// 1 (one Arena); a process of an older version refuses a newer snapshot
// instead of losing part of it. Version 4 (session 6) also holds the
// window engines' spaced updates (window.EngineState's Emitted and Pending,
// bots only): a version 3 process would drop the pending changes.
//
// Version 6 adds the device flags (Flags.Device), the device partitions'
// markers and the flags log's next offset (DevMarks, FlagsNext), and the
// clean queue's watermark entries (an empty record: Partition.Advance): a
// version 5 process would drop the first and fail on the last.
//
// Version 7 adds yield's closed auctions (yield.State.Closed, session
// 17): a version 6 process would drop them, and count a later event of
// one as an orphan, not late (helper-54). Otherwise read as 6.
const snapshotVersion = 7

// State is a partition's state as a snapshot holds it.
type State struct {
	Version       int
	Max, CleanMax int64
	Stats         Stats
	Catalog       *catalog.State
	Flags         *bots.FlagsState
	Bots          *bots.State
	All           ScopeState
	Clean         *ScopeState
	Arena         []byte // version 1: the clean queue's records
	// The clean queue's records: in the gob value in version 2, in a raw
	// section after it since version 3 (see Frozen).
	Chunks [][]byte
	// The clean queue's entries: in the gob value before version 3, in a
	// raw section in versions 3 and 4; since version 5 read from Chunks,
	// CleanN of them, the first one's need CleanNeed, the first offset
	// entry's difference from CleanBase (see cleanQueue).
	Queue                []QueuedState
	CleanN               int
	CleanNeed, CleanBase int64
	Seen                 []SeenID // versions 1, 2: event ids remembered for de-duplication
	// Since version 3, the event ids remembered for de-duplication:
	// SeenMaxes in the gob value, SeenHashes in a raw section after it
	// (version 3: in arrival order, from a block start; since version 4:
	// the set's, in no order, after the section of SeenKeys, the eviction
	// queue's keys, 4 bytes each; see dedup.freeze). SeenShared: since
	// version 4, the shared keys' counts.
	SeenHashes []byte
	SeenMaxes  []uint32
	SeenKeys   []byte
	SeenShared map[uint32]int32
	// Since version 6: the device partitions' markers and the next offset
	// of the flags log (AddDeviceFlags).
	DevMarks  []int64
	FlagsNext int64
}

// ScopeState is the state of one scope's processors.
type ScopeState struct {
	Quest   *quest.State
	Latency *latency.State
	Yield   *yield.State
	Lift    *lift.State
}

// QueuedState is an event waiting for the clean pass.
type QueuedState struct {
	Chunk    int // index in Chunks (version 2)
	Off, End int
	Need     int64
}

// frozenScope is a scope's state as of freeze: latency's users and
// yield's auctions (most of its state at high rates) are converted by
// state, off the partition's goroutine.
type frozenScope struct {
	st      ScopeState // Latency and Yield nil
	latency *latency.Frozen
	yield   *yield.Frozen
}

func (s *scope) freeze() frozenScope {
	return frozenScope{
		st:      ScopeState{Quest: s.quest.Snapshot(), Lift: s.lift.Snapshot()},
		latency: s.latency.Freeze(),
		yield:   s.yield.Freeze(),
	}
}

func (f *frozenScope) state() ScopeState {
	st := f.st
	st.Latency, st.Yield = f.latency.State(), f.yield.State()
	return st
}

func (s *scope) restore(st *ScopeState) {
	s.quest.Restore(st.Quest)
	s.latency.Restore(st.Latency)
	s.yield.Restore(st.Yield)
	s.lift.Restore(st.Lift)
}

// Snapshot writes the partition's state to w: Freeze, then WriteTo. Take
// it after a Flush whose rows were written: the rows emitted so far are
// then in the tables, and a partition restored from the snapshot re-emits,
// identically, whatever it emits after. Records applied after the snapshot
// must be read again after a restore (the caller stores the input offset
// with it).
func (p *Partition) Snapshot(w io.Writer) error {
	_, err := p.Freeze().WriteTo(w)
	return err
}

// Frozen is a partition's snapshot as of one point, ready to be written
// while the partition goes on: a copy of the per-user state, and the two
// parts that grow with the event rate (the event ids of the dedup horizon,
// the clean pass's queue: its events' offsets, or records where it holds
// them) as references to memory the partition never writes again (both
// are append-only, and dropped, not reused, once read).
//
// The encoding (version 5) is a gob State followed by three raw sections:
// the event ids' keys in the eviction queue (a uvarint byte length, then
// 4 bytes each, little-endian), their hashes (a uvarint byte length, then 8
// bytes each, little-endian; version 3 had only a section of the hashes,
// in the queue's order); the clean queue's chunks (a uvarint count, then each
// chunk as a uvarint length and its bytes, each entry's header in them).
// Versions 3 and 4 had a fourth, the clean queue's entries (a uvarint
// count, then chunk, offset and end as uvarints and the watermark it
// needs as a varint, each). Before version 3 they were in the gob
// value, which gob built in memory, growing it by copies, before writing
// any of it, and encoded a struct per id and per entry by reflection.
type Frozen struct {
	base       *State       // copies of the per-user state but the scopes' and the bots'
	all, clean *frozenScope // the scopes' processors (clean: nil without the clean pass)
	bots       *bots.Frozen
	seen       frozenSeen  // the remembered ids
	queue      frozenQueue // the clean queue, from its first record
}

// Freeze takes the partition's snapshot. It costs copies of the per-user
// state (each processor's Snapshot returns one; bots', latency's and
// yield's Freeze copy their records a chunk at a time and view what only
// grows, leaving the rest to WriteTo) and of the
// remembered ids' hashes (8 bytes each, read in order); the other raw
// sections are only referenced, and WriteTo does the encoding.
func (p *Partition) Freeze() *Frozen {
	st := State{
		Version: snapshotVersion, Max: p.wm.Max(), CleanMax: p.cleanWM.Max(), Stats: p.Stats(),
		Catalog: p.cat.Snapshot(), Flags: p.flags.Snapshot(),
		DevMarks: slices.Clone(p.devMarks), FlagsNext: p.flagsNext,
	}
	all := p.all.freeze()
	f := &Frozen{all: &all, bots: p.bots.Freeze()}
	f.seen = p.seen.freeze()
	st.SeenMaxes, st.SeenShared = f.seen.maxes, f.seen.shared
	if p.clean != nil {
		c := p.clean.freeze()
		f.clean = &c
		f.queue = p.queue.freeze()
		st.CleanN, st.CleanNeed, st.CleanBase = f.queue.n, f.queue.need, f.queue.baseOff
	}
	f.base = &st
	return f
}

// state returns the snapshot's gob value: base with the scopes' states.
func (f *Frozen) state() *State {
	st := *f.base
	st.Bots, st.All = f.bots.State(), f.all.state()
	if f.clean != nil {
		c := f.clean.state()
		st.Clean = &c
	}
	return &st
}

// WriteTo writes the snapshot to w. It may run on another goroutine than
// the partition's, and after the partition has moved on.
func (f *Frozen) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	if err := gob.NewEncoder(cw).Encode(f.state()); err != nil {
		return cw.n, err
	}
	n := 0
	for _, c := range f.seen.keys {
		n += len(c)
	}
	cw.uvarint(uint64(4 * n))
	var buf [8 << 10]byte
	for _, c := range f.seen.keys {
		for len(c) > 0 {
			k := min(len(c), len(buf)/4)
			for i, h := range c[:k] {
				binary.LittleEndian.PutUint32(buf[4*i:], h)
			}
			cw.write(buf[:4*k])
			c = c[k:]
		}
	}
	cw.uvarint(uint64(8 * len(f.seen.hashes)))
	for c := f.seen.hashes; len(c) > 0; {
		k := min(len(c), len(buf)/8)
		for i, h := range c[:k] {
			binary.LittleEndian.PutUint64(buf[8*i:], h)
		}
		cw.write(buf[:8*k])
		c = c[k:]
	}
	// The chunks hold each entry's header (see cleanQueue): restore
	// reads the entries from them.
	cw.uvarint(uint64(len(f.queue.chunks)))
	for _, c := range f.queue.chunks {
		cw.uvarint(uint64(len(c)))
		cw.write(c)
	}
	return cw.n, cw.err
}

// countingWriter writes until the first error and counts the bytes.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.err = err
}

// Write is write as an io.Writer (for gob).
func (c *countingWriter) Write(b []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	c.write(b)
	return len(b), c.err
}

func (c *countingWriter) uvarint(v uint64) {
	var b [binary.MaxVarintLen64]byte
	c.write(binary.AppendUvarint(b[:0], v))
}

// snapshotReader is what readState reads: a gob value, then raw sections.
type snapshotReader interface {
	io.Reader
	io.ByteReader
}

// readState reads a snapshot of any version into one State (since version
// 3, the raw sections into SeenKeys, SeenHashes and Chunks).
func readState(r io.Reader) (*State, error) {
	br, ok := r.(snapshotReader)
	if !ok {
		// gob reads exactly its value from a ByteReader; from anything
		// else it would buffer past it, into the sections.
		br = bufio.NewReader(r)
	}
	var st State
	if err := gob.NewDecoder(br).Decode(&st); err != nil {
		return nil, fmt.Errorf("pipeline: snapshot: %w", err)
	}
	if st.Version < 1 || st.Version > snapshotVersion {
		return nil, fmt.Errorf("pipeline: snapshot version %d, want %d", st.Version, snapshotVersion)
	}
	if st.Version < 3 {
		return &st, nil
	}
	section := func() ([]byte, error) {
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, err
		}
		if n > math.MaxInt64 {
			return nil, fmt.Errorf("a section of %d bytes", n)
		}
		// Into a slice of its length (a restored clean queue keeps its
		// chunks), read in steps of at most 256 MiB: a damaged length runs
		// into the end of the file before it allocates much more.
		var b []byte
		for uint64(len(b)) < n {
			k := int(min(n-uint64(len(b)), 1<<28))
			if b == nil {
				b = make([]byte, 0, k)
			} else {
				b = slices.Grow(b, k)
			}
			if _, err := io.ReadFull(br, b[len(b):len(b)+k]); err != nil {
				return nil, err
			}
			b = b[:len(b)+k]
		}
		return b, nil
	}
	var err error
	if st.Version >= 4 {
		if st.SeenKeys, err = section(); err != nil {
			return nil, fmt.Errorf("pipeline: snapshot: event id keys: %w", err)
		}
	}
	if st.SeenHashes, err = section(); err != nil {
		return nil, fmt.Errorf("pipeline: snapshot: event ids: %w", err)
	}
	count, err := binary.ReadUvarint(br)
	if err == nil && count > 1<<30 {
		err = fmt.Errorf("%d chunks", count)
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: snapshot: clean queue: %w", err)
	}
	for range count {
		c, err := section()
		if err != nil {
			return nil, fmt.Errorf("pipeline: snapshot: clean queue: %w", err)
		}
		st.Chunks = append(st.Chunks, c)
	}
	if st.Version >= 5 {
		return &st, nil // the entries are in the chunks
	}
	if count, err = binary.ReadUvarint(br); err != nil {
		return nil, fmt.Errorf("pipeline: snapshot: clean queue: %w", err)
	}
	for range count {
		var v [3]uint64
		for i := range v {
			if v[i], err = binary.ReadUvarint(br); err == nil && v[i] > math.MaxInt32 {
				err = fmt.Errorf("an entry at %d", v[i])
			}
			if err != nil {
				return nil, fmt.Errorf("pipeline: snapshot: clean queue: %w", err)
			}
		}
		need, err := binary.ReadVarint(br)
		if err != nil {
			return nil, fmt.Errorf("pipeline: snapshot: clean queue: %w", err)
		}
		// (restoreState checks the entries against the chunks, of every version.)
		st.Queue = append(st.Queue, QueuedState{Chunk: int(v[0]), Off: int(v[1]), End: int(v[2]), Need: need})
	}
	return &st, nil
}

// Restore returns the partition pipeline of a snapshot read from r. cat
// receives the snapshot's catalog.
func Restore(cfg Config, cat *catalog.Catalog, r io.Reader) (p *Partition, err error) {
	st, err := readState(r)
	if err != nil {
		return nil, err
	}
	defer func() {
		// A damaged snapshot that still decodes can hold what no processor
		// wrote (an auction with more bidders than outcomes): an error,
		// and the caller rebuilds the partition from its log, rather than
		// a panic at every start.
		if v := recover(); v != nil {
			p, err = nil, fmt.Errorf("pipeline: snapshot: inconsistent state: %v", v)
		}
	}()
	return restoreState(cfg, cat, st)
}

// restoreState is Restore of a snapshot read.
func restoreState(cfg Config, cat *catalog.Catalog, st *State) (*Partition, error) {
	if (st.Clean != nil) != cfg.Clean {
		return nil, fmt.Errorf("pipeline: snapshot clean scope %v, config %v", st.Clean != nil, cfg.Clean)
	}
	cat.Restore(st.Catalog)
	p, err := New(cfg, cat)
	if err != nil {
		return nil, err
	}
	p.wm.Restore(st.Max)
	p.cleanWM.Restore(st.CleanMax)
	p.stats = st.Stats
	p.stats.CleanPending = 0
	switch {
	case st.Version >= 4:
		if err := p.seen.restoreFrozen(st.SeenKeys, st.SeenHashes, st.SeenMaxes, st.SeenShared); err != nil {
			return nil, err
		}
	case st.Version == 3:
		if err := p.seen.restoreBlocks(st.SeenHashes, st.SeenMaxes); err != nil {
			return nil, err
		}
	default:
		p.seen.restore(st.Seen)
	}
	p.flags.Restore(st.Flags)
	if len(st.DevMarks) == len(p.devMarks) {
		copy(p.devMarks, st.DevMarks) // else from None: the next markers come
	}
	p.flagsNext = st.FlagsNext
	p.bots.Restore(st.Bots)
	p.all.restore(&st.All)
	if p.clean != nil {
		p.clean.restore(st.Clean)
		if st.Version >= 5 {
			if err := p.restoreQueue(st); err != nil {
				return nil, err
			}
			return p, nil
		}
		chunks := st.Chunks
		if st.Version == 1 && len(st.Queue) > 0 {
			chunks = [][]byte{st.Arena} // every QueuedState.Chunk is 0
		}
		// The records are decoded here, not first when the clean pass
		// takes them (which panics: we encoded them): a damaged snapshot
		// is an error, which rebuilds the partition, not a crash at every
		// restart. They are copied into the queue's own chunks, each after
		// its header (see cleanQueue); the snapshot's chunks are dropped.
		var e event.Event
		for i, q := range st.Queue {
			if q.Chunk < 0 || q.Chunk >= len(chunks) || q.Off < 0 || q.Off > q.End || q.End > len(chunks[q.Chunk]) {
				return nil, fmt.Errorf("pipeline: snapshot: clean queue entry %+v outside its chunks", q)
			}
			rec := chunks[q.Chunk][q.Off:q.End]
			if err := event.DecodeBinaryShared(rec, &e); err != nil {
				return nil, fmt.Errorf("pipeline: snapshot: clean queue entry %d: %w", i, err)
			}
			p.queue.push(rec, q.Need)
		}
	}
	return p, nil
}

// CheckNext returns an error if the clean pass's queue holds a log offset
// at or past next, the offset a restored partition goes on reading from
// (the snapshot file's header): such an entry would make the pass read a
// record the main pass has not yet taken, or take one twice. A snapshot
// written by this package never has one; the check is for a file whose
// parts were put together wrongly (the file's checksum covers damage).
func (p *Partition) CheckNext(next int64) error {
	if p.queue.n > 0 && p.queue.tailOff >= next {
		return fmt.Errorf("pipeline: snapshot: clean queue holds offset %d, at or past the snapshot's next offset %d", p.queue.tailOff, next)
	}
	return nil
}

// restoreQueue restores the clean queue of a snapshot of version 5 or
// later, its entries read from its chunks: each record is decoded here
// (see restoreState), each log offset must be past the one before it.
func (p *Partition) restoreQueue(st *State) error {
	if st.CleanN < 0 {
		return fmt.Errorf("pipeline: snapshot: clean queue of %d entries", st.CleanN)
	}
	f := frozenQueue{chunks: st.Chunks, n: st.CleanN, need: st.CleanNeed, baseOff: st.CleanBase}
	var e event.Event
	last := int64(-1)
	err := f.each(func(need int64, chunk, off, end int, offset int64) error {
		if end < 0 {
			if offset <= last {
				return fmt.Errorf("offset %d after %d", offset, last)
			}
			last = offset
			p.queue.pushOffset(offset, need)
			return nil
		}
		rec := f.chunks[chunk][off:end]
		if len(rec) == 0 { // a watermark entry (version 6)
			p.queue.pushWatermark(need)
			return nil
		}
		if err := event.DecodeBinaryShared(rec, &e); err != nil {
			return err
		}
		p.queue.push(rec, need)
		return nil
	})
	if err != nil {
		return fmt.Errorf("pipeline: snapshot: clean queue entry %d of %d: %w", p.queue.n, f.n, err)
	}
	return nil
}
