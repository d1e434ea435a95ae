package pipeline

import "encoding/binary"

// cleanQueue holds the events waiting for the clean pass, in arrival
// order: each as a header (the main watermark at which the clean pass may
// take it, as a varint difference from the previous event's, then the
// record's length as a uvarint) and its record, back to back in
// pointer-free chunks (the garbage collector does not scan them). A
// growing queue never copies what it holds, and a chunk is dropped once
// read, never reused (a Frozen snapshot may still be writing it).
//
// The headers live with the records, not in a slice of entries beside
// them: such a slice grew by copies (1.25× at a time, about 5× its final
// size allocated in all, 160 bytes per event at 32 bytes an entry) and
// doubled the memory traffic per event; a header is 2 or 3 bytes.
type cleanQueue struct {
	chunks   [][]byte // chunks[0] holds the next record to take, at head
	head     int      // offset in chunks[0] of the next record's header
	n        int      // records waiting
	tailNeed int64    // the need of the last record pushed
	need     int64    // the need of the next record (when n > 0)
}

// chunkSize is the capacity of a clean-queue chunk; a chunk with less than
// chunkSlack free takes no more records. (Variables for the tests.)
var (
	chunkSize  = 1 << 20
	chunkSlack = 4 << 10
)

// push appends rec, which the clean pass may take once the main watermark
// reaches need.
func (q *cleanQueue) push(rec []byte, need int64) {
	c := len(q.chunks) - 1
	if c < 0 || cap(q.chunks[c])-len(q.chunks[c]) < chunkSlack {
		q.chunks = append(q.chunks, make([]byte, 0, chunkSize))
		c++
	}
	b := binary.AppendVarint(q.chunks[c], need-q.tailNeed)
	b = binary.AppendUvarint(b, uint64(len(rec)))
	q.chunks[c] = append(b, rec...) // a record over the slack grows the chunk: correct, rare
	q.tailNeed = need
	if q.n == 0 {
		q.need = need
	}
	q.n++
}

// ready reports whether there is a record the clean pass may take at
// main watermark wm (a test per event, kept inlinable).
func (q *cleanQueue) ready(wm int64) bool { return q.n > 0 && q.need <= wm }

// take returns the next record (ready must have returned true). The bytes
// are never written again.
func (q *cleanQueue) take() []byte {
	b := q.chunks[0][q.head:]
	_, k := binary.Varint(b) // the difference that made q.need
	size, m := binary.Uvarint(b[k:])
	start := k + m
	end := start + int(size)
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
	return b[start:end:end]
}

// frozenQueue is a clean queue as of a Freeze: the chunks' slices, from
// the next record's header (bytes the partition never writes again), and
// the number of records.
type frozenQueue struct {
	chunks [][]byte
	n      int
	need   int64 // the first record's
}

func (q *cleanQueue) freeze() frozenQueue {
	if q.n == 0 {
		return frozenQueue{}
	}
	chunks := append([][]byte(nil), q.chunks...)
	chunks[0] = chunks[0][q.head:]
	return frozenQueue{chunks: chunks, n: q.n, need: q.need}
}

// each calls f with every record of the frozen queue, in order: its chunk's
// index, its offset and end there, and its need.
func (f *frozenQueue) each(fn func(chunk, off, end int, need int64)) {
	need, c, i := f.need, 0, 0
	for r := range f.n {
		for i == len(f.chunks[c]) {
			c, i = c+1, 0
		}
		b := f.chunks[c][i:]
		d, k := binary.Varint(b)
		size, m := binary.Uvarint(b[k:])
		if r > 0 { // (the first's difference is from the record before it, taken)
			need += d
		}
		off := i + k + m
		i = off + int(size)
		fn(c, off, i, need)
	}
}
