package clickhouse

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/questline/questline/event"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

func TestWriterRoundTripsEveryColumn(t *testing.T) {
	srv := chs.Server(t)
	db, c := migrated(t, srv)
	w, err := NewWriter(c, EventsTable)
	if err != nil {
		t.Fatal(err)
	}
	evs := testEvents("rt", 8)
	refused, err := w.Write(context.Background(), evs...)
	if err != nil || len(refused) != 0 {
		t.Fatalf("Write: refused %v, err %v", refused, err)
	}
	if w.Len() != 0 {
		t.Fatalf("buffer holds %d rows after Flush", w.Len())
	}
	e := evs[3] // a conversion
	got := query(t, srv, "SELECT event_id, type, user_id, device_id, session_id, country, toUnixTimestamp(event_time), event_time_ms, ts_ms, "+
		"sent_at_ms, received_at_ms, clock_offset_ms, source, key_id, order_id, amount_micros, currency, duration_ms, extra "+
		"FROM "+db+".events FINAL WHERE event_id = '"+e.ID+"'")
	want := strings.Join([]string{e.ID, "conversion", e.UserID, e.DeviceID, e.SessionID, "DE", itoa(int(e.EventTime / 1000)), itoa(int(e.EventTime)), itoa(int(e.TS)),
		itoa(int(e.SentAt)), itoa(int(e.ReceivedAt)), `\N`, "client", "k1", e.OrderID, itoa(int(e.AmountMicros)), "EUR", `\N`, `{"coupon":"X3"}`}, "\t")
	if got != want {
		t.Fatalf("row:\n got %q\nwant %q", got, want)
	}
	e = evs[1]
	if got := query(t, srv, "SELECT duration_ms, quest_id, amount_micros FROM "+db+".events FINAL WHERE event_id = '"+e.ID+"'"); got != itoa(int(e.DurationMs))+"\t"+e.QuestID+`	\N` {
		t.Fatalf("quest_completed row: %q", got)
	}
}

func TestWriterSameBatchTwiceReadsOnce(t *testing.T) {
	srv := chs.Server(t)
	db, c := migrated(t, srv)
	w, err := NewWriter(c, EventsTable)
	if err != nil {
		t.Fatal(err)
	}
	evs := testEvents("dup", 500)
	for range 2 {
		if _, err := w.Write(context.Background(), evs...); err != nil {
			t.Fatal(err)
		}
	}
	if got := query(t, srv, "SELECT count() FROM "+db+".events"); got != "1000" {
		t.Fatalf("raw count = %s, want both copies (1000) before merges", got)
	}
	if got := query(t, srv, "SELECT count() FROM "+db+".events FINAL"); got != "500" {
		t.Fatalf("FINAL count = %s, want 500", got)
	}
}

func TestWriterBisectsPoisonRows(t *testing.T) {
	srv := chs.Server(t)
	db, c := migrated(t, srv)
	// ClickHouse refuses any block holding these ids.
	query(t, srv, "ALTER TABLE "+db+".events ADD COLUMN poison UInt8 MATERIALIZED throwIf(event_id IN ('poison-17', 'poison-90'))")
	reg := prometheus.NewRegistry()
	c.metrics, _ = newWriterMetrics(reg)
	w, err := NewWriter(c, EventsTable)
	if err != nil {
		t.Fatal(err)
	}
	refused, err := w.Write(context.Background(), testEvents("poison", 200)...)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range refused {
		ids = append(ids, r.Row.ID)
		if !strings.Contains(r.Err.Error(), "throwIf") && !strings.Contains(r.Err.Error(), "Value passed to") {
			t.Errorf("refusal reason %q does not carry ClickHouse's message", r.Err)
		}
	}
	if strings.Join(ids, ",") != "poison-17,poison-90" {
		t.Fatalf("refused %v, want poison-17 and poison-90", ids)
	}
	if got := query(t, srv, "SELECT count() FROM "+db+".events FINAL"); got != "198" {
		t.Fatalf("FINAL count = %s, want 198", got)
	}
	if got := testutil.ToFloat64(c.metrics.refused.WithLabelValues("events")); got != 2 {
		t.Fatalf("rows_refused_total = %v, want 2", got)
	}
}

func TestWriterRefusesNonIdempotentTable(t *testing.T) {
	srv := chs.Server(t)
	db, c := migrated(t, srv)
	query(t, srv, "CREATE TABLE "+db+".plain (event_id String) ENGINE = MergeTree ORDER BY event_id")
	w, err := NewWriter(c, Table[event.Event]{Name: "plain", Columns: EventsTable.Columns[:1]})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w.Add(testEvents("p", 1)...)
	_, err = w.Flush(ctx)
	if err == nil || !strings.Contains(err.Error(), "ReplacingMergeTree") {
		t.Fatalf("Write to a MergeTree table: %v, want a refusal naming ReplacingMergeTree", err)
	}
	if w.Len() != 1 {
		t.Fatalf("rows dropped on a configuration error: %d buffered", w.Len())
	}
}

