package clickhouse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// WriterOpt configures a Writer.
type WriterOpt func(*writerCfg)

type writerCfg struct {
	batchRows     int
	batchWait     time.Duration
	minBackoff    time.Duration
	maxBackoff    time.Duration
	insertTimeout time.Duration
	parallel      int
}

// BatchRows sets the row count at which Due reports a batch ready.
// Default 100000.
func BatchRows(n int) WriterOpt { return func(c *writerCfg) { c.batchRows = n } }

// BatchWait sets how long the first buffered row may wait before Due
// reports the batch ready. Default 1s.
func BatchWait(d time.Duration) WriterOpt { return func(c *writerCfg) { c.batchWait = d } }

// RetryBackoff sets the first and the longest pause between attempts of a
// batch that failed transiently; pauses double with jitter in between.
// Default 100ms and 5s.
func RetryBackoff(min, max time.Duration) WriterOpt {
	return func(c *writerCfg) { c.minBackoff, c.maxBackoff = min, max }
}

// InsertTimeout bounds one INSERT attempt, so a hung connection becomes a
// retry. Default 60s.
func InsertTimeout(d time.Duration) WriterOpt { return func(c *writerCfg) { c.insertTimeout = d } }

// InsertParallelism sets how many INSERTs a large batch (32,768 rows or
// more) is split into, sent at once on separate connections
// so that the server works on them with several threads. Default 2.
func InsertParallelism(n int) WriterOpt { return func(c *writerCfg) { c.parallel = n } }

func (c *writerCfg) validate() error {
	switch {
	case c.batchRows < 1:
		return errors.New("clickhouse: BatchRows must be >= 1")
	case c.batchWait <= 0:
		return errors.New("clickhouse: BatchWait must be > 0")
	case c.minBackoff <= 0 || c.maxBackoff < c.minBackoff:
		return errors.New("clickhouse: RetryBackoff needs 0 < min <= max")
	case c.insertTimeout <= 0:
		return errors.New("clickhouse: InsertTimeout must be > 0")
	case c.parallel < 1:
		return errors.New("clickhouse: InsertParallelism must be >= 1")
	}
	return nil
}

// blockRows is the size of the blocks a batch is streamed in. The driver
// copies every value into its column buffers, grown anew for each INSERT
// and reused between the INSERT's blocks: 4,096-row blocks keep those
// buffers small enough to stay in cache and make a quarter of the garbage
// of 16,384-row ones (session 7: the sink's CPU per row 0.8x, the Writer's
// 0.6x, the server's unchanged; docs/benchmarks/sink.md).
const blockRows = 4096

// splitRows is the smallest batch split into InsertParallelism INSERTs;
// smaller ones go in one (each INSERT is a part for the server to merge).
const splitRows = 32768

// Refused is a row ClickHouse refused for good (a poison row), with the
// reason. Writers hand refused rows back instead of blocking on them.
type Refused[T any] struct {
	Row T
	Err error
}

// Writer buffers rows of one table and inserts them in batches. It is the
// one way questline writes rows to ClickHouse:
//
//   - batching: Add buffers, Due says when a batch is full (BatchRows) or
//     old enough (BatchWait), Flush inserts it column by column;
//   - retry: a transient failure (ClickHouse down, network, overload) is
//     retried with backoff until it succeeds or ctx ends, and the rows stay
//     buffered, so the caller keeps its place and loses nothing;
//   - poison rows: a batch ClickHouse refuses for its data is bisected down
//     to the refused rows, which Flush returns; the rest is written;
//   - idempotency: the table must be a ReplacingMergeTree keyed by the row
//     identity (checked on first Flush), so a batch retried after an
//     unknown outcome, or re-sent by a restarted caller, reads once;
//   - metrics: questline_clickhouse_* series labelled by table.
//
// A Writer is not safe for concurrent use; use one per goroutine.
type Writer[T any] struct {
	c       *Client
	table   Table[T]
	query   string
	cfg     writerCfg
	buf     []T
	since   time.Time // when the first buffered row was added
	checked bool      // engine verified
	scratch [][]any   // per parallel INSERT, per column: the last built block
	lastLog time.Time
}

