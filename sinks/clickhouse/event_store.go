package clickhouse

import (
	"math/bits"
	"time"
	"unsafe"

	"github.com/questline/questline/event"
)

// eventStore is one batch of the sink's events, kept column by column in
// pointer-free buffers: the record values back to back, and per field of
// the record (event.proto) the spans of its strings inside them or its
// numbers. Rows are indexes into it, so a batch of 100,000 events gives
// the garbage collector nothing to scan and no pointer writes to track,
// where a []event.Event batch holds 30 pointers per row. Its buffers keep
// their capacity across batches.
//
// A record is copied once, into raw, and scanned in place there
// (event.ScanBinary): each field present in the record is one store into
// its field's buffer, and each absent one a zero. The columns of
// eventColumns are built from the field buffers when the batch is
// inserted; two columns may read one field (event_time and
// event_time_ms).
type eventStore struct {
	raw  []byte                // record values, back to back
	base []int                 // where row i's value starts in raw
	strs [maxField + 1][]span  // per string field read by a column, len cap rows
	nums [maxField + 1][]int64 // per numeric field read by a column (and Has), len cap rows
	scan storeFields           // the visitor of add, kept to avoid an allocation
	rows int                   // rows the buffers hold before they grow
	mask uint64                // bit f set: field f has a buffer (in strs or nums)
}

// span locates a string of a row: off bytes from the row's value in raw.
type span struct{ off, n uint32 }

// maxField is the highest field number of event.proto that a column
// reads.
const maxField = 60

// fieldHas is the presence bit set (event.Event.Has) in event.proto.
const fieldHas = 16

// newEventStore returns a store sized for batches of rows rows: its
// buffers are allocated once at their size (growing them by doubling
// copies and touches twice the memory, in a sink's first batches).
func newEventStore(rows int) *eventStore {
	st := &eventStore{rows: rows, base: make([]int, 0, rows), mask: 1 << fieldHas}
	st.nums[fieldHas] = make([]int64, rows)
	for _, c := range eventColumns {
		if c.field == 0 || c.field > maxField {
			panic("clickhouse: events column " + c.name + " reads no field of the record up to maxField")
		}
		switch {
		case st.mask&(1<<c.field) != 0: // another column reads it too
		case c.kind == kindString && c.enum == nil:
			st.strs[c.field] = make([]span, rows)
		default:
			st.nums[c.field] = make([]int64, rows)
		}
		st.mask |= 1 << c.field
	}
	st.scan.st = st
	return st
}

// maxArenaGuess bounds the first allocation of the record arena.
const maxArenaGuess = 64 << 20

// storeFields puts the fields of one record into its row of the store.
type storeFields struct {
	st   *eventStore
	row  int
	lo   uintptr // address of the record in raw
	seen uint64  // bit f set: field f was stored
}

func (f *storeFields) Varint(num, v uint64) {
	if num <= maxField && f.st.nums[num] != nil {
		f.st.nums[num][f.row] = int64(v)
		f.seen |= 1 << num
	}
}

func (f *storeFields) Bytes(num uint64, s string) {
	if num <= maxField && f.st.strs[num] != nil {
		f.st.strs[num][f.row] = span{uint32(uintptr(unsafe.Pointer(unsafe.StringData(s))) - f.lo), uint32(len(s))}
		f.seen |= 1 << num
	}
}

// add scans one events record (event.AppendBinary) into the store and
// returns its row.
func (st *eventStore) add(value []byte) (uint32, error) {
	if len(value) == 0 {
		return 0, event.ErrCorrupt
	}
	if cap(st.raw) == 0 {
		st.raw = make([]byte, 0, min(st.rows*len(value), maxArenaGuess))
	}
	row := len(st.base)
	if row == st.rows {
		st.grow()
	}
	start := len(st.raw)
	st.raw = append(st.raw, value...)
	rec := st.raw[start:]
	st.scan.row, st.scan.lo, st.scan.seen = row, uintptr(unsafe.Pointer(unsafe.SliceData(rec))), 0
	if err := event.ScanBinary(unsafe.String(&rec[0], len(rec)), &st.scan); err != nil {
		st.raw = st.raw[:start]
		return 0, err
	}
	for absent := st.mask &^ st.scan.seen; absent != 0; absent &= absent - 1 {
		f := bits.TrailingZeros64(absent)
		if st.strs[f] != nil {
			st.strs[f][row] = span{}
		} else {
			st.nums[f][row] = 0
		}
	}
	st.base = append(st.base, start)
	return uint32(row), nil
}