func TestWriterBatchesByRowsAndTime(t *testing.T) {
	srv := chs.Server(t)
	_, c := migrated(t, srv)
	w, err := NewWriter(c, EventsTable, BatchRows(10), BatchWait(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	w.Add(testEvents("b", 9)...)
	if w.Due(now) {
		t.Fatal("due at 9 of 10 rows")
	}
	w.Add(testEvents("c", 1)...)
	if !w.Due(now) {
		t.Fatal("not due at 10 of 10 rows")
	}
	w2, _ := NewWriter(c, EventsTable, BatchRows(10), BatchWait(50*time.Millisecond))
	if w2.Due(now) {
		t.Fatal("empty writer due")
	}
	w2.Add(testEvents("d", 1)...)
	if w2.Due(time.Now()) || !w2.Due(time.Now().Add(60*time.Millisecond)) {
		t.Fatal("time-based due wrong")
	}
}

func TestNewWriterValidates(t *testing.T) {
	c := &Client{}
	for name, tc := range map[string]struct {
		table Table[event.Event]
		opts  []WriterOpt
	}{
		"bad table name":   {Table[event.Event]{Name: "events; DROP TABLE x", Columns: EventsTable.Columns}, nil},
		"no columns":       {Table[event.Event]{Name: "events"}, nil},
		"bad column name":  {Table[event.Event]{Name: "events", Columns: []Column[event.Event]{StringCol("a b", func(*event.Event) string { return "" })}}, nil},
		"zero batch rows":  {EventsTable, []WriterOpt{BatchRows(0)}},
		"inverted backoff": {EventsTable, []WriterOpt{RetryBackoff(time.Second, time.Millisecond)}},
	} {
		if _, err := NewWriter(c, tc.table, tc.opts...); err == nil {
			t.Errorf("%s: NewWriter accepted it", name)
		}
	}
}

// TestWriterParallelInsertsWithPoison writes a batch large enough to be
// split into parallel INSERTs, holding one poison row.
func TestWriterParallelInsertsWithPoison(t *testing.T) {
	srv := chs.Server(t)
	db, c := migrated(t, srv)
	query(t, srv, "ALTER TABLE "+db+".events ADD COLUMN poison UInt8 MATERIALIZED throwIf(event_id = 'big-31000')")
	w, err := NewWriter(c, EventsTable, InsertParallelism(3))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	refused, err := w.Write(context.Background(), testEvents("big", 40_000)...)
	if err != nil {
		t.Fatal(err)
	}
	// A refusal that surfaced as a broken connection (the INSERT still
	// streaming blocks after the server's exception) was retried with
	// backoff until the exception won the race: over a minute here.
	if el := time.Since(start); el > 20*time.Second {
		t.Fatalf("the poison row took %v to find", el.Round(time.Millisecond))
	}
	if len(refused) != 1 || refused[0].Row.ID != "big-31000" {
		t.Fatalf("refused %d rows, want only big-31000", len(refused))
	}
	if got := query(t, srv, "SELECT count(), uniqExact(event_id) FROM "+db+".events FINAL"); got != "39999\t39999" {
		t.Fatalf("count, distinct ids = %q, want 39999 each", got)
	}
}

// TestClassify: what the Writer does with each kind of failure. Code 252
// is TOO_MANY_PARTS for two causes: merges behind inserts (retried) and,
// on ClickHouse 19.x and later, a block over max_partitions_per_insert_block
// (split: 18.16, which the tests run, has no such limit).
func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		want errKind
	}{
		{&ch.Exception{Code: 252, Message: "Too many partitions for single INSERT block (more than 100). The limit is controlled by 'max_partitions_per_insert_block' setting."}, errSplit},
		{&ch.Exception{Code: 252, Message: "Too many parts (300). Merges are processing significantly slower than inserts"}, errServer},
		{&ch.Exception{Code: 53, Message: "Type mismatch"}, errRefused},
		{&ch.Exception{Code: 241, Message: "Memory limit (total) exceeded"}, errServer},
		{&schemaError{errors.New("column x: converting []int64 to UInt64 is unsupported")}, errSchema},
		{&fatalError{errors.New("engine")}, errFatal},
		{errors.New("dial tcp: connection refused"), errUnavailable},
	} {
		if got := classify(c.err); got != c.want {
			t.Errorf("%v: %s, want %s", c.err, got, c.want)
		}
	}
}

// TestWriterSchemaDriftIsRetried: a column whose type no longer matches
// what the Writer appends fails every row alike; the Writer retries (the
// rows wait in Kafka) instead of refusing them one by one into dead
// letters, and writes them once the column is put back.
func TestWriterSchemaDriftIsRetried(t *testing.T) {
	srv := chs.Server(t)
	db, c := migrated(t, srv)
	reg := prometheus.NewRegistry()
	c.metrics, _ = newWriterMetrics(reg)
	query(t, srv, "ALTER TABLE "+db+".events MODIFY COLUMN event_time_ms UInt64")
	w, err := NewWriter(c, EventsTable, RetryBackoff(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		refused []Refused[event.Event]
		err     error
	}
	done := make(chan result, 1)
	go func() {
		refused, err := w.Write(context.Background(), testEvents("drift", 64)...)
		done <- result{refused, err}
	}()
	schema := c.metrics.errors.WithLabelValues("events", "schema")
	for deadline := time.Now().Add(30 * time.Second); testutil.ToFloat64(schema) < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no schema errors counted in 30 s (%v)", testutil.ToFloat64(schema))
		}
		select {
		case r := <-done:
			t.Fatalf("Write returned while the column was wrong: refused %d, %v", len(r.refused), r.err)
		default:
		}
	}
	query(t, srv, "ALTER TABLE "+db+".events MODIFY COLUMN event_time_ms Int64")
	r := <-done
	if r.err != nil || len(r.refused) != 0 {
		t.Fatalf("after the column was put back: refused %d, %v", len(r.refused), r.err)
	}
	if got := query(t, srv, "SELECT count() FROM "+db+".events FINAL"); got != "64" {
		t.Fatalf("FINAL count = %s, want 64", got)
	}
	if got := testutil.ToFloat64(c.metrics.refused.WithLabelValues("events")); got != 0 {
		t.Fatalf("rows_refused_total = %v, want 0", got)
	}
}
