package kafka

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// WatermarkHeader marks a watermark record in questline.events. Such a
// record is not an event: a processor that found a partition idle appends
// one to say that the partition's event-time watermark is now at least the
// header's value (Unix ms, decimal). Because it is in the partition's log,
// every reader of the partition — another processor instance, a restart, a
// replay — applies it at the same place, so windows close on idle
// partitions and the results still depend only on the log
// (docs/processors.md, "Idle partitions"). Its value is the same
// statement as JSON for people reading the topic with kcat. The sink skips
// these records; consumers of questline.events other than questline's
// should too.
const WatermarkHeader = "questline.watermark"

// WatermarkRecord returns the watermark record at w (Unix ms) for partition
// of questline.events (produce it with a manual partitioner).
func WatermarkRecord(partition int32, w int64) *kgo.Record {
	s := strconv.FormatInt(w, 10)
	return &kgo.Record{
		Topic:     TopicEvents,
		Partition: partition,
		Headers:   []kgo.RecordHeader{{Key: WatermarkHeader, Value: []byte(s)}},
		Value:     []byte(`{"questline_watermark":` + s + `}`),
	}
}

// Watermark reports whether r is a watermark record, and its watermark.
// A record with the header but an unreadable value is still a watermark
// record (never an event) with ok true and w 0, which moves nothing.
func Watermark(r *kgo.Record) (w int64, ok bool) {
	v, ok := header(r, WatermarkHeader)
	if ok {
		w, _ = strconv.ParseInt(string(v), 10, 64)
	}
	return w, ok
}

// header returns the value of r's header key, if it has one.
func header(r *kgo.Record, key string) ([]byte, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}
