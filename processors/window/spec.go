// Package window is questline's event-time windowing engine (SPEC §5):
// hopping windows aligned to the Unix epoch, a per-partition watermark
// (maximum event time minus a bounded out-of-orderness), a first result when
// the watermark passes a window's end, updates for late events until
// end + allowed lateness, and late-event accounting after that.
//
// Windows are built from panes: a window of size S and slide H is the union
// of S/H consecutive panes of length H, so an event updates exactly one pane
// and a window is merged from its panes only when it is emitted ("No pane, no
// gain", Li et al. 2005). Everything here is a pure function of the event
// sequence of one partition; the only wall-clock input (idle advancement)
// changes when rows are emitted, never what they contain (see Idle).
package window

import (
	"errors"
	"fmt"
	"time"
)

// Spec is the shape of a family of hopping windows. All durations are
// whole seconds, so window bounds map onto ClickHouse DateTime columns.
type Spec struct {
	// Size is the window length S. Required; a multiple of Slide.
	Size time.Duration
	// Slide is the hop H between window starts. Required. A window is
	// [start, start+Size) with start a multiple of Slide since the epoch.
	Slide time.Duration
	// Lateness is the allowed lateness: a window accepts updates until the
	// watermark reaches end + Lateness. Zero means none.
	Lateness time.Duration
	// UpdateEvery spaces a window's updates: once emitted, a window that
	// changes is emitted again at the first Flush whose emission watermark
	// is at least UpdateEvery past its previous emission, or at its final
	// emission (end + Lateness), whichever comes first; the changes wait
	// meanwhile. For processors whose emission reads the whole window (bot
	// signals), where late events trickling into every open window would
	// otherwise cost a full pass over each at every Flush. The final
	// emission holds every change, so final contents do not depend on it.
	// Zero: at every Flush after a change.
	UpdateEvery time.Duration
}

// Validate reports whether s is usable.
func (s Spec) Validate() error {
	switch {
	case s.Size <= 0 || s.Slide <= 0:
		return errors.New("window: size and slide must be positive")
	case s.Size%time.Second != 0 || s.Slide%time.Second != 0 || s.Lateness%time.Second != 0:
		return errors.New("window: size, slide and lateness must be whole seconds")
	case s.Size%s.Slide != 0:
		return fmt.Errorf("window: size %v is not a multiple of slide %v", s.Size, s.Slide)
	case s.Lateness < 0:
		return errors.New("window: lateness must not be negative")
	case s.UpdateEvery < 0:
		return errors.New("window: update interval must not be negative")
	}
	return nil
}

// ms returns the spec in Unix milliseconds: size, slide, lateness.
func (s Spec) ms() (size, slide, late int64) {
	return s.Size.Milliseconds(), s.Slide.Milliseconds(), s.Lateness.Milliseconds()
}

// Floor returns the largest multiple of step at or below t (also for t < 0).
func Floor(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	return t - r
}

// PaneStart returns the start of the pane (slide-long interval) holding t.
func (s Spec) PaneStart(t int64) int64 {
	return Floor(t, s.Slide.Milliseconds())
}

// Starts returns the first and last start (Unix ms) of the windows that
// contain t: every multiple of Slide in (t-Size, t]. There are Size/Slide
// of them; iterate with start += Slide.Milliseconds().
func (s Spec) Starts(t int64) (first, last int64) {
	size, slide, _ := s.ms()
	return s.startsMs(t, size, slide)
}

func (Spec) startsMs(t, size, slide int64) (first, last int64) {
	last = Floor(t, slide)
	return last - size + slide, last
}
