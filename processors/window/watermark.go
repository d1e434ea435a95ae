package window

import (
	"math"
	"time"
)

// None is the watermark of a partition that has seen no event yet.
const None = math.MinInt64

// Watermark tracks one partition's event-time progress: the maximum event
// time seen minus a bounded out-of-orderness. It is a pure function of the
// partition's event sequence, so a replay of the same records yields the same
// watermark at every record, whatever the wall clock says.
type Watermark struct {
	bound int64
	max   int64
}

// NewWatermark returns a watermark that tolerates events up to outOfOrder
// older than the newest one seen.
func NewWatermark(outOfOrder time.Duration) Watermark {
	return Watermark{bound: outOfOrder.Milliseconds(), max: None}
}

// Observe folds the event time t (Unix ms) in and returns the watermark.
func (w *Watermark) Observe(t int64) int64 {
	if t > w.max {
		w.max = t
	}
	return w.Time()
}

// Time returns the current watermark (Unix ms), or None before any event.
func (w *Watermark) Time() int64 {
	if w.max == None {
		return None
	}
	return w.max - w.bound
}

// Max returns the largest event time seen, or None.
func (w *Watermark) Max() int64 { return w.max }

// Restore sets the largest event time seen, from a snapshot.
func (w *Watermark) Restore(max int64) { w.max = max }

// Idle derives the emission watermark of a partition that stopped receiving
// records, so its windows still close on time (SPEC §5). After Timeout of
// wall-clock time without a record, event time is assumed to advance with
// the wall clock from the last watermark.
//
// The idle watermark only decides when rows are emitted; it never decides
// whether an event is late or when state is evicted (those follow the
// event-time Watermark alone). A window emitted early by idleness keeps its
// state and is emitted again if a later record changes it, so the final
// content of every row is the same whether or not the partition went idle:
// the wall clock changes timing, never results.
type Idle struct {
	// Timeout is the wall-clock time without records after which the
	// partition counts as idle.
	Timeout time.Duration

	lastArrival int64 // wall-clock ms of the last record
}

// Arrived records that a record arrived at wall-clock time now (Unix ms).
func (i *Idle) Arrived(now int64) { i.lastArrival = now }

// Watermark returns the emission watermark at wall-clock time now given the
// event-time watermark wm: wm itself while records flow, wm plus the idle
// time once the partition has been idle for Timeout.
func (i *Idle) Watermark(now, wm int64) int64 {
	idle := now - i.lastArrival
	if wm == None || i.Timeout <= 0 || idle < i.Timeout.Milliseconds() {
		return wm
	}
	return wm + idle
}
