package loadgen

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/kafka"
)

// KafkaSender produces batches straight to the events topic, as the
// ingest would after accepting them: key user_id (event.Event.Key), value
// event.AppendBinary, with event_time derived by SPEC §2's rules as if
// received at the batch's simulated send time (so it is the true time),
// and the ingest's fields set for trusted input: source, key id, sent_at,
// received_at, clock_offset_ms, edge_country. Nothing is validated or
// deduplicated on the way: the model only generates valid events. Like
// the ingest, it writes a catalog or lifecycle event's copies to every
// partition before the event (kafka.ProducerCopies).
type KafkaSender struct {
	cl          *kgo.Client
	topic       string
	clientKeyID string
	serverKeyID string
	copies      *kafka.CopyMaker
}

// KafkaOption configures a KafkaSender.
type KafkaOption func(*KafkaSender)

// WithTopic sets the topic. Default kafka.TopicEvents.
func WithTopic(topic string) KafkaOption { return func(s *KafkaSender) { s.topic = topic } }

// WithKeyIDs sets the key_id written for client and server batches.
// Default "loadgen-client", "loadgen-server".
func WithKeyIDs(client, server string) KafkaOption {
	return func(s *KafkaSender) { s.clientKeyID, s.serverKeyID = client, server }
}

// NewKafkaSender returns a sender producing with cl (see kafka.NewClient:
// acks=all, idempotent).
func NewKafkaSender(cl *kgo.Client, opts ...KafkaOption) *KafkaSender {
	s := &KafkaSender{cl: cl, topic: kafka.TopicEvents, clientKeyID: "loadgen-client", serverKeyID: "loadgen-server"}
	for _, o := range opts {
		o(s)
	}
	s.copies = kafka.NewCopyMaker(cl, s.topic)
	return s
}

// Record returns the Kafka record of b.Events[i], as the ingest would
// write it.
func (s *KafkaSender) Record(b *Batch, i int) *kgo.Record {
	e := b.Events[i]
	e.ReceivedAt = b.SendAt
	e.SentAt, e.Has = b.SendAt+b.Skew, e.Has|event.HasSentAt
	if b.Clock == ClockNTP || b.Clock == ClockEdge {
		e.ClockOffsetMs, e.Has = -b.Skew, e.Has|event.HasClockOffset
	}
	e.EventTime = DeriveEventTime(e.TS, b.Server, e.SentAt, true, e.ClockOffsetMs, e.Has&event.HasClockOffset != 0, e.ReceivedAt)
	e.Source, e.KeyID = event.SourceClient, s.clientKeyID
	if b.Server {
		e.Source, e.KeyID = event.SourceServer, s.serverKeyID
	}
	e.EdgeCountry = b.EdgeCountry
	return &kgo.Record{Topic: s.topic, Key: []byte(e.Key()), Value: event.AppendBinary(nil, &e)}
}

// Send produces b and waits for every record's acknowledgement.
func (s *KafkaSender) Send(ctx context.Context, b *Batch) (SendResult, error) {
	recs := make([]*kgo.Record, len(b.Events))
	for i := range b.Events {
		recs[i] = s.Record(b, i)
	}
	var copies []*kgo.Record
	for i, r := range recs {
		if !b.Events[i].Type.ServerOnly() {
			continue
		}
		cs, err := s.copies.Copies(ctx, r)
		if err != nil {
			return SendResult{}, fmt.Errorf("loadgen: %w", err)
		}
		copies = append(copies, cs...)
	}
	if len(copies) > 0 {
		if err := s.cl.ProduceSync(ctx, copies...).FirstErr(); err != nil {
			s.copies.Failed()
			return SendResult{}, fmt.Errorf("loadgen: produce catalog copies: %w", err)
		}
	}
	if err := s.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return SendResult{}, fmt.Errorf("loadgen: produce: %w", err)
	}
	return SendResult{Accepted: len(recs)}, nil
}
