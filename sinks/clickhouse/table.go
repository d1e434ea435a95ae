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
	Name  string
	build func(rows []T) any
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

func column[T, V any](name string, get func(*T) V) Column[T] {
	return Column[T]{Name: name, build: func(rows []T) any {
		out := make([]V, len(rows))
		for i := range rows {
			out[i] = get(&rows[i])
		}
		return out
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
	return Column[T]{Name: name, build: func(rows []T) any {
		vals := make([]int64, len(rows)) // one allocation backs every pointer
		out := make([]*int64, len(rows))
		for i := range rows {
			if v, ok := get(&rows[i]); ok {
				vals[i] = v
				out[i] = &vals[i]
			}
		}
		return out
	}}
}

// NullableDateTimeCol is a Nullable(DateTime) column fed from Unix
// milliseconds and a presence flag.
func NullableDateTimeCol[T any](name string, getMs func(*T) (int64, bool)) Column[T] {
	return Column[T]{Name: name, build: func(rows []T) any {
		vals := make([]time.Time, len(rows))
		out := make([]*time.Time, len(rows))
		for i := range rows {
			if v, ok := getMs(&rows[i]); ok {
				vals[i] = time.UnixMilli(v).UTC()
				out[i] = &vals[i]
			}
		}
		return out
	}}
}
