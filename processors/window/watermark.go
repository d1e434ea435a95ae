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
