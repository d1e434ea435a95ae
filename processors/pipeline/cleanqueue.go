package pipeline

import (
	"encoding/binary"
	"fmt"
)

// cleanQueue holds the events waiting for the clean pass, in arrival
// order, each as a header and what it refers to, back to back in
// pointer-free chunks (the garbage collector does not scan them). The
// header is the main watermark at which the clean pass may take the event
// (a varint difference from the previous entry's) and a uvarint tag: a
// record's length times two, the record following (the event held here),
// or an offset's difference from the previous offset entry's times two
// plus one (the event read again from the partition's log when taken:
// Partition.ReadCleanFrom). A record of no bytes is a watermark entry
// (Partition.Advance): its need is the watermark, and the clean pass
// moves its own watermark when it takes it. An offset entry is two or three bytes, a
// record about 120 in the benchmarks' mix: held here, the events of the
// clean pass's lag were most of a high-rate partition's memory and
// snapshot (about 150 KB per event/s).
//
// A growing queue never copies what it holds, and a chunk is dropped
// once read, never reused (a Frozen snapshot may still be writing it).
// The headers live with the records, not in a slice of entries beside
// them: such a slice grew by copies (1.25× at a time, about 5× its final
// size allocated in all, 160 bytes per event at 32 bytes an entry) and
// doubled the memory traffic per event.
type cleanQueue struct {
	chunks   [][]byte // chunks[0] holds the next entry to take, at head
	head     int      // offset in chunks[0] of the next entry's header
	n        int      // entries waiting
	marks    int      // of them, watermark entries (pushWatermark)
	nextCap  int      // the capacity of the next chunk (grows to chunkSize)
	tailNeed int64    // the need of the last entry pushed
	need     int64    // the need of the next entry (when n > 0)
	tailOff  int64    // the offset of the last offset entry pushed
	headOff  int64    // the offset of the last offset entry taken (or the base)
}

// chunkSize is the capacity of a clean-queue chunk; a chunk with less than
// chunkSlack free takes no more entries. A queue that was empty starts
// with a chunk of firstChunk and doubles up to chunkSize: a partition
// whose queue holds a watermark entry or a few events does not hold a MiB
// (helper-52: 64 idle partitions each waiting for a marker held 64 MiB).
// (Variables for the tests.)
var (
	chunkSize  = 1 << 20
	chunkSlack = 4 << 10
	firstChunk = 16 << 10
)

// header appends an entry's header (need, tag) to the last chunk, starting
// a new one when it is nearly full, and returns the chunk's index.
func (q *cleanQueue) header(need int64, tag uint64) int {
	c := len(q.chunks) - 1
	if c < 0 || cap(q.chunks[c])-len(q.chunks[c]) < chunkSlack {
		if c < 0 || q.nextCap == 0 {
			q.nextCap = min(firstChunk, chunkSize)
		}
		q.chunks = append(q.chunks, make([]byte, 0, q.nextCap))
		q.nextCap = min(2*q.nextCap, chunkSize)
		c++
	}
	b := binary.AppendVarint(q.chunks[c], need-q.tailNeed)
	q.chunks[c] = binary.AppendUvarint(b, tag)
	q.tailNeed = need
	if q.n == 0 {
		q.need = need
	}
	q.n++
	return c
}

// push appends rec, which the clean pass may take once the main watermark
// reaches need.
func (q *cleanQueue) push(rec []byte, need int64) {
	c := q.header(need, uint64(len(rec))<<1)
	q.chunks[c] = append(q.chunks[c], rec...) // a record over the slack grows the chunk: correct, rare
}

// pushWatermark appends a watermark entry: an empty record whose need is
// the watermark wm (Partition.Advance).
func (q *cleanQueue) pushWatermark(wm int64) {
	q.header(wm, 0)
	q.marks++
}

// pushOffset appends the record at offset of the partition's log, which
// must be past every offset pushed before.
func (q *cleanQueue) pushOffset(offset, need int64) {
	if offset < q.tailOff {
		panic(fmt.Sprintf("pipeline: clean queue: offset %d after %d", offset, q.tailOff))
	}
	q.header(need, uint64(offset-q.tailOff)<<1|1)
	q.tailOff = offset
}

// ready reports whether there is an entry the clean pass may take at
// main watermark wm (a test per event, kept inlinable).
func (q *cleanQueue) ready(wm int64) bool { return q.n > 0 && q.need <= wm }