// NewWriter returns a Writer of table through c.
func NewWriter[T any](c *Client, table Table[T], opts ...WriterOpt) (*Writer[T], error) {
	cfg := writerCfg{batchRows: 100_000, batchWait: time.Second, minBackoff: 100 * time.Millisecond, maxBackoff: 5 * time.Second, insertTimeout: time.Minute, parallel: 2}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	q, err := table.insertQuery()
	if err != nil {
		return nil, err
	}
	return &Writer[T]{c: c, table: table, query: q, cfg: cfg}, nil
}

// Add buffers rows for the next Flush.
func (w *Writer[T]) Add(rows ...T) {
	if len(rows) == 0 {
		return
	}
	w.grow()
	w.buf = append(w.buf, rows...)
}

// Next buffers one zero row and returns it for the caller to fill in
// place, which saves a copy of wide rows. The pointer is valid until the
// next call of any Writer method. Use DropLast to take the row back.
func (w *Writer[T]) Next() *T {
	w.grow()
	if n := len(w.buf); n < cap(w.buf) {
		// Slots past len are zero (Flush and DropLast clear what they
		// release), so reslicing yields a zero row without writing one.
		w.buf = w.buf[:n+1]
	} else {
		var zero T
		w.buf = append(w.buf, zero)
	}
	return &w.buf[len(w.buf)-1]
}

// DropLast removes the last buffered row (one that Next returned and the
// caller could not fill).
func (w *Writer[T]) DropLast() {
	if n := len(w.buf); n > 0 {
		var zero T
		w.buf[n-1] = zero
		w.buf = w.buf[:n-1]
	}
}

// grow starts the batch clock on an empty buffer and gives the buffer a
// batch's capacity at once: growing a large buffer of pointerful rows by
// doubling costs more than the inserts.
func (w *Writer[T]) grow() {
	if len(w.buf) == 0 {
		w.since = time.Now()
		if cap(w.buf) == 0 {
			w.buf = make([]T, 0, w.cfg.batchRows)
		}
	}
}

// Len returns the number of buffered rows.
func (w *Writer[T]) Len() int { return len(w.buf) }

// Due reports whether the buffer holds BatchRows rows or its first row has
// waited BatchWait.
func (w *Writer[T]) Due(now time.Time) bool {
	return len(w.buf) >= w.cfg.batchRows || (len(w.buf) > 0 && now.Sub(w.since) >= w.cfg.batchWait)
}

// Deadline returns when the buffered batch becomes due by age, or the zero
// time when the buffer is empty.
func (w *Writer[T]) Deadline() time.Time {
	if len(w.buf) == 0 {
		return time.Time{}
	}
	return w.since.Add(w.cfg.batchWait)
}

// Flush inserts the buffered rows and empties the buffer. It returns the
// rows ClickHouse refused for good; every other row is acknowledged by
// ClickHouse when Flush returns nil. It retries transient failures until
// ctx ends, returning ctx's error with the rows still buffered, and returns
// a configuration error (table missing its idempotent engine) at once.
func (w *Writer[T]) Flush(ctx context.Context) ([]Refused[T], error) {
	if len(w.buf) == 0 {
		return nil, nil
	}
	refused, err := w.insert(ctx, w.buf)
	if err != nil {
		return nil, err
	}
	clear(w.buf)
	w.buf = w.buf[:0]
	return refused, nil
}

// Write flushes the buffer, then inserts rows straight from the caller's
// slice (no copy), with the same retries and poison-row handling as Flush.
// On error the rows are not buffered: the caller still holds them.
func (w *Writer[T]) Write(ctx context.Context, rows ...T) ([]Refused[T], error) {
	refused, err := w.Flush(ctx)
	if err != nil || len(rows) == 0 {
		return refused, err
	}
	more, err := w.insert(ctx, rows)
	if err != nil {
		return refused, err
	}
	return append(refused, more...), nil
}

