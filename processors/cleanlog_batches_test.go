package processors

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

// TestBatchRecordsAsKgo: the clean pass's decoder of Fetch responses gives
// the offsets and values kgo.ProcessFetchPartition gives (read uncommitted,
// no control records) for batches of every codec, records with keys,
// headers and null values, committed and aborted transactions (their
// markers are control batches), from every starting offset, and for a
// response cut inside a batch; a batch whose bytes changed fails its CRC.
func TestBatchRecordsAsKgo(t *testing.T) {
	b := kafkatest.New(t, kafkatest.Partitions(1))
	brokers := b.Addrs()
	ctx := context.Background()
	n := 0
	records := func(k int) []*kgo.Record {
		var recs []*kgo.Record
		for range k {
			r := &kgo.Record{Topic: kafka.TopicEvents, Partition: 0, Value: bytes.Repeat(fmt.Appendf(nil, "value %d;", n), 1+n%5)}
			switch n % 4 {
			case 1:
				r.Key = fmt.Appendf(nil, "key %d", n)
			case 2:
				r.Headers = []kgo.RecordHeader{{Key: "h", Value: []byte("v")}, {Key: "questline", Value: nil}}
			case 3:
				r.Value = nil
			}
			n++
			recs = append(recs, r)
		}
		return recs
	}
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(codec))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := cl.ProduceSync(ctx, records(20)...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		cl.Close()
	}
	tx, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID("clean-log-test"))
	if err != nil {
		t.Fatal(err)
	}
	for _, commit := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort, kgo.TryCommit} {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := tx.ProduceSync(ctx, records(7)...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := tx.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	tx.Close()

	cl, err := kafka.NewClient(brokers, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r := testReader(cl, ctx, 0, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h"}))
	same := func(what string, batches []byte, from int64) int {
		t.Helper()
		got, _, gotErr := appendBatchRecords(nil, batches, from, r.decomp)
		want, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: from, Topic: r.topic}, fetchedPartition(batches), r.decomp, nil)
		if gotErr != nil {
			t.Fatalf("%s from %d: %v", what, from, gotErr)
		}
		if len(got) != len(want.Records) {
			t.Fatalf("%s from %d: %d records, kgo %d", what, from, len(got), len(want.Records))
		}
		for i, w := range want.Records {
			if got[i].offset != w.Offset || !bytes.Equal(got[i].value, w.Value) || (got[i].value == nil) != (w.Value == nil) {
				t.Fatalf("%s from %d: record %d at %d %q, kgo at %d %q", what, from, i, got[i].offset, got[i].value, w.Offset, w.Value)
			}
		}
		return len(got)
	}
	end := int64(-1)
	total := 0
	for from := int64(0); ; {
		p, _, err := r.fetchPartition(from)
		if err != nil {
			t.Fatal(err)
		}
		end = p.HighWatermark
		if from >= end {
			break
		}
		k := same("a response", p.RecordBatches, from)
		same("a response from further", p.RecordBatches, from+3)
		for _, cut := range []int{len(p.RecordBatches) / 2, len(p.RecordBatches) - 1} {
			same("a response cut inside a batch", p.RecordBatches[:cut], from)
		}
		total += k
		if k == 0 {
			from++ // a transaction marker alone
			continue
		}
		got, _, _ := appendBatchRecords(nil, p.RecordBatches, from, r.decomp)
		from = got[len(got)-1].offset + 1
	}
	if want := 5*3*20 + 3*7; total != want {
		t.Fatalf("%d records decoded, want %d (the aborted transaction's are read too)", total, want)
	}
	// A changed byte fails the batch's CRC.
	p, _, err := r.fetchPartition(0)
	if err != nil {
		t.Fatal(err)
	}
	damaged := slices.Clone(p.RecordBatches)
	damaged[batchRecords+5] ^= 0xff
	if _, _, err := appendBatchRecords(nil, damaged, 0, r.decomp); err == nil {
		t.Fatal("a damaged batch decoded")
	}
	// Random damage, with each batch's CRC made right again (so that the
	// records themselves are parsed): errors, never a panic.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		d := slices.Clone(p.RecordBatches)
		for range 1 + rng.IntN(4) {
			d[rng.IntN(len(d))] = byte(rng.IntN(256))
		}
		if rng.IntN(4) == 0 {
			d = d[:rng.IntN(len(d))]
		}
		fixCRCs(d)
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Fatalf("damaged batches: panic %v", v)
				}
			}()
			appendBatchRecords(nil, d, 0, r.decomp)
		}()
	}
	t.Logf("%d records in %d offsets", total, end)
}

// fixCRCs sets the CRC of every whole batch in b to its content's.
func fixCRCs(b []byte) {
	for len(b) >= batchRecords {
		n := int64(int32(binary.BigEndian.Uint32(b[8:])))
		if n < batchRecords-12 || 12+n > int64(len(b)) {
			return
		}
		binary.BigEndian.PutUint32(b[batchCRC:], crc32.Checksum(b[batchAttributes:12+n], castagnoli))
		b = b[12+n:]
	}
}

// fetchedPartition is a Fetch response's partition holding batches.
func fetchedPartition(batches []byte) *kmsg.FetchResponseTopicPartition {
	p := kmsg.NewFetchResponseTopicPartition()
	p.RecordBatches = batches
	return &p
}
