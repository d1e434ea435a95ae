package clickhouse

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"testing"

	"github.com/questline/questline/event"
)

// storeEvents returns testEvents with every field of event.Event set on
// some rows, so that each column of eventColumns is exercised.
func storeEvents(prefix string, n int) []event.Event {
	evs := testEvents(prefix, n)
	for i := range evs {
		e := &evs[i]
		if i%5 != 0 {
			continue
		}
		s := strconv.Itoa(i)
		e.EdgeCountry, e.DropID, e.CreatorID, e.ClaimID, e.Reason = "FR", "dr"+s, "cr"+s, "cl"+s, "sold_out"
		e.BidderID, e.Outcome, e.OfferID, e.PayoutID, e.Title = "b"+s, "bid", "of"+s, "p"+s, "T é "+s
		e.ClockOffsetMs, e.PriceMicros, e.ClearingMicros, e.LatencyMs = -int64(i)-1, 7, 8, 9
		e.MinDurationMs, e.MaxDurationMs, e.Inventory, e.StartsAt, e.EndsAt = 10, 11, 12, e.TS+1000, e.TS+2000
		e.Has |= event.HasClockOffset | event.HasPriceMicros | event.HasClearingMicros | event.HasLatencyMs |
			event.HasMinDurationMs | event.HasMaxDurationMs | event.HasInventory | event.HasStartsAt | event.HasEndsAt
	}
	return evs
}

// The sink's columnar batch writes exactly the rows that EventsTable
// writes from the same events, also after being reset and refilled.
func TestEventStoreWritesWhatEventsTableWrites(t *testing.T) {
	srv := chs.Server(t)
	dbRows, c := migrated(t, srv)
	dbStore, cs := migrated(t, srv)
	ctx := context.Background()
	evs := storeEvents("st", 3000)

	w, err := NewWriter(c, EventsTable)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(ctx, evs...); err != nil {
		t.Fatal(err)
	}

	st := newEventStore(1000) // smaller than the batch: buffers grow
	ws, err := NewWriter(cs, st.table())
	if err != nil {
		t.Fatal(err)
	}
	for round, part := range [][]event.Event{evs[:100], evs[100:]} {
		for i := range part {
			row, err := st.add(event.AppendBinary(nil, &part[i]))
			if err != nil {
				t.Fatal(err)
			}
			if int(row) != i {
				t.Fatalf("round %d: row %d for record %d", round, row, i)
			}
			ws.Add(row)
		}
		if got := st.event(uint32(len(part) - 1)); !reflect.DeepEqual(got, part[len(part)-1]) {
			t.Fatalf("round %d: event() of the last row:\n got %+v\nwant %+v", round, got, part[len(part)-1])
		}
		if refused, err := ws.Flush(ctx); err != nil || len(refused) != 0 {
			t.Fatalf("round %d: Flush: refused %v, err %v", round, refused, err)
		}
		st.reset()
	}
	if _, err := st.add([]byte{0xff}); err == nil {
		t.Fatal("add of a garbage record: no error")
	}
	if st.len() != 0 {
		t.Fatalf("a record that failed to decode left %d rows", st.len())
	}

	all := "SELECT * FROM %s.events ORDER BY event_id FORMAT TSV"
	want := query(t, srv, fmt.Sprintf(all, dbRows))
	got := query(t, srv, fmt.Sprintf(all, dbStore))
	if got != want {
		t.Fatalf("rows written from the store differ from EventsTable's (%d vs %d bytes)", len(got), len(want))
	}
	if n := query(t, srv, "SELECT count() FROM "+dbStore+".events WHERE title != '' AND price_micros = 7 AND clock_offset_ms < 0"); n != "600" {
		t.Fatalf("rows with every optional field: %s, want 600", n)
	}
}

// BenchmarkEventStoreAdd measures the sink's decoding of events records
// into its columnar batch (ns/op is per record), warm: the store's buffers
// are in use from the previous batch, as in a running sink.
func BenchmarkEventStoreAdd(b *testing.B) {
	evs := testEvents("bench", 100_000)
	recs := make([][]byte, len(evs))
	for i := range evs {
		recs[i] = event.AppendBinary(nil, &evs[i])
	}
	st := newEventStore(len(recs))
	fill := func(n int) {
		for i := range n {
			if _, err := st.add(recs[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	fill(len(recs))
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		st.reset()
		n := min(b.N-done, len(recs))
		fill(n)
		done += n
	}
}
