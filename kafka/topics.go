// Package kafka owns questline's use of Kafka: topic names and creation, the
// embedded broker of the default run, and client construction with the
// settings every role shares. Roles build their producers and consumers
// from NewClient so that acks, idempotence and timeouts are decided once.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topic names (SPEC §4). Every topic questline creates starts with
// "questline.".
const (
	// TopicEvents holds accepted events keyed by user_id; values are
	// event.AppendBinary records.
	TopicEvents = "questline.events"
	// TopicDLQ holds rejected events and requests; values are
	// event.DeadLetter JSON.
	TopicDLQ = "questline.events.dlq"
	// TopicClaims is the quest/drop API's claims log, keyed by drop_id:
	// every claim and every drop schedule, start and end made through the
	// API, in the order that decides claims (docs/api.md). Not compacted
	// and kept for ever (KeepForever): the log is the claims' state.
	TopicClaims = "questline.claims"
)

// Topic is a topic questline creates on start.
type Topic struct {
	Name string
	// Compact selects cleanup.policy=compact (changelogs, catalogs).
	Compact bool
	// KeepForever sets retention.ms=-1 on a topic that is not compacted
	// (a log that is its readers' state, e.g. TopicClaims).
	KeepForever bool
	// Partitions overrides the configured default when > 0 (e.g. 1 for a
	// topic that must be totally ordered).
	Partitions int32
}

// CoreTopics are the topics of the ingest path. Other roles append their
// own (repartition, changelog, result topics) when they ensure topics.
var CoreTopics = []Topic{{Name: TopicEvents}, {Name: TopicDLQ}}

// EnsureTopics creates the topics that do not exist yet, with partitions
// (default per topic unless Topic.Partitions is set) and replication
// (-1 for the broker's default). Existing topics are left as they are: it
// never changes a live topic's partition count, which would move keys.
func EnsureTopics(ctx context.Context, cl *kgo.Client, partitions int32, replication int16, topics ...Topic) error {
	adm := kadm.NewClient(cl)
	for _, t := range topics {
		p := partitions
		if t.Partitions > 0 {
			p = t.Partitions
		}
		var configs map[string]*string
		if t.Compact {
			// A compacted topic keeps every key's latest value for ever:
			// real Kafka never deletes by time under cleanup.policy
			// compact alone, but the embedded broker applies retention.ms
			// (7 days by default) to every topic unless it is -1, which
			// would drop old catalog definitions and partials.
			//
			// min.compaction.lag.ms keeps every record a day before
			// compaction may drop it: a reader that restarts within
			// that day sees every copy of a key, not only the last one
			// written (helper-49: a restored source's re-sent partial,
			// or a stale one a zombie wrote last, could be the only copy
			// left for a merge stage reading the range late; see
			// docs/processors.md). The embedded broker ignores it.
			compact, forever, lag := "compact", "-1", "86400000"
			configs = map[string]*string{"cleanup.policy": &compact, "retention.ms": &forever, "min.compaction.lag.ms": &lag}
		} else if t.KeepForever {
			forever := "-1"
			configs = map[string]*string{"retention.ms": &forever}
		}
		resp, err := adm.CreateTopic(ctx, p, replication, configs, t.Name)
		if err == nil {
			err = resp.Err
		}
		switch {
		case errors.Is(err, kerr.TopicAlreadyExists):
			err = nil
			switch {
			case t.KeepForever:
				err = checkKeepsForever(ctx, adm, t.Name)
			case t.Compact:
				err = checkCompacted(ctx, adm, t.Name)
			}
		case err != nil:
			err = fmt.Errorf("kafka: create topic %s: %w", t.Name, err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkKeepsForever returns an error unless the existing topic keeps every
// record: retention.ms and retention.bytes -1, cleanup.policy delete. A
// KeepForever topic is its readers' state, so one created otherwise (by
// hand, by a broker's auto-create) must be fixed, not used: leaving it "as
// it is" would lose that state silently once the broker cleans it.
func checkKeepsForever(ctx context.Context, adm *kadm.Client, topic string) error {
	rc, err := describe(ctx, adm, topic)
	if err != nil {
		return err
	}
	want := map[string]string{"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
	var wrong []string
	for _, c := range rc.Configs {
		if w, ok := want[c.Key]; ok && c.MaybeValue() != w {
			wrong = append(wrong, c.Key+"="+c.MaybeValue())
		}
	}
	if _, ok := configValue(rc.Configs, "retention.ms"); !ok { // a broker's default applies
		wrong = append(wrong, "retention.ms unset")
	}
	if len(wrong) > 0 {
		return fmt.Errorf("kafka: topic %s exists with %s, but it must keep every record (its records are its readers' state); set it with kafka-configs --alter --entity-type topics --entity-name %s --add-config retention.ms=-1,retention.bytes=-1,cleanup.policy=delete",
			topic, strings.Join(wrong, ", "), topic)
	}
	return nil
}

// checkCompacted returns an error unless the existing topic keeps every
// key's latest value: cleanup.policy compact, or compact,delete with
// retention.ms -1. A Compact topic created otherwise (by hand, by a
// broker's auto-create: delete and 7 days) would lose old quest
// definitions and partials silently (helper-35, session 13).
func checkCompacted(ctx context.Context, adm *kadm.Client, topic string) error {
	rc, err := describe(ctx, adm, topic)
	if err != nil {
		return err
	}
	policy, _ := configValue(rc.Configs, "cleanup.policy")
	retention, _ := configValue(rc.Configs, "retention.ms")
	bytes, ok := configValue(rc.Configs, "retention.bytes")
	if !ok {
		bytes = "-1"
	}
	var parts []string
	for _, p := range strings.Split(policy, ",") {
		parts = append(parts, strings.TrimSpace(p))
	}
	if slices.Contains(parts, "compact") && (!slices.Contains(parts, "delete") || retention == "-1" && bytes == "-1") {
		return nil
	}
	return fmt.Errorf("kafka: topic %s exists with cleanup.policy=%s, retention.ms=%s, retention.bytes=%s, but it must keep every key's latest value; set it with kafka-configs --alter --entity-type topics --entity-name %s --add-config cleanup.policy=compact,retention.ms=-1 (and restart an embedded broker)",
		topic, policy, retention, bytes, topic)
}

// describe returns topic's configuration.
func describe(ctx context.Context, adm *kadm.Client, topic string) (kadm.ResourceConfig, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return kadm.ResourceConfig{}, fmt.Errorf("kafka: describe topic %s: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return kadm.ResourceConfig{}, fmt.Errorf("kafka: describe topic %s: %w", topic, err)
	}
	return rc, nil
}

// configValue returns the value of the configuration key, and whether cs
// has it.
func configValue(cs []kadm.Config, key string) (string, bool) {
	for _, c := range cs {
		if c.Key == key {
			return c.MaybeValue(), true
		}
	}
	return "", false
}

// Retention returns topic's retention.ms as the broker reports it (Kafka
// and kfake report the default, 7 days, for a topic without its own): ms,
// -1 for ever; set is false when the broker reports none.
func Retention(ctx context.Context, cl *kgo.Client, topic string) (ms int64, set bool, err error) {
	rc, err := describe(ctx, kadm.NewClient(cl), topic)
	if err != nil {
		return 0, false, err
	}
	v, ok := configValue(rc.Configs, "retention.ms")
	if !ok || v == "" {
		return 0, false, nil
	}
	if ms, err = strconv.ParseInt(v, 10, 64); err != nil {
		return 0, false, fmt.Errorf("kafka: topic %s: retention.ms %q: %w", topic, v, err)
	}
	return ms, true, nil
}
