package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/kafka"
)

// SinkConfig configures the sink role. Zero fields take the stated
// defaults.
type SinkConfig struct {
	// Brokers are the Kafka seed brokers. Required.
	Brokers []string
	// DSN is the ClickHouse DSN (QUESTLINE_CLICKHOUSE_DSN). Required.
	DSN string
	// Group is the Kafka consumer group; sink processes sharing it share
	// the partitions. Default "questline-sink".
	Group string
	// BatchRows is the most records per batch. Default 100000.
	// InsertsInFlight+1 batches are in memory (inserting and filling),
	// each about 340 bytes per record of column buffers plus the record's
	// value, kept allocated between batches.
	BatchRows int
	// InsertsInFlight is how many batches may be inserting at once while
	// the next one fills. Default 2: ClickHouse writes a batch's part
	// (sorting, compressing) after its last block arrived, and a second
	// INSERT streams meanwhile, so the server works on two batches where
	// it would wait for one. Offsets are still committed in batch order.
	InsertsInFlight int
	// BatchWait is the longest a consumed record waits for its batch to be
	// written. Default 1s.
	BatchWait time.Duration
	// KafkaOpts are extra franz-go options, applied last (tests).
	KafkaOpts []kgo.Opt
}

func (c *SinkConfig) validate() error {
	if c.Group == "" {
		c.Group = "questline-sink"
	}
	if c.BatchRows == 0 {
		c.BatchRows = 100_000
	}
	if c.BatchWait == 0 {
		c.BatchWait = time.Second
	}
	if c.InsertsInFlight == 0 {
		c.InsertsInFlight = 2
	}
	switch {
	case len(c.Brokers) == 0:
		return errors.New("clickhouse sink: no Kafka brokers")
	case c.DSN == "":
		return errors.New("clickhouse sink: no ClickHouse DSN")
	case c.BatchRows < 1 || c.BatchWait < 0 || c.InsertsInFlight < 1:
		return errors.New("clickhouse sink: BatchRows, BatchWait and InsertsInFlight must be positive")
	}
	// A DSN that does not parse never will: an error now, not a wait for
	// a server that is "not reachable".
	if _, _, err := parseDSN(c.DSN); err != nil {
		return fmt.Errorf("clickhouse sink: %w", err)
	}
	return nil
}

// Sink is the sink role: it consumes questline.events and
// questline.events.dlq in a consumer group and writes them to the events
// and rejected_events tables.
//
// Delivery: records are decoded into a batch until it is due (BatchRows
// or BatchWait), then the batch is written through Writers (which retry
// until ClickHouse acknowledges) while the next one fills: the inserts of
// up to InsertsInFlight batches overlap the fetching and decoding of the
// next. A batch's offsets are committed only after all its rows are
// acknowledged, and batches are committed in order. After a crash or a
// rebalance, records after the last commit are delivered again and
// collapse onto their first copies (ReplacingMergeTree), so the queries of
// docs/analysts.md count each event once. Committing written offsets is safe even for a
// partition that moved meanwhile: every record before such an offset is
// in ClickHouse; at worst the new owner re-reads some.
//
// Poison rows: an event ClickHouse refuses is sent to the dead-letter topic
// as a "sink_refused" dead letter, so it lands in rejected_events. A dead
// letter ClickHouse refuses is written again without its raw payload; if
// that is refused too, it is logged and counted, never dead-lettered again.
type Sink struct {
	cfg SinkConfig
	log *slog.Logger
	cl  *kgo.Client
	ch  *Client
	m   *sinkMetrics

	batches []*batch  // a ring: batches[fill] fills, the ones before it may be in flight
	fill    int       // index of the filling batch
	flight  []*flight // batches being written, oldest first
}

// flight is a batch being written by a goroutine of its own.
type flight struct {
	b    *batch
	done chan struct{} // closed when the flush returned
	err  error         // the flush's outcome, once done is closed
}

// batch is the records consumed since the previous hand-off, as rows.
type batch struct {
	store    *eventStore     // the events, columnar
	events   *Writer[uint32] // rows of store
	rejected *Writer[Rejected]
	dead     []*kgo.Record
	last     map[topicPartition]*kgo.Record // the offsets to commit
	pending  int                            // records consumed
	first    time.Time                      // when the first was consumed
}

