package kafka_test

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

// TestEnsureTopicsChecksKeepForever: a KeepForever topic that already
// exists (created by hand, by an auto-create, by an operator's tool) with
// a retention or compaction would lose records that are its readers'
// state (the API's claims log: deleted claims are re-decided, a drop's
// granted count forgotten), so EnsureTopics refuses it with the fix,
// instead of leaving it as it is.
func TestEnsureTopicsChecksKeepForever(t *testing.T) {
	b := kafkatest.New(t, kafkatest.Partitions(1))
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
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
