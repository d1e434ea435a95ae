package processors

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/kafka"
	ch "github.com/questline/questline/sinks/clickhouse"
)

// refusals accounts for window rows ClickHouse refuses (the Writer has
// already isolated them from the rest of their batch). A refusal would
// recur on every restart, so stopping the processors for it would stop
// every metric (and, in `questline run`, ingest) for one row; instead the
// row goes to questline.events.dlq as a dead letter of kind
// processor_refused, with the row as JSON in raw, so it lands in
// rejected_events; it is logged and counted
// (questline_processor_rows_refused_total{table}).
type refusals struct {
	cl  *kgo.Client // set once the stage's client exists
	log *slog.Logger
	m   *metrics
	now func() time.Time
}

// flushRefusing flushes w and dead-letters the rows ClickHouse refused.
func flushRefusing[T any](ctx context.Context, w *ch.Writer[T], table string, r *refusals) error {
	refused, err := w.Flush(ctx)
	if err != nil || len(refused) == 0 {
		return err
	}
	recs := make([]*kgo.Record, 0, len(refused))
	for _, x := range refused {
		raw, _ := json.Marshal(x.Row)
		d := event.DeadLetter{
			Reason: "processors: ClickHouse refused a " + table + " row: " + x.Err.Error(),
			Kind:   "processor_refused", Index: -1, Raw: string(raw),
			ReceivedAt: r.now().UnixMilli(), Source: "processors",
		}
		if len(d.Raw) > event.MaxDeadLetterRaw {
			d.Raw, d.RawTruncated = d.Raw[:event.MaxDeadLetterRaw], true
		}
		recs = append(recs, &kgo.Record{Topic: kafka.TopicDLQ, Key: []byte(table), Value: d.Marshal()})
		r.m.refused.WithLabelValues(table).Inc()
		r.log.Error("processors: ClickHouse refused a row; dead-lettered", "table", table, "err", x.Err)
	}
	return r.cl.ProduceSync(ctx, recs...).FirstErr()
}
