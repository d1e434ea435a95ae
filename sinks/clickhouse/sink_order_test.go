package clickhouse

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

// With several batches inserting at once, a committed offset still means
// that every record before it is in ClickHouse. Checked again and again
// while the sink runs, reading the committed offsets before the table.
func TestSinkCommitsOnlyWrittenBatchesInOrder(t *testing.T) {
	srv := chs.Server(t)
	db, _ := migrated(t, srv)
	b := kafkatest.New(t)
	cl := producer(t, b)
	evs := testEvents("ord", 20_000)
	recs := eventRecords(evs)
	produce(t, cl, recs) // sets each record's partition and offset
	adm := kadm.NewClient(producer(t, b))
	ctx := context.Background()

	startSink(t, SinkConfig{Brokers: b.Addrs(), DSN: srv.DSN(db), BatchRows: 400, BatchWait: 50 * time.Millisecond, InsertsInFlight: 4}, nil)
	deadline := time.Now().Add(90 * time.Second)
	for checks, committedBefore := 0, 0; ; checks++ {
		offsets, err := adm.FetchOffsets(ctx, "questline-sink")
		if err != nil { // the group does not exist before the sink joins
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		written := map[string]bool{}
		for _, id := range strings.Fields(query(t, srv, "SELECT event_id FROM "+db+".events")) {
			written[id] = true
		}
		committed := 0
		for i, r := range recs {
			o, ok := offsets.Lookup(kafka.TopicEvents, r.Partition)
			if !ok || r.Offset >= o.At {
				continue
			}
			committed++
			if !written[evs[i].ID] {
				t.Fatalf("check %d: offset %d of partition %d is committed (%d), but its event %s is not in ClickHouse", checks, r.Offset, r.Partition, o.At, evs[i].ID)
			}
		}
		if committed < committedBefore {
			t.Fatalf("check %d: committed offsets went back (%d records, were %d)", checks, committed, committedBefore)
		}
		committedBefore = committed
		if committed == len(recs) {
			if checks < 3 {
				t.Fatalf("the sink finished within %d checks: the test saw too little of it in flight", checks)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records committed after 90 s", committed, len(recs))
		}
	}
}
