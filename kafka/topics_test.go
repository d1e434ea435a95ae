package kafka_test

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

// admin returns a client of a new one-partition broker and its admin
// client.
func admin(t *testing.T) (*kgo.Client, *kadm.Client) {
	b := kafkatest.New(t, kafkatest.Partitions(1))
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

// TestEnsureTopicsChecksKeepForever: a KeepForever topic that already
// exists (created by hand, by an auto-create, by an operator's tool) with
// a retention or compaction would lose records that are its readers'
// state (the API's claims log: deleted claims are re-decided, a drop's
// granted count forgotten), so EnsureTopics refuses it with the fix,
// instead of leaving it as it is.
func TestEnsureTopicsChecksKeepForever(t *testing.T) {
	cl, adm := admin(t)
	week, compact := "604800000", "compact"
	for topic, cfg := range map[string]map[string]*string{
		"questline.test.retained":  {"retention.ms": &week},
		"questline.test.compacted": {"cleanup.policy": &compact},
		"questline.test.default":   nil,
	} {
		if _, err := adm.CreateTopic(t.Context(), 1, 1, cfg, topic); err != nil {
			t.Fatal(err)
		}
		err := kafka.EnsureTopics(t.Context(), cl, 1, 1, kafka.Topic{Name: topic, KeepForever: true})
		if err == nil || !strings.Contains(err.Error(), topic) || !strings.Contains(err.Error(), "kafka-configs") {
			t.Errorf("%s (%v): EnsureTopics said %v; want a refusal naming the topic and the fix", topic, cfg, err)
		}
	}
	const good = "questline.test.forever"
	for range 2 { // created, then found as it must be
		if err := kafka.EnsureTopics(t.Context(), cl, 1, 1, kafka.Topic{Name: good, KeepForever: true}); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
}

// TestEnsureTopicsChecksCompacted: a Compact topic that already exists
// with a delete policy and a retention would lose old keys' latest values
// (quest definitions, partials): refused with the fix; one that keeps
// them is used.
func TestEnsureTopicsChecksCompacted(t *testing.T) {
	cl, adm := admin(t)
	week, del, both, compact, forever := "604800000", "delete", "compact,delete", "compact", "-1"
	spaced, kb := "compact, delete", "1000"
	for topic, c := range map[string]struct {
		cfg map[string]*string
		ok  bool
	}{
		"questline.test.deleted":   {map[string]*string{"cleanup.policy": &del, "retention.ms": &week}, false},
		"questline.test.both":      {map[string]*string{"cleanup.policy": &both, "retention.ms": &week}, false},
		"questline.test.both-kept": {map[string]*string{"cleanup.policy": &both, "retention.ms": &forever}, true},
		"questline.test.compact":   {map[string]*string{"cleanup.policy": &compact}, true},
		"questline.test.spaced":    {map[string]*string{"cleanup.policy": &spaced, "retention.ms": &week}, false},
		"questline.test.by-size":   {map[string]*string{"cleanup.policy": &both, "retention.ms": &forever, "retention.bytes": &kb}, false},
	} {
		if _, err := adm.CreateTopic(t.Context(), 1, 1, c.cfg, topic); err != nil {
			t.Fatal(err)
		}
		err := kafka.EnsureTopics(t.Context(), cl, 1, 1, kafka.Topic{Name: topic, Compact: true})
		if c.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "kafka-configs") {
			t.Errorf("%s: EnsureTopics said %v, want ok %v", topic, err, c.ok)
		}
	}
	for range 2 { // created, then found as it must be
		if err := kafka.EnsureTopics(t.Context(), cl, 1, 1, kafka.Topic{Name: "questline.test.new", Compact: true}); err != nil {
			t.Errorf("a topic EnsureTopics made: %v", err)
		}
	}
}

// TestCompactedTopicsKeepRecordsADay: a compacted topic questline creates
// keeps every record a day before compaction may drop it
// (min.compaction.lag.ms): a merge stage that reads the partials late
// sees every copy of a key, not only the last written (helper-49).
func TestCompactedTopicsKeepRecordsADay(t *testing.T) {
	cl, adm := admin(t)
	if err := kafka.EnsureTopics(t.Context(), cl, 1, 1, kafka.Topic{Name: "questline.test.lagged", Compact: true}); err != nil {
		t.Fatal(err)
	}
	described, err := adm.DescribeTopicConfigs(t.Context(), "questline.test.lagged")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := described.On("questline.test.lagged", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc.Configs {
		if c.Key == "min.compaction.lag.ms" {
			if c.MaybeValue() != "86400000" {
				t.Errorf("min.compaction.lag.ms %q, want a day", c.MaybeValue())
			}
			return
		}
	}
	t.Error("min.compaction.lag.ms not set")
}