// grow doubles the rows the field buffers hold (a batch larger than the
// store was sized for).
func (st *eventStore) grow() {
	n := max(2*st.rows, 1)
	for f := range st.strs {
		if st.strs[f] != nil {
			st.strs[f] = append(st.strs[f], make([]span, n-st.rows)...)
		}
		if st.nums[f] != nil {
			st.nums[f] = append(st.nums[f], make([]int64, n-st.rows)...)
		}
	}
	st.rows = n
}

// len returns the number of rows.
func (st *eventStore) len() int { return len(st.base) }

// reset empties the store, keeping its buffers.
func (st *eventStore) reset() { st.raw, st.base = st.raw[:0], st.base[:0] }

// str returns the string of field f in row i. It points into raw: valid
// until reset, and the driver copies it.
func (st *eventStore) str(f uint64, i uint32) string {
	sp := st.strs[f][i]
	if sp.n == 0 {
		return ""
	}
	return unsafe.String(&st.raw[st.base[i]+int(sp.off)], sp.n)
}

// value returns row i's record value.
func (st *eventStore) value(i uint32) []byte {
	end := len(st.raw)
	if int(i)+1 < len(st.base) {
		end = st.base[i+1]
	}
	return st.raw[st.base[i]:end]
}

// event rebuilds row i as an event.Event (for dead-lettering a row
// ClickHouse refused), with strings of its own.
func (st *eventStore) event(i uint32) event.Event {
	var e event.Event
	event.DecodeBinary(st.value(i), &e) // scanned once already
	return e
}

// table returns the events Table over rows of this store: each column is
// built in one loop over the rows from its field's buffer.
func (st *eventStore) table() Table[uint32] {
	cols := make([]Column[uint32], len(eventColumns))
	for k := range eventColumns {
		cols[k] = Column[uint32]{Name: eventColumns[k].name, build: st.builder(&eventColumns[k])}
	}
	return Table[uint32]{Name: "events", Columns: cols}
}

func (st *eventStore) builder(c *eventColumn) func(rows []uint32, scratch any) any {
	f, bit := c.field, int64(c.bit)
	switch c.kind {
	case kindString:
		if c.enum != nil {
			return func(rows []uint32, scratch any) any {
				out, nums := reuse[string](scratch, len(rows)), st.nums[f]
				for j, i := range rows {
					out[j] = c.enum(uint64(nums[i]))
				}
				return out
			}
		}
		return func(rows []uint32, scratch any) any {
			out := reuse[string](scratch, len(rows))
			for j, i := range rows {
				out[j] = st.str(f, i)
			}
			return out
		}
	case kindInt64:
		return func(rows []uint32, scratch any) any {
			out, nums := reuse[int64](scratch, len(rows)), st.nums[f]
			for j, i := range rows {
				out[j] = nums[i]
			}
			return out
		}
	case kindDateTime:
		return func(rows []uint32, scratch any) any {
			out, nums := reuse[time.Time](scratch, len(rows)), st.nums[f]
			for j, i := range rows {
				out[j] = time.UnixMilli(nums[i]).UTC()
			}
			return out
		}
	case kindNullInt64:
		return func(rows []uint32, scratch any) any {
			n, nums, has := reuseNullable[int64](scratch, len(rows)), st.nums[f], st.nums[fieldHas]
			for j, i := range rows {
				n.ptrs[j] = nil
				if has[i]&bit != 0 {
					n.vals[j] = nums[i]
					n.ptrs[j] = &n.vals[j]
				}
			}
			return n
		}
	case kindNullDateTime:
		return func(rows []uint32, scratch any) any {
			n, nums, has := reuseNullable[time.Time](scratch, len(rows)), st.nums[f], st.nums[fieldHas]
			for j, i := range rows {
				n.ptrs[j] = nil
				if has[i]&bit != 0 {
					n.vals[j] = time.UnixMilli(nums[i]).UTC()
					n.ptrs[j] = &n.vals[j]
				}
			}
			return n
		}
	}
	panic("clickhouse: events column of unknown kind")
}
