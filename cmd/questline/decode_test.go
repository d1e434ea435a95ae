package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/internal/testtool"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

// TestDecodeKcatOutput feeds real kcat -f '%R%s' output of both topics to
// questline decode.
func TestDecodeKcatOutput(t *testing.T) {
	kcat := testtool.Require(t, "kcat")
	b := kafkatest.New(t, kafkatest.Partitions(1))
	cl, err := kafka.NewClient(b.Addrs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	evs := []event.Event{
		{ID: "d1", Type: event.QuestCompleted, UserID: "u1", TS: 1_777_000_000_123, EventTime: 1_777_000_001_123, ReceivedAt: 1_777_000_002_000,
			Source: event.SourceClient, KeyID: "abc", QuestID: "q\"1", DurationMs: 0, Has: event.HasDurationMs, Extra: `{"x":[1]}`},
		{ID: "d2", Type: event.DropStarted, DropID: "drop-1", CreatorID: "c", TS: 1_777_000_000_000, EventTime: 1_777_000_000_000, Source: event.SourceServer},
	}
	ctx := context.Background()
	var want strings.Builder
	for i := range evs {
		rec := &kgo.Record{Topic: kafka.TopicEvents, Key: []byte(evs[i].Key()), Value: event.AppendBinary(nil, &evs[i])}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
		want.Write(event.AppendJSON(nil, &evs[i]))
		want.WriteByte('\n')
	}
	dl := event.DeadLetter{Reason: "body: bad", Kind: "malformed_body", Index: -1, Raw: "{\x00", ReceivedAt: 5}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: kafka.TopicDLQ, Value: dl.Marshal()}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ topic, want string }{
		{kafka.TopicEvents, want.String()},
		{kafka.TopicDLQ, string(dl.Marshal()) + "\n"},
	} {
		raw, err := exec.Command(kcat, "-C", "-b", b.Addrs()[0], "-t", c.topic, "-e", "-q", "-f", "%R%s").Output()
		if err != nil {
			t.Fatalf("kcat: %v", err)
		}
		var out bytes.Buffer
		if err := decodeFrames(bytes.NewReader(raw), &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != c.want {
			t.Fatalf("%s decoded:\n%s\nwant:\n%s", c.topic, out.String(), c.want)
		}
	}

	// Input that is not '%R%s' framing is an error, not garbage output.
	for _, bad := range []string{"ab", "\x00\x00\x00\x09short", "\x00\x00\x00\x02\xff\xff", "\xff\xff\xff\xffx"} {
		if err := decodeFrames(strings.NewReader(bad), &bytes.Buffer{}); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}