func (w *Writer[T]) insert(ctx context.Context, rows []T) ([]Refused[T], error) {
	backoff := w.cfg.minBackoff
	blocked := false
	// block is the rows per block of this call's INSERTs. A server that
	// refuses a block closes the connection after its exception, and an
	// INSERT still streaming blocks then fails writing the next one
	// (EPIPE, reset) without reading the exception: a poison row looked
	// like an unavailable server and was retried, the same way, for as
	// long as it sat in a block before the last. After a failure the
	// retries send each INSERT as one block, whose exception is read.
	block := blockRows
	defer func() {
		if blocked {
			w.c.metrics.retrying.WithLabelValues(w.table.Name).Set(0)
		}
	}()
	for {
		err := w.attempt(ctx, rows, block)
		if err == nil {
			return nil, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		kind := classify(err)
		w.c.metrics.errors.WithLabelValues(w.table.Name, kind.String()).Inc()
		switch kind {
		case errFatal:
			return nil, err
		case errRefused, errSplit:
			if len(rows) > 1 {
				// Bisect: rows of the half that succeeds are written once;
				// anything a failed attempt may have written is collapsed
				// by the table's engine. A block over the server's
				// partitions limit is split the same way, each half
				// touching fewer partitions; none of its rows is refused.
				mid := len(rows) / 2
				left, err := w.insert(ctx, rows[:mid])
				if err != nil {
					return nil, err
				}
				right, err := w.insert(ctx, rows[mid:])
				if err != nil {
					return nil, err
				}
				return append(left, right...), nil
			}
			if kind == errRefused {
				w.c.metrics.refused.WithLabelValues(w.table.Name).Inc()
				return []Refused[T]{{Row: rows[0], Err: err}}, nil
			}
			// One row is in one partition: retried as a server error.
		}
		block = len(rows)
		if !blocked {
			blocked = true
			w.c.metrics.retrying.WithLabelValues(w.table.Name).Set(1)
		}
		w.c.metrics.retries.WithLabelValues(w.table.Name).Inc()
		if now := time.Now(); now.Sub(w.lastLog) >= 10*time.Second {
			w.lastLog = now
			w.c.logger.Warn("clickhouse insert failed, retrying", "table", w.table.Name, "rows", len(rows), "kind", kind.String(), "err", err)
		}
		pause := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, w.cfg.maxBackoff)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
	}
}

// attempt performs one INSERT of rows.
func (w *Writer[T]) attempt(ctx context.Context, rows []T, block int) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.insertTimeout)
	defer cancel()
	start := time.Now()
	defer func() { w.c.metrics.latency.WithLabelValues(w.table.Name).Observe(time.Since(start).Seconds()) }()
	if !w.checked {
		if err := w.checkEngine(ctx); err != nil {
			return err
		}
		w.checked = true
	}
	n := w.cfg.parallel
	if len(rows) < splitRows {
		n = 1 // small batches: one INSERT
	}
	if len(w.scratch) < n {
		w.scratch = append(w.scratch, make([][]any, n-len(w.scratch))...)
	}
	var err error
	if n == 1 {
		err = w.insertPart(ctx, rows, 0, block)
	} else {
		// Several INSERTs at once use several server threads. Should one
		// fail, the whole batch is retried: the parts already written
		// collapse with their copies.
		errs := make([]error, n)
		var wg sync.WaitGroup
		size := (len(rows) + n - 1) / n
		for k := range n {
			part := rows[min(k*size, len(rows)):min((k+1)*size, len(rows))]
			wg.Go(func() { errs[k] = w.insertPart(ctx, part, k, block) })
		}
		wg.Wait()
		for _, e := range errs {
			if e != nil && (err == nil || classify(err) == errRefused) {
				err = e // a transient error wins: retry rather than bisect
			}
		}
	}
	if err != nil {
		return err
	}
	w.c.metrics.rows.WithLabelValues(w.table.Name).Add(float64(len(rows)))
	w.c.metrics.batches.WithLabelValues(w.table.Name).Inc()
	return nil
}

