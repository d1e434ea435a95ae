package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

// TestKafkaSender produces a run to a real (embedded) broker and reads it
// back: every event once, keyed by user, with the event time the ingest
// would derive (the true time) and the ingest's fields set; a catalog
// event after its copy in every partition, as the ingest writes them.
func TestKafkaSender(t *testing.T) {
	br := kafkatest.New(t)
	cl, err := kafka.NewClient(br.Addrs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := &tee{s: NewKafkaSender(cl)}
	cfg := testConfig(3000)
	cfg.Concurrency = 2
	tr, err := Run(context.Background(), cfg, out, nil)
	if err != nil || tr.Run.SendErrors != 0 {
		t.Fatalf("run: %v, %d send errors", err, tr.Run.SendErrors)
	}
	want := map[string]struct {
		b *Batch
		i int
	}{}
	for _, s := range out.cs.sorted() {
		for i := range s.b.Events {
			want[s.b.Events[i].ID] = struct {
				b *Batch
				i int
			}{&s.b, i}
		}
	}

	cons, err := kafka.NewClient(br.Addrs(), nil, kgo.ConsumeTopics(kafka.TopicEvents), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	parts, err := kafka.PartitionCount(ctx, cl, kafka.TopicEvents)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	copies := map[string]map[int32]bool{} // catalog event id → partitions with a copy
	copied := func() bool {               // every catalog event read has a copy in every partition
		for _, ps := range copies {
			if len(ps) < int(parts) {
				return false
			}
		}
		return true
	}
	for len(got) < len(want) || !copied() {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records, copies complete %v: %v", len(got), len(want), copied(), err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var e event.Event
			if err := event.DecodeBinary(r.Value, &e); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if kafka.IsCatalogCopy(r) {
				if !e.Type.ServerOnly() {
					t.Fatalf("copy of %s (%s) in partition %d: not a catalog event", e.ID, e.Type, r.Partition)
				}
				if copies[e.ID] == nil {
					copies[e.ID] = map[int32]bool{}
				}
				copies[e.ID][r.Partition] = true
				return
			}
			if e.Type.ServerOnly() != kafka.IsCatalogCopied(r) {
				t.Fatalf("record %s (%s): marked copied %v", e.ID, e.Type, kafka.IsCatalogCopied(r))
			}
			if e.Type.ServerOnly() && !copies[e.ID][r.Partition] {
				t.Fatalf("catalog event %s in partition %d before its copy there", e.ID, r.Partition)
			}
			w, ok := want[e.ID]
			if !ok || got[e.ID] {
				t.Fatalf("record %s: unexpected or repeated", e.ID)
			}
			got[e.ID] = true
			b := w.b
			if string(r.Key) != e.Key() || e.UserID != "" && string(r.Key) != e.UserID {
				t.Fatalf("record %s keyed %q", e.ID, r.Key)
			}
			if e.EventTime != b.TrueTime(w.i) || e.ReceivedAt != b.SendAt || e.TS != b.Events[w.i].TS {
				t.Fatalf("record %s: event_time %d received_at %d, true %d sent %d", e.ID, e.EventTime, e.ReceivedAt, b.TrueTime(w.i), b.SendAt)
			}
			wantSrc := event.SourceClient
			if b.Server {
				wantSrc = event.SourceServer
			}
			if e.Source != wantSrc || e.KeyID == "" || e.EdgeCountry != b.EdgeCountry ||
				(e.Has&event.HasClockOffset != 0) != (b.Clock == ClockNTP) {
				t.Fatalf("record %s: source %v key %q edge %q has %b", e.ID, e.Source, e.KeyID, e.EdgeCountry, e.Has)
			}
		})
	}
	if len(copies) == 0 {
		t.Fatal("the run had no catalog event")
	}
}