// nextOffset returns the log offset of the next entry (ready must have
// returned true), or false if it holds its record: the caller reads the
// record before it takes the entry, so a failed read leaves the queue as
// it was.
func (q *cleanQueue) nextOffset() (int64, bool) {
	b := q.chunks[0][q.head:]
	_, k := binary.Varint(b)
	tag, _ := binary.Uvarint(b[k:])
	return q.headOff + int64(tag>>1), tag&1 == 1
}

// take returns the next entry (ready must have returned true): its record
// (bytes never written again), or nil and its offset in the log.
func (q *cleanQueue) take() (rec []byte, offset int64) {
	b := q.chunks[0][q.head:]
	_, k := binary.Varint(b) // the difference that made q.need
	tag, m := binary.Uvarint(b[k:])
	end := k + m
	if tag&1 == 0 {
		start := end
		end += int(tag >> 1)
		rec = b[start:end:end]
		if tag == 0 {
			q.marks--
		}
	} else {
		q.headOff += int64(tag >> 1)
		offset = q.headOff
	}
	q.head += end
	q.n--
	switch {
	case q.n == 0:
		// Drop the chunks, the last one too (the next push starts a new
		// one): an idle queue holds no memory.
		clear(q.chunks)
		q.chunks = q.chunks[:0]
		q.head = 0
	case q.head == len(q.chunks[0]): // read to its end: the next is in the next chunk
		q.chunks[0] = nil
		q.chunks = q.chunks[1:]
		q.head = 0
		fallthrough
	default:
		d, _ := binary.Varint(q.chunks[0][q.head:])
		q.need += d
	}
	return rec, offset
}

// frozenQueue is a clean queue as of a Freeze: the chunks' slices, from
// the next entry's header (bytes the partition never writes again), the
// number of entries, the first one's need and the offset its offset
// differences start from.
type frozenQueue struct {
	chunks  [][]byte
	n       int
	need    int64
	baseOff int64
}

func (q *cleanQueue) freeze() frozenQueue {
	if q.n == 0 {
		return frozenQueue{}
	}
	chunks := append([][]byte(nil), q.chunks...)
	chunks[0] = chunks[0][q.head:]
	return frozenQueue{chunks: chunks, n: q.n, need: q.need, baseOff: q.headOff}
}

// each calls fn with every entry of the frozen queue, in order: its need,
// and its chunk's index with the record's offset and end there (a record
// entry) or its log offset (end < 0). It stops at fn's first error and
// returns it, or an error where the chunks do not hold exactly n
// well-formed entries (a damaged snapshot).
func (f *frozenQueue) each(fn func(need int64, chunk, off, end int, offset int64) error) error {
	need, logOff, c, i := f.need, f.baseOff, 0, 0
	for r := range f.n {
		for c < len(f.chunks) && i == len(f.chunks[c]) {
			c, i = c+1, 0
		}
		if c == len(f.chunks) {
			return fmt.Errorf("%d entries in chunks of %d", f.n, r)
		}
		b := f.chunks[c][i:]
		d, k := binary.Varint(b)
		if k <= 0 {
			return fmt.Errorf("entry %d: a bad header", r)
		}
		tag, m := binary.Uvarint(b[k:])
		if m <= 0 {
			return fmt.Errorf("entry %d: a bad header", r)
		}
		if r > 0 { // (the first's difference is from the entry before it, taken)
			need += d
		}
		i += k + m
		if tag&1 == 1 {
			logOff += int64(tag >> 1)
			if logOff < 0 {
				return fmt.Errorf("entry %d: offset %d", r, logOff)
			}
			if err := fn(need, c, 0, -1, logOff); err != nil {
				return err
			}
			continue
		}
		size := tag >> 1
		if size > uint64(len(f.chunks[c])-i) {
			return fmt.Errorf("entry %d: a record of %d bytes past its chunk", r, size)
		}
		off := i
		i += int(size)
		if err := fn(need, c, off, i, 0); err != nil {
			return err
		}
	}
	for ; c < len(f.chunks); c, i = c+1, 0 {
		if i != len(f.chunks[c]) {
			return fmt.Errorf("%d bytes after the last of %d entries", len(f.chunks[c])-i, f.n)
		}
	}
	return nil
}
