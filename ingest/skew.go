package ingest

import "github.com/questline/questline/event"

// minSkewMs is the smallest sent_at correction applied: below 1 s the
// difference between received_at and sent_at is mostly network delay,
// which must not be folded into event time (SPEC §2).
const minSkewMs = 1000

// EventTime derives an event's event_time (Unix ms) exactly per SPEC §2:
//
//   - server-side sources (server-scope keys and the API) are trusted:
//     event_time = ts;
//   - with the batch's clock_offset_ms (the client's NTP-style estimate of
//     server − device clock): event_time = ts + clock_offset_ms;
//   - else with sent_at: event_time = ts + (received_at − sent_at), unless
//     that difference is under 1 s in magnitude (then ts);
//   - else ts.
func EventTime(src event.Source, ts, receivedAt int64, b *event.Batch) int64 {
	if src != event.SourceClient {
		return ts
	}
	if b.HasClockOffset {
		return addSat(ts, b.ClockOffsetMs)
	}
	if b.HasSentAt {
		d := receivedAt - b.SentAt
		if d >= minSkewMs || d <= -minSkewMs {
			return addSat(ts, d)
		}
	}
	return ts
}

// addSat adds without wrapping around: a hostile clock_offset_ms must give
// an event time far in the past or future (rejected), never a wrapped one.
func addSat(a, b int64) int64 {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		if b > 0 {
			return 1<<63 - 1
		}
		return -1 << 63
	}
	return s
}
