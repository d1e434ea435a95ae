package clickhouse

import (
	"unsafe"

	"github.com/questline/questline/event"
)

// eventStore is one batch of the sink's events, decoded column by column
// into pointer-free buffers: string bytes in one arena, spans, numbers and
// presence flags per column, and each record's value (to rebuild an event
// ClickHouse refuses). Rows are indexes into it, so a batch of 100,000
// events gives the garbage collector nothing to scan and no pointer writes
// to track, where a []event.Event batch holds 30 pointers per row. Its
// buffers keep their capacity across batches.
type eventStore struct {
	bytes  []byte      // string bytes of every row
	base   []int       // where row i's strings start in bytes
	spans  [][]span    // per string column of eventColumns (nil for others), from base
	nums   [][]int64   // per numeric column (nil for strings)
	has    [][]bool    // per nullable column: value present
	raw    []byte      // record values, back to back
	rawEnd []int       // end of row i's value in raw
	e      event.Event // decoding scratch
	rows   int         // expected rows per batch, for sizing the buffers
}

// span locates a string of a row in eventStore.bytes, from the row's
// base (a record is at most a few MiB, so uint32 suffices).
type span struct{ off, n uint32 }

// newEventStore returns a store sized for batches of rows rows: its
// buffers are allocated once at their size (growing them by doubling
// copies and touches twice the memory, in a sink's first batches).
func newEventStore(rows int) *eventStore {
	st := &eventStore{
		spans:  make([][]span, len(eventColumns)),
		nums:   make([][]int64, len(eventColumns)),
		has:    make([][]bool, len(eventColumns)),
		base:   make([]int, 0, rows),
		rawEnd: make([]int, 0, rows),
		rows:   rows,
	}
	for k, c := range eventColumns {
		switch {
		case c.kind == kindString:
			st.spans[k] = make([]span, 0, rows)
		case c.kind.nullable():
			st.has[k] = make([]bool, 0, rows)
			fallthrough
		default:
			st.nums[k] = make([]int64, 0, rows)
		}
	}
	return st
}

// maxArenaGuess bounds the first allocation of a byte arena.
const maxArenaGuess = 64 << 20

// add decodes one events record (event.AppendBinary) into the store and
// returns its row.
func (st *eventStore) add(value []byte) (uint32, error) {
	e := &st.e
	if err := event.DecodeBinary(value, e); err != nil {
		return 0, err
	}
	if cap(st.raw) == 0 {
		// Size the byte arenas from the first record: the strings of a
		// record are at most its length.
		guess := min(st.rows*len(value), maxArenaGuess)
		st.raw, st.bytes = make([]byte, 0, guess), make([]byte, 0, guess)
	}
	row := uint32(len(st.rawEnd))
	st.raw = append(st.raw, value...)
	st.rawEnd = append(st.rawEnd, len(st.raw))
	base := len(st.bytes)
	st.base = append(st.base, base)
	for k := range eventColumns {
		c := &eventColumns[k]
		if c.kind == kindString {
			s := c.str(e)
			st.spans[k] = append(st.spans[k], span{uint32(len(st.bytes) - base), uint32(len(s))})
			st.bytes = append(st.bytes, s...)
			continue
		}
		v, ok := c.num(e)
		st.nums[k] = append(st.nums[k], v)
		if c.kind.nullable() {
			st.has[k] = append(st.has[k], ok)
		}
	}
	return row, nil
}

// len returns the number of rows.
func (st *eventStore) len() int { return len(st.rawEnd) }

// reset empties the store, keeping its buffers.
func (st *eventStore) reset() {
	st.bytes, st.base, st.raw, st.rawEnd = st.bytes[:0], st.base[:0], st.raw[:0], st.rawEnd[:0]
	for k := range eventColumns {
		st.spans[k], st.nums[k], st.has[k] = st.spans[k][:0], st.nums[k][:0], st.has[k][:0]
	}
}

// str returns the string of column k in row i. It points into the arena:
// valid until reset, and the driver copies it.
func (st *eventStore) str(k int, i uint32) string {
	sp := st.spans[k][i]
	if sp.n == 0 {
		return ""
	}
	return unsafe.String(&st.bytes[st.base[i]+int(sp.off)], sp.n)
}

// num returns the number of column k in row i and whether it is present.
func (st *eventStore) num(k int, i uint32) (int64, bool) {
	if eventColumns[k].kind.nullable() {
		return st.nums[k][i], st.has[k][i]
	}
	return st.nums[k][i], true
}

// event rebuilds row i as an event.Event (for dead-lettering a row
// ClickHouse refused).
func (st *eventStore) event(i uint32) event.Event {
	start := 0
	if i > 0 {
		start = st.rawEnd[i-1]
	}
	var e event.Event
	event.DecodeBinary(st.raw[start:st.rawEnd[i]], &e) // decoded once already
	return e
}

// table returns the events Table over rows of this store.
func (st *eventStore) table() Table[uint32] {
	return eventsTable(
		func(k int) func(*uint32) string { return func(i *uint32) string { return st.str(k, *i) } },
		func(k int) func(*uint32) (int64, bool) { return func(i *uint32) (int64, bool) { return st.num(k, *i) } },
	)
}
