package processors

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

// TestLogReader: the clean pass's reader returns each asked record of a
// partition by offset, across produce batches (compressed by the shared
// client's settings), passing over the records between; a whole response at
// a time (about one fetch per MiB of the log); and a clear error, at
// once, for a record gone from the log, one past its end, or after the
// stage stopped, and after cleanRetryFor for a partition that stays
// without a leader.
func TestLogReader(t *testing.T) {
	b := kafkatest.New(t, kafkatest.Partitions(2))
	brokers := b.Addrs()
	const n = 3000
	var recs []*kgo.Record
	size := 0
	for i := range n {
		// ~2 KB each, little of it compressible: ~6 MB in all.
		v := fmt.Appendf(nil, "record %d ", i)
		for len(v) < 2000 {
			v = fmt.Appendf(v, "%x", uint64(i*len(v))*0x9e3779b97f4a7c15)
		}
		size += len(v)
		recs = append(recs, &kgo.Record{Topic: kafka.TopicEvents, Partition: 1, Value: v})
	}
	for i := 0; i < n; i += 500 { // several batches
		produceAt(t, brokers, recs[i:i+500])
	}
	cl, err := kafka.NewClient(brokers, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h"})
	r := testReader(cl, ctx, 1, h)
	read := 0
	for off := int64(3); off < n; off += 1 + off%7 { // gaps of 1 to 7
		v, err := r.read(off)
		if err != nil {
			t.Fatal(err)
		}
		if want := recs[off].Value; string(v) != string(want) {
			t.Fatalf("offset %d: %.20q…, want %.20q…", off, v, want)
		}
		read++
	}
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	fetches := int(m.GetHistogram().GetSampleCount())
	if most := size/cleanFetchBytes + 2; fetches < 2 || fetches > most {
		t.Fatalf("%d records (%d bytes in all) read in %d fetches, want 2 to %d", read, size, fetches, most)
	}

	// Retention takes the first 1000: a reader asked for one of them errs
	// at once, saying so.
	adm := kadm.NewClient(cl)
	del := kadm.Offsets{}
	del.AddOffset(kafka.TopicEvents, 1, 1000, -1)
	if _, err := adm.DeleteRecords(ctx, del); err != nil {
		t.Fatal(err)
	}
	gone := testReader(cl, ctx, 1, h)
	start := time.Now()
	if _, err := gone.read(10); err == nil || !strings.Contains(err.Error(), "gone from the log") || time.Since(start) > 5*time.Second {
		t.Fatalf("a record retention took: %v after %v", err, time.Since(start))
	}
	// An offset past the end: a log that is not the one the offset came
	// from.
	if _, err := gone.read(n + 10); err == nil || !strings.Contains(err.Error(), "past the log's end") {
		t.Fatalf("a record past the log's end: %v", err)
	}
	// A partition without a leader (it does not exist): retried, then an
	// error.
	defer func(d time.Duration) { cleanRetryFor = d }(cleanRetryFor)
	cleanRetryFor = 500 * time.Millisecond
	none := testReader(cl, ctx, 7, h)
	start = time.Now()
	if _, err := none.read(0); err == nil || !strings.Contains(err.Error(), "no leader") || time.Since(start) > 10*time.Second {
		t.Fatalf("a partition without a leader: %v after %v", err, time.Since(start))
	}
	// The log's end (a leader whose high watermark is behind, as after an
	// election): an empty answer, retried, then an error.
	atEnd := testReader(cl, ctx, 1, h)
	start = time.Now()
	if _, err := atEnd.read(n); err == nil || !strings.Contains(err.Error(), "no records") || time.Since(start) < cleanRetryFor {
		t.Fatalf("a record at the log's end: %v after %v", err, time.Since(start))
	}
	// A stopped stage: an error, not a wait.
	cancel()
	stopped := testReader(cl, ctx, 1, h)
	if _, err := stopped.read(2000); err == nil {
		t.Fatal("read after the stage stopped")
	}
}

// testReader is the source stage's logReader of a partition of
// questline.events, its fetches observed by h and its warnings discarded.
func testReader(cl *kgo.Client, ctx context.Context, partition int32, h prometheus.Histogram) *logReader {
	return &logReader{cl: cl, ctx: ctx, topic: kafka.TopicEvents, partition: partition, fetched: h, decomp: kgo.DefaultDecompressor(),
		log: slog.New(slog.DiscardHandler)}
}

// BenchmarkLogReader: the clean pass's reads of the log (every record of
// a partition, in order, as it reads when no event was a duplicate),
// against a consumer reading the same records (kgo's PollRecords, as the
// source stage's main pass does) beside it. Per record: ns and
// allocations. 200,000 records of 120 bytes (the benchmarks' mix's mean
// event), produced in batches as ingest does.
func BenchmarkLogReader(b *testing.B) {
	const n = 200_000
	br := kafkatest.New(b, kafkatest.Partitions(1))
	brokers := br.Addrs()
	val := make([]byte, 120)
	for i := range val {
		val[i] = byte('a' + i%26)
	}
	var recs []*kgo.Record
	for range n {
		recs = append(recs, &kgo.Record{Topic: kafka.TopicEvents, Partition: 0, Value: val})
	}
	for i := 0; i < n; i += 10_000 {
		produceAt(b, brokers, recs[i:i+10_000])
	}
	b.Run("reader", func(b *testing.B) {
		cl, err := kafka.NewClient(brokers, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h"})
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; {
			r := testReader(cl, context.Background(), 0, h)
			for off := int64(0); off < n && i < b.N; off++ {
				if _, err := r.read(off); err != nil {
					b.Fatal(err)
				}
				i++
			}
		}
	})
	b.Run("consumer", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; {
			cl, err := kafka.NewClient(brokers, nil, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{kafka.TopicEvents: {0: kgo.NewOffset().AtStart()}}))
			if err != nil {
				b.Fatal(err)
			}
			for got := 0; got < n && i < b.N; {
				k := len(cl.PollRecords(context.Background(), 10_000).Records())
				got += k
				i += k
			}
			cl.Close()
		}
	})
}
