package api

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/kafka"
)

// The outcome relay makes every decided claim, and every drop schedule,
// start and end the claims fold applied, reach questline.events, also when
// the instance that appended it crashed (or its client gave up) before
// writing the event. Each instance is a member of consumer group Group on
// questline.claims; for its partitions it writes the outcome event of
// every claim record that decided its claim (the first of its claim_id),
// taking the decision from the sequencer's fold, and commits the offsets
// only after Kafka acknowledged the events. The answering instance writes
// the same event (same event_id, same content), so downstream sees one.

func (h *Handler) runRelay(ctx context.Context) error {
	cl, err := kafka.NewClient(h.brokers, h.log,
		kgo.ConsumerGroup(h.cfg.group),
		kgo.ConsumeTopics(kafka.TopicClaims),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return err
	}
	// With BlockRebalanceOnPoll, leaving the group at Close waits for
	// AllowRebalance.
	defer func() { cl.AllowRebalance(); cl.Close() }()
	// The relay decides nothing until the fold has caught up.
	for h.seq.Ready(ctx) != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fs.EachError(func(t string, p int32, err error) {
			h.log.Warn("outcome relay: reading the claims log", "partition", p, "err", err)
		})
		recs := fs.Records()
		if err := h.relay(ctx, recs); err != nil {
			// ctx ended or the fold stopped: nothing committed, the
			// partitions' next owner relays these records.
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if len(recs) > 0 {
			// A partition revoked meanwhile fails its commit; its new
			// owner writes the same events again (same ids).
			if err := cl.CommitRecords(ctx, recs...); err != nil && ctx.Err() == nil {
				h.m.relayFailures.Inc()
				h.log.Warn("outcome relay: commit failed", "err", err)
			}
		}
		cl.AllowRebalance()
	}
}

// relay writes the outcome events of the claim records among recs that
// decided their claim, and the events of the drop records the fold applied
// (the first of each event_id), retrying until Kafka acknowledged them all
// or ctx ends (its error is then returned).
func (h *Handler) relay(ctx context.Context, recs []*kgo.Record) error {
	var es []*event.Event
	for _, r := range recs {
		rec, err := ParseRecord(r.Value)
		if err != nil {
			continue
		}
		switch rec.Kind {
		case KindClaim:
			if err := h.seq.wait(ctx, r.Partition, r.Offset); err != nil {
				return err
			}
			if d, ok := h.seq.claim(r.Partition, rec.ClaimID); ok && d.Offset == r.Offset {
				es = append(es, outcomeEvent(&d))
			}
		case KindSchedule, KindStart, KindEnd:
			if rec.EventID == "" {
				continue // a record without its event's id: nothing to write
			}
			if err := h.seq.wait(ctx, r.Partition, r.Offset); err != nil {
				return err
			}
			if _, off, ok := h.seq.applied(r.Partition, rec.EventID); ok && off == r.Offset {
				// The API validated it before appending; a record
				// written by another hand may not be valid.
				e := dropEvent(&rec)
				if event.Validate(e) == nil {
					es = append(es, e)
				}
			}
		}
	}
	if len(es) == 0 {
		return nil
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, h.cfg.requestTimeout)
		err := h.writeEvents(pctx, es...)
		cancel()
		if err == nil {
			h.m.relayed.Add(float64(len(es)))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		h.m.relayFailures.Inc()
		h.log.Warn("outcome relay: writing outcome events failed; retrying", "events", len(es), "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(h.cfg.retryAfter):
		}
	}
}