type topicPartition struct {
	topic     string
	partition int32
}

// NewSink connects to Kafka and ClickHouse, waiting for ClickHouse until
// ctx ends if it is not reachable yet.
func NewSink(ctx context.Context, cfg SinkConfig, reg prometheus.Registerer, logger *slog.Logger) (*Sink, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newSinkMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, log: logger, m: m}
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		if s.ch, err = Open(ctx, cfg.DSN, reg, logger); err == nil {
			break
		}
		logger.Warn("clickhouse not reachable, waiting", "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("clickhouse sink: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
	}
	// One INSERT per batch: the sink already overlaps the next batch's
	// fetching and decoding with the insert, and one INSERT makes one part
	// per batch where a split makes two for the server to merge (measured:
	// less clickhouse-server CPU per row, docs/benchmarks/sink.md).
	wopts := []WriterOpt{BatchRows(cfg.BatchRows), BatchWait(cfg.BatchWait), InsertParallelism(1)}
	s.batches = make([]*batch, cfg.InsertsInFlight+1)
	for i := range s.batches {
		b := &batch{last: map[topicPartition]*kgo.Record{}, store: newEventStore(cfg.BatchRows)}
		if b.events, err = NewWriter(s.ch, b.store.table(), wopts...); err == nil {
			b.rejected, err = NewWriter(s.ch, RejectedTable, wopts...)
		}
		if err != nil {
			s.ch.Close()
			return nil, err
		}
		s.batches[i] = b
	}
	opts := append([]kgo.Opt{
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(kafka.TopicEvents, kafka.TopicDLQ),
		kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// A crashed sink's partitions move after 10 s instead of kgo's
		// 45 s: the sink has no state to lose, so fast failover wins over
		// tolerance of long pauses.
		kgo.SessionTimeout(10 * time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.OnPartitionsRevoked(s.forgetLag),
		kgo.OnPartitionsLost(s.forgetLag),
	}, cfg.KafkaOpts...)
	if s.cl, err = kafka.NewClient(cfg.Brokers, logger, opts...); err != nil {
		s.ch.Close()
		return nil, err
	}
	return s, nil
}

// forgetLag drops the lag series of partitions the sink no longer owns:
// their last value would stay, and QuestlineSinkLagging (alerts/) compares
// the sum with the sink's intake, so a partition moved away while behind
// would keep it firing.
func (s *Sink) forgetLag(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	for topic, ps := range revoked {
		for _, p := range ps {
			s.m.lag.DeleteLabelValues(topic, strconv.Itoa(int(p)))
		}
	}
}

// Ready reports whether ClickHouse answers, for readiness checks.
func (s *Sink) Ready(ctx context.Context) error { return s.ch.conn.Ping(ctx) }

// Close leaves the consumer group and closes the connections.
func (s *Sink) Close() {
	s.cl.Close()
	s.ch.Close()
}

// RunSink runs a sink until ctx ends; see Sink.
func RunSink(ctx context.Context, cfg SinkConfig, reg prometheus.Registerer, logger *slog.Logger) error {
	s, err := NewSink(ctx, cfg, reg, logger)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Run(ctx)
}

