package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/internal/testtool"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

func consumeAll(t *testing.T, brokers []string, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kafka.NewClient(brokers, nil, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(recs), want, err)
		}
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs
}

// TestKcatInterop proves that an independent Kafka client (librdkafka's
// kcat) can produce to and consume from the embedded broker, and that keys
// land on the same partitions as questline's own producer would put them.
func TestKcatInterop(t *testing.T) {
	kcat := testtool.Require(t, "kcat")
	b := kafkatest.New(t, kafkatest.Partitions(4))
	addr := b.Addrs()[0]

	// kcat produces keyed records; librdkafka's default partitioner is
	// consistent_random (crc32), so ask for murmur2_random, Kafka's own.
	var in strings.Builder
	for i := range 50 {
		fmt.Fprintf(&in, "user-%d:hello-%d\n", i%7, i)
	}
	cmd := exec.Command(kcat, "-b", addr, "-t", kafka.TopicEvents, "-P", "-K:", "-X", "partitioner=murmur2_random")
	cmd.Stdin = strings.NewReader(in.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}

	recs := consumeAll(t, b.Addrs(), kafka.TopicEvents, 50)
	part := map[string]int32{}
	for _, r := range recs {
		k := string(r.Key)
		if p, ok := part[k]; ok && p != r.Partition {
			t.Fatalf("key %s on partitions %d and %d", k, p, r.Partition)
		}
		part[k] = r.Partition
	}

	// questline's producer must place the same keys on the same partitions.
	cl, err := kafka.NewClient(b.Addrs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for k, p := range part {
		r := &kgo.Record{Topic: kafka.TopicEvents, Key: []byte(k), Value: []byte("from-go")}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if r.Partition != p {
			t.Errorf("key %s: kcat put it on partition %d, questline on %d", k, p, r.Partition)
		}
	}

	// kcat consumes what both wrote.
	out, err := exec.Command(kcat, "-b", addr, "-t", kafka.TopicEvents, "-C", "-e", "-q", "-f", "%k=%s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat consume: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if want := 50 + len(part); len(lines) != want {
		t.Fatalf("kcat read %d records, want %d", len(lines), want)
	}
}

// TestEmbeddedSurvivesRestart checks that records acknowledged by the
// embedded broker are there after it is closed and started again on the
// same data directory.
func TestEmbeddedSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b := kafkatest.New(t, kafkatest.DataDir(dir))
	cl, err := kafka.NewClient(b.Addrs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		r := &kgo.Record{Topic: kafka.TopicEvents, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	b.Close()

	b2 := kafkatest.New(t, kafkatest.DataDir(dir))
	recs := consumeAll(t, b2.Addrs(), kafka.TopicEvents, 100)
	seen := map[string]bool{}
	for _, r := range recs {
		seen[string(r.Value)] = true
	}
	if len(seen) != 100 {
		t.Fatalf("after restart: %d distinct records, want 100", len(seen))
	}
}

func TestEmbeddedRejectsUnspecifiedAddr(t *testing.T) {
	if _, err := kafka.StartEmbedded(kafka.EmbeddedAddr("0.0.0.0:0")); err == nil {
		t.Fatal("want an error for 0.0.0.0: clients cannot connect to an advertised 0.0.0.0")
	}
}

// TestEmbeddedRetention: the embedded broker deletes records older than 7
// days (Kafka's default retention) from an ordinary topic, and keeps them
// in a compacted topic created by EnsureTopics (the catalog, the
// partials), as real Kafka does under cleanup.policy=compact.
func TestEmbeddedRetention(t *testing.T) {
	const compacted, ordinary, forever = "questline.test.compacted", "questline.test.log", "questline.test.forever"
	b := kafkatest.New(t, kafkatest.Partitions(1), kafkatest.Topics(kafka.Topic{Name: compacted, Compact: true}, kafka.Topic{Name: ordinary},
		kafka.Topic{Name: forever, KeepForever: true}))
	// A plain client: questline's has a delivery timeout, which kgo
	// counts from the record's timestamp.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	old := time.Now().Add(-8 * 24 * time.Hour)
	for _, topic := range []string{compacted, ordinary, forever} {
		// Separate produces: retention deletes whole batches.
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: topic, Key: []byte("old"), Value: []byte("1"), Timestamp: old}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: topic, Key: []byte("new"), Value: []byte("2")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	b.ApplyRetention()
	if got := consumeAll(t, b.Addrs(), compacted, 2); string(got[0].Key) != "old" {
		t.Errorf("compacted topic: first record %q, want the 8-day-old one", got[0].Key)
	}
	if got := consumeAll(t, b.Addrs(), forever, 2); string(got[0].Key) != "old" {
		t.Errorf("KeepForever topic: first record %q, want the 8-day-old one", got[0].Key)
	}
	got := consumeAll(t, b.Addrs(), ordinary, 1)
	if len(got) != 1 || string(got[0].Key) != "new" || got[0].Offset != 1 {
		t.Errorf("ordinary topic after retention: %d records, first %q at offset %d; want only the new one at 1", len(got), got[0].Key, got[0].Offset)
	}
}

// TestEmbeddedKeepsOldCompactedTopics: a data directory whose compacted
// topic was created without retention.ms=-1 (by questline before session
// 8) gets it when the broker starts on it, so the old records stay.
func TestEmbeddedKeepsOldCompactedTopics(t *testing.T) {
	const topic = "questline.test.oldcompacted"
	dir := t.TempDir()
	b := kafkatest.New(t, kafkatest.DataDir(dir))
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	compact := "compact"
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(t.Context(), 1, 1, map[string]*string{"cleanup.policy": &compact}, topic); err != nil {
		t.Fatal(err)
	}
	if got := retentionMs(t, adm, topic); got == "-1" {
		t.Fatalf("created without the setting, retention.ms is already %q: the test shows nothing", got)
	}
	cl.Close()
	b.Close()

	b2 := kafkatest.New(t, kafkatest.DataDir(dir))
	cl2, err := kgo.NewClient(kgo.SeedBrokers(b2.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	adm2 := kadm.NewClient(cl2)
	if got := retentionMs(t, adm2, topic); got != "-1" {
		t.Fatalf("after a restart on the old directory, retention.ms of the compacted topic is %q, want -1", got)
	}
	if got := retentionMs(t, adm2, kafka.TopicEvents); got == "-1" {
		t.Fatalf("an ordinary topic got retention.ms -1")
	}
}

func retentionMs(t *testing.T, adm *kadm.Client, topic string) string {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if c.Key == "retention.ms" {
				return c.MaybeValue()
			}
		}
	}
	return ""
}

// TestEmbeddedDataDirLocked: one broker per data directory. A second one
// on another address is refused (both appended to the same segment files,
// and one's acknowledged records were lost at the next start); on the
// holder's address the error is "address in use", so a questline process
// connects to it as a client; once the holder closes, the directory is
// free again.
func TestEmbeddedDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	addr := testtool.FreeAddr(t)
	a, err := kafka.StartEmbedded(kafka.EmbeddedAddr(addr), kafka.EmbeddedDataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	other := testtool.FreeAddr(t)
	if _, err := kafka.StartEmbedded(kafka.EmbeddedAddr(other), kafka.EmbeddedDataDir(dir)); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("a second broker on the same data directory: %v", err)
	}
	if _, err := kafka.StartEmbedded(kafka.EmbeddedAddr(addr), kafka.EmbeddedDataDir(dir)); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("on the holder's address: %v, want EADDRINUSE", err)
	}
	a.Close()
	b, err := kafka.StartEmbedded(kafka.EmbeddedAddr(other), kafka.EmbeddedDataDir(dir))
	if err != nil {
		t.Fatalf("after the holder closed: %v", err)
	}
	b.Close()
}

// TestEmbeddedDataDirPrivate: a data directory the broker creates is its
// owner's only (0700): it holds the event log and the dead letters (raw
// client payloads), and kfake writes its files 0644 (helper-37: any local
// user could read them); one that existed (0755, made by an older
// questline) is made private too (helper-41).
func TestEmbeddedDataDirPrivate(t *testing.T) {
	old := filepath.Join(t.TempDir(), "kafka")
	if err := os.Mkdir(old, 0o755); err != nil {
		t.Fatal(err)
	}
	kafkatest.New(t, kafkatest.DataDir(old)).Close()
	if st, err := os.Stat(old); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("an existing data directory: %v, mode %v, want 0700", err, st.Mode().Perm())
	}
	dir := filepath.Join(t.TempDir(), "data", "kafka")
	b := kafkatest.New(t, kafkatest.DataDir(dir))
	b.Close()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", d, st.Mode().Perm())
		}
	}
}
