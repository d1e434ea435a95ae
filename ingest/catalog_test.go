package ingest_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/kafka"
)

// TestCatalogEventsCopiedToEveryPartition: a catalog or lifecycle event is
// written after a copy of it in every partition of questline.events, and
// marked so, whatever the processors do; other events are not copied; a
// retried batch adds neither a second original nor more copies.
func TestCatalogEventsCopiedToEveryPartition(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	parts, err := kafka.PartitionCount(ctx, e.cl, kafka.TopicEvents)
	if err != nil {
		t.Fatal(err)
	}
	if parts < 2 {
		t.Fatalf("%d partitions: the test needs several", parts)
	}
	ts := time.Now().Add(-time.Minute).UTC().Format(event.TimeLayout)
	body := []byte(fmt.Sprintf(`{"events":[
		{"event_id":"qd1","type":"quest_defined","ts":%[1]q,"props":{"quest_id":"q1","min_duration_ms":180000}},
		{"event_id":"u1","type":"quest_started","ts":%[1]q,"user_id":"user-1","props":{"quest_id":"q1"}},
		{"event_id":"ds1","type":"drop_started","ts":%[1]q,"props":{"drop_id":"drop-1","creator_id":"c1"}}]}`, ts))
	server := map[string]string{"Authorization": "Bearer " + serverKey}
	for range 2 { // the second post is a client's retry
		if r := e.post(body, server); r.status != 200 || r.body.Accepted != 3 {
			t.Fatalf("%d %+v", r.status, r.body)
		}
	}

	type place struct {
		partition int32
		offset    int64
	}
	originals := map[string][]place{}
	copies := map[string]map[int32]int64{}
	for _, r := range readTopic(t, e.broker.Addrs(), kafka.TopicEvents) {
		var ev event.Event
		if err := event.DecodeBinary(r.Value, &ev); err != nil {
			t.Fatal(err)
		}
		if kafka.IsCatalogCopy(r) {
			if copies[ev.ID] == nil {
				copies[ev.ID] = map[int32]int64{}
			}
			if _, dup := copies[ev.ID][r.Partition]; dup {
				t.Fatalf("two copies of %s in partition %d", ev.ID, r.Partition)
			}
			copies[ev.ID][r.Partition] = r.Offset
			continue
		}
		originals[ev.ID] = append(originals[ev.ID], place{r.Partition, r.Offset})
		want := ev.Type.ServerOnly()
		if kafka.IsCatalogCopied(r) != want {
			t.Fatalf("%s (%s): marked copied %v, want %v", ev.ID, ev.Type, !want, want)
		}
		if want && string(r.Headers[0].Value) != strconv.Itoa(int(parts)) {
			t.Fatalf("%s: copied header %q, want %d", ev.ID, r.Headers[0].Value, parts)
		}
	}
	for _, id := range []string{"qd1", "u1", "ds1"} {
		if len(originals[id]) != 1 {
			t.Fatalf("%s written %d times, want once", id, len(originals[id]))
		}
	}
	if len(copies["u1"]) != 0 {
		t.Fatalf("a user event was copied: %v", copies["u1"])
	}
	for _, id := range []string{"qd1", "ds1"} {
		if len(copies[id]) != int(parts) {
			t.Fatalf("%s: copies in %d partitions, want all %d", id, len(copies[id]), parts)
		}
		o := originals[id][0]
		if c := copies[id][o.partition]; c >= o.offset {
			t.Fatalf("%s: copy at offset %d of partition %d, not before the original at %d", id, c, o.partition, o.offset)
		}
	}
}
