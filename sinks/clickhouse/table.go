package clickhouse

import (
	"fmt"
	"strings"
	"time"
)

// Table describes how rows of type T map onto a ClickHouse table, column
// by column. It is the Writer's extension point: a window processor
// declares its table once, e.g.
//
//	var questCompletion = clickhouse.Table[Result]{
//		Name: "quest_completion",
//		Columns: []clickhouse.Column[Result]{
//			clickhouse.DateTimeCol("window_start", func(r *Result) int64 { return r.StartMs }),
//			clickhouse.StringCol("quest_id", func(r *Result) string { return r.QuestID }),
//			clickhouse.UInt64Col("starts", func(r *Result) uint64 { return r.Starts }),
//		},
//	}
//
// and writes []Result through a Writer. Rows are appended column by column
// (one typed slice per column), which is what the native protocol sends.
type Table[T any] struct {
	// Name is the table name, without database (the Client's database is
	// used). It comes from code, never from input.
	Name string
	// Columns lists the columns written, in any order; columns left out
	// take their DEFAULT.
	Columns []Column[T]
}

// Column is one column of a Table: its name and a function that builds the
// column's values for a slice of rows. Build it with the *Col constructors.
type Column[T any] struct {
	Name string
	// build returns the column's values for rows, reusing the slice that
	// the previous call returned (scratch, nil at first) when it is large
	// enough: a Writer streams many blocks and allocates once.
	build func(rows []T, scratch any) any
}

func (t *Table[T]) insertQuery() (string, error) {
	if !identRE.MatchString(t.Name) {
		return "", fmt.Errorf("clickhouse: table name %q is not a plain identifier", t.Name)
	}
	if len(t.Columns) == 0 {
		return "", fmt.Errorf("clickhouse: table %s: no columns", t.Name)
	}
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		if !identRE.MatchString(c.Name) || c.build == nil {
			return "", fmt.Errorf("clickhouse: table %s: bad column %q", t.Name, c.Name)
		}
		names[i] = c.Name
	}
	// 18.16 needs the explicit column list for native batches.
	return "INSERT INTO " + t.Name + " (" + strings.Join(names, ", ") + ")", nil
}

// reuse returns scratch resliced to n if it is a large enough []V, else a
// new slice.
func reuse[V any](scratch any, n int) []V {
	if s, ok := scratch.([]V); ok && cap(s) >= n {
		return s[:n]
	}
	return make([]V, n)
}

func column[T, V any](name string, get func(*T) V) Column[T] {
	return Column[T]{Name: name, build: func(rows []T, scratch any) any {
		out := reuse[V](scratch, len(rows))
		for i := range rows {
			out[i] = get(&rows[i])
		}
		return out
	}}
}

// nullable is the scratch of a Nullable column: the pointers handed to
// the driver and the values they point into.
type nullable[V any] struct {
	ptrs []*V
	vals []V
}

// reuseNullable returns scratch resliced to n rows if it is a large
// enough *nullable[V], else a new one.
func reuseNullable[V any](scratch any, rows int) *nullable[V] {
	n, _ := scratch.(*nullable[V])
	if n == nil || cap(n.ptrs) < rows {
		n = &nullable[V]{ptrs: make([]*V, rows), vals: make([]V, rows)}
	}
	n.ptrs, n.vals = n.ptrs[:rows], n.vals[:rows]
	return n
}

func nullableColumn[T, V any](name string, get func(*T) (V, bool)) Column[T] {
	return Column[T]{Name: name, build: func(rows []T, scratch any) any {
		n := reuseNullable[V](scratch, len(rows))
		for i := range rows {
			n.ptrs[i] = nil
			if v, ok := get(&rows[i]); ok {
				n.vals[i] = v
				n.ptrs[i] = &n.vals[i]
			}
		}
		return n
	}}
}

// StringCol is a String column.
func StringCol[T any](name string, get func(*T) string) Column[T] { return column(name, get) }

// Int64Col is an Int64 column.
func Int64Col[T any](name string, get func(*T) int64) Column[T] { return column(name, get) }

// Int32Col is an Int32 column.
func Int32Col[T any](name string, get func(*T) int32) Column[T] { return column(name, get) }

// UInt64Col is a UInt64 column.
func UInt64Col[T any](name string, get func(*T) uint64) Column[T] { return column(name, get) }

// UInt8Col is a UInt8 column (also for 0/1 flags).
func UInt8Col[T any](name string, get func(*T) uint8) Column[T] { return column(name, get) }

// Float64Col is a Float64 column.
func Float64Col[T any](name string, get func(*T) float64) Column[T] { return column(name, get) }

// DateTimeCol is a DateTime column (UTC, second precision) fed from Unix
// milliseconds.
func DateTimeCol[T any](name string, getMs func(*T) int64) Column[T] {
	return column(name, func(r *T) time.Time { return time.UnixMilli(getMs(r)).UTC() })
}

// NullableInt64Col is a Nullable(Int64) column: get returns the value and
// whether it is present.
func NullableInt64Col[T any](name string, get func(*T) (int64, bool)) Column[T] {
	return nullableColumn(name, get)
}

// NullableDateTimeCol is a Nullable(DateTime) column fed from Unix
// milliseconds and a presence flag.
func NullableDateTimeCol[T any](name string, getMs func(*T) (int64, bool)) Column[T] {
	return nullableColumn(name, func(r *T) (time.Time, bool) {
		ms, ok := getMs(r)
		return time.UnixMilli(ms).UTC(), ok
	})
}

// values returns what the driver appends for a built column.
func values(built any) any {
	switch n := built.(type) {
	case *nullable[int64]:
		return n.ptrs
	case *nullable[time.Time]:
		return n.ptrs
	}
	return built
}