// insertPart performs one INSERT of rows, streaming them in blocks of
// size rows: the server decodes one block while the next is encoded, and
// the column buffers (scratch k) stay block-sized.
func (w *Writer[T]) insertPart(ctx context.Context, rows []T, k, size int) error {
	if len(rows) == 0 {
		return nil
	}
	batch, err := w.c.conn.PrepareBatch(ctx, w.query)
	if err != nil {
		return err
	}
	if len(w.scratch[k]) != len(w.table.Columns) {
		w.scratch[k] = make([]any, len(w.table.Columns))
	}
	scratch := w.scratch[k]
	for start := 0; start < len(rows); start += size {
		block := rows[start:min(start+size, len(rows))]
		for i, col := range w.table.Columns {
			scratch[i] = col.build(block, scratch[i])
			if err := batch.Column(i).Append(values(scratch[i])); err != nil {
				// The driver converts a whole column of one Go type
				// (string, integers, float64, time.Time, pointers to them
				// for Nullable), which has no value it can refuse: an
				// error is the table's column type differing from the
				// Writer's (a changed schema). Every row would fail the
				// same way, so it is retried, not bisected into dead
				// letters.
				batch.Abort()
				return &schemaError{fmt.Errorf("column %s: %w (does the table's column type match questline's migrations?)", col.Name, err)}
			}
		}
		if start+size < len(rows) {
			if err := batch.Flush(); err != nil {
				batch.Abort()
				return err
			}
		}
	}
	return batch.Send()
}

// checkEngine verifies that the table collapses duplicates, the basis of
// the Writer's idempotency.
func (w *Writer[T]) checkEngine(ctx context.Context) error {
	var engine string
	row := w.c.conn.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", w.c.database, w.table.Name)
	if err := row.Scan(&engine); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("clickhouse: table %s.%s does not exist (run questline migrate)", w.c.database, w.table.Name)
		}
		return err
	}
	if !strings.HasSuffix(engine, "ReplacingMergeTree") {
		return &fatalError{fmt.Errorf("clickhouse: table %s.%s has engine %s; a Writer needs ReplacingMergeTree keyed by row identity", w.c.database, w.table.Name, engine)}
	}
	return nil
}

type errKind uint8

const (
	errUnavailable errKind = iota // network, connection refused, server down
	errServer                     // a transient server-side error
	errRefused                    // the data itself was refused
	errFatal                      // configuration: retrying cannot help
	errSplit                      // the block spans too many partitions: its halves do not
	errSchema                     // the table's columns are not the Writer's: retried until fixed
)

func (k errKind) String() string {
	return [...]string{"unavailable", "server", "refused", "fatal", "split", "schema"}[k]
}

type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

type schemaError struct{ err error }

func (e *schemaError) Error() string { return e.err.Error() }
func (e *schemaError) Unwrap() error { return e.err }

// codeTooManyParts is TOO_MANY_PARTS, which ClickHouse raises for two
// things: a partition with more parts than merges keep up with (retried:
// the server's back-pressure), and, since 19.x, an INSERT block spanning
// more than max_partitions_per_insert_block (default 100) partitions.
// events is partitioned by the month of ts, the device's own clock, so a
// batch of events from clocks set to many different months is refused
// that way whatever is retried: its halves are inserted instead
// (errSplit), each with fewer months.
const codeTooManyParts = 252

// refusedCodes are ClickHouse error codes caused by the inserted values
// themselves, so the rows, not the server, are at fault. Everything else
// (missing table, memory, too many parts, timeouts) is retried: treating a
// systemic error as poison would dead-letter the whole stream.
var refusedCodes = map[int32]bool{
	6:   true, // CANNOT_PARSE_TEXT
	27:  true, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
	38:  true, // CANNOT_PARSE_DATE
	41:  true, // CANNOT_PARSE_DATETIME
	53:  true, // TYPE_MISMATCH
	69:  true, // ARGUMENT_OUT_OF_BOUND
	70:  true, // CANNOT_CONVERT_TYPE
	72:  true, // CANNOT_PARSE_NUMBER
	117: true, // INCORRECT_DATA
	131: true, // TOO_LARGE_STRING_SIZE
	321: true, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
	349: true, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
	395: true, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
	469: true, // VIOLATED_CONSTRAINT
}

func classify(err error) errKind {
	var ref *refusedError
	var fatal *fatalError
	var schema *schemaError
	var exc *ch.Exception
	switch {
	case errors.As(err, &ref):
		return errRefused
	case errors.As(err, &fatal):
		return errFatal
	case errors.As(err, &schema):
		return errSchema
	case errors.As(err, &exc):
		switch {
		case refusedCodes[exc.Code]:
			return errRefused
		case exc.Code == codeTooManyParts && (strings.Contains(exc.Message, "partitions for single INSERT block") ||
			strings.Contains(exc.Message, "max_partitions_per_insert_block")):
			return errSplit
		}
		return errServer
	}
	return errUnavailable
}