// Run consumes and writes until ctx ends. On the way out it writes and
// commits what it holds, within 10 s; what it cannot is delivered again
// to the next owner of the partitions.
func (s *Sink) Run(ctx context.Context) error {
	for {
		b := s.batches[s.fill]
		// Wake up for the batch deadline, and while a flush is in flight
		// often enough to commit it promptly.
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if b.pending > 0 || len(s.flight) > 0 {
			deadline := time.Now().Add(s.cfg.BatchWait)
			if b.pending > 0 {
				deadline = b.first.Add(s.cfg.BatchWait)
			}
			if soon := time.Now().Add(50 * time.Millisecond); len(s.flight) > 0 && soon.Before(deadline) {
				deadline = soon
			}
			pollCtx, cancel = context.WithDeadline(ctx, deadline)
		}
		fetches := s.cl.PollRecords(pollCtx, s.cfg.BatchRows-b.pending)
		cancel()
		if fetches.IsClientClosed() {
			return errors.New("clickhouse sink: Kafka client closed")
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				s.m.fetchErrors.Inc()
				s.log.Warn("kafka fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			for _, r := range p.Records {
				s.consume(b, r)
			}
			last := p.Records[len(p.Records)-1]
			b.last[topicPartition{p.Topic, p.Partition}] = last
			s.m.records.WithLabelValues(p.Topic).Add(float64(len(p.Records)))
			s.m.lag.WithLabelValues(p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(max(0, p.HighWatermark-last.Offset-1)))
		})
		if ctx.Err() != nil {
			return s.shutdown()
		}
		if err := s.reap(ctx, 0); err != nil {
			return s.fail(ctx, err)
		}
		if b.pending > 0 && (b.pending >= s.cfg.BatchRows || time.Since(b.first) >= s.cfg.BatchWait) {
			// The filling batch's successor must be free: at most
			// InsertsInFlight batches in flight.
			if err := s.reap(ctx, len(s.flight)-s.cfg.InsertsInFlight+1); err != nil {
				return s.fail(ctx, err)
			}
			f := &flight{b: b, done: make(chan struct{})}
			go func() { f.err = s.flush(ctx, b); close(f.done) }()
			s.flight = append(s.flight, f)
			s.fill = (s.fill + 1) % len(s.batches)
		}
	}
}

// reap commits the batches in flight that are written, oldest first,
// waiting for the first wait of them if need be. It stops at the first
// failed flush and returns its error, leaving it in flight.
func (s *Sink) reap(ctx context.Context, wait int) error {
	for len(s.flight) > 0 {
		f := s.flight[0]
		if wait > 0 {
			<-f.done
		} else {
			select {
			case <-f.done:
			default:
				return nil
			}
		}
		if f.err != nil {
			return f.err
		}
		wait--
		s.commit(ctx, f.b)
		s.flight = append(s.flight[:0], s.flight[1:]...)
	}
	return nil
}

// fail ends Run after a flush failed: on shutdown (ctx ended) the batch
// is still pending and shutdown redoes it; any other error is returned.
func (s *Sink) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return s.shutdown()
	}
	return err
}

// commit commits the offsets of a written batch and empties it.
func (s *Sink) commit(ctx context.Context, b *batch) {
	recs := make([]*kgo.Record, 0, len(b.last))
	for _, r := range b.last {
		recs = append(recs, r)
	}
	if err := s.cl.CommitRecords(ctx, recs...); err != nil {
		s.m.commits.WithLabelValues("error").Inc()
		s.log.Warn("offset commit failed; the batch will be delivered again and collapse", "err", err)
	} else {
		s.m.commits.WithLabelValues("ok").Inc()
	}
	clear(b.last)
	b.pending = 0
	b.store.reset()
}

// shutdown waits for the flushes in flight, then writes and commits every
// batch not yet committed (in order), with a bounded grace.
func (s *Sink) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pending := s.flight
	s.flight = nil
	for _, f := range pending {
		<-f.done
	}
	pending = append(pending, &flight{b: s.batches[s.fill], err: errors.New("not written")})
	for _, f := range pending {
		b := f.b
		if b.pending == 0 {
			continue
		}
		if f.err != nil { // it ran on Run's ended context, or never ran
			if err := s.flush(ctx, b); err != nil {
				s.log.Warn("sink stopped with an unwritten batch; it will be delivered again", "records", b.pending, "err", err)
				return nil
			}
		}
		s.commit(ctx, b)
	}
	return nil
}

// consume routes one record into b's writers.
func (s *Sink) consume(b *batch, r *kgo.Record) {
	if b.pending == 0 {
		b.first = time.Now()
	}
	b.pending++
	switch r.Topic {
	case kafka.TopicEvents:
		if _, ok := kafka.Watermark(r); ok || kafka.IsCatalogCopy(r) {
			return // a processor's watermark record or catalog copy: not an event (the copy's original is)
		}
		row, err := b.store.add(r.Value)
		if err != nil {
			s.m.deadLettered.WithLabelValues("undecodable").Inc()
			b.dead = append(b.dead, deadLetterRecord(&event.DeadLetter{
				Reason: "sink: undecodable events record at " + coords(r) + ": " + err.Error(),
				Kind:   "sink_refused", Index: -1, Raw: string(r.Value), ReceivedAt: r.Timestamp.UnixMilli(),
			}, r.Key))
			return
		}
		b.events.Add(row)
	case kafka.TopicDLQ:
		d, err := event.UnmarshalDeadLetter(r.Value)
		if err != nil {
			d = event.DeadLetter{
				Reason: "sink: undecodable dead letter at " + coords(r) + ": " + err.Error(),
				Kind:   "sink_refused", Index: -1, Raw: string(r.Value), ReceivedAt: r.Timestamp.UnixMilli(),
			}
			if len(d.Raw) > event.MaxDeadLetterRaw {
				d.Raw, d.RawTruncated = d.Raw[:event.MaxDeadLetterRaw], true
			}
		}
		b.rejected.Add(Rejected{ID: RejectedID(r.Value), DeadLetter: d})
	}
}

func coords(r *kgo.Record) string {
	return r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "@" + strconv.FormatInt(r.Offset, 10)
}

func deadLetterRecord(d *event.DeadLetter, key []byte) *kgo.Record {
	return &kgo.Record{Topic: kafka.TopicDLQ, Key: key, Value: d.Marshal()}
}

// flush writes both tables of b and dead-letters refused events; the
// caller commits. It is safe to call again after an error: the writers
// keep their rows and the dead letters not yet acknowledged.
func (s *Sink) flush(ctx context.Context, b *batch) error {
	events := b.events.Len()
	refusedEvents, err := b.events.Flush(ctx)
	if err != nil {
		return err
	}
	s.log.Debug("events written", "rows", events-len(refusedEvents), "refused", len(refusedEvents))
	for _, r := range refusedEvents {
		e := b.store.event(r.Row)
		s.m.deadLettered.WithLabelValues("refused").Inc()
		s.log.Warn("clickhouse refused an event; dead-lettering it", "event_id", e.ID, "err", r.Err)
		b.dead = append(b.dead, deadLetterRecord(&event.DeadLetter{
			Reason: "sink: ClickHouse refused the row: " + r.Err.Error(), Kind: "sink_refused",
			EventID: e.ID, Index: -1, Raw: string(event.AppendJSON(nil, &e)),
			ReceivedAt: e.ReceivedAt, Source: e.Source.String(), KeyID: e.KeyID,
		}, []byte(e.Key())))
	}
	if err := s.produceDead(ctx, b); err != nil {
		return err
	}
	refusedRejected, err := b.rejected.Flush(ctx)
	if err != nil {
		return err
	}
	if len(refusedRejected) > 0 {
		// Second chance without the raw payload, the likely culprit.
		for _, r := range refusedRejected {
			row := r.Row
			row.Reason = truncate("sink: ClickHouse refused this dead letter ("+r.Err.Error()+"); raw payload dropped; original reason: "+row.Reason, 4096)
			row.Kind, row.Raw, row.RawTruncated = "sink_refused", "", true
			b.rejected.Add(row)
		}
		again, err := b.rejected.Flush(ctx)
		if err != nil {
			return err
		}
		for _, r := range again {
			s.m.dropped.Inc()
			s.log.Error("clickhouse refused a dead letter twice; dropping it", "id", r.Row.ID, "event_id", r.Row.EventID, "err", r.Err)
		}
	}
	return nil
}

// produceDead sends the collected dead letters, retrying until Kafka
// acknowledges them or ctx ends: their offsets must not be committed
// before.
func (s *Sink) produceDead(ctx context.Context, b *batch) error {
	for backoff := 100 * time.Millisecond; len(b.dead) > 0; backoff = min(2*backoff, 5*time.Second) {
		results := s.cl.ProduceSync(ctx, b.dead...)
		var failed []*kgo.Record
		for _, pr := range results {
			if pr.Err != nil {
				failed = append(failed, pr.Record)
			}
		}
		b.dead = failed
		if len(failed) == 0 {
			break
		}
		s.log.Warn("dead-letter produce failed, retrying", "records", len(failed), "err", results.FirstErr())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
