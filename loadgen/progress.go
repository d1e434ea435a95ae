package loadgen

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// counters are the run's live figures, updated by the send workers.
type counters struct {
	events   atomic.Int64 // events delivered
	batches  atomic.Int64
	errors   atomic.Int64 // batches that failed for good
	rejected atomic.Int64 // events the ingest rejected
	retries  atomic.Int64
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress reports the counters: a one-line bar redrawn every second on a
// terminal, a plain line every 10 s otherwise.
type progressReporter struct {
	w        io.Writer
	tty      bool
	total    int64 // events expected (Count), or 0
	duration time.Duration
	start    time.Time
	c        *counters
	simDone  func() time.Duration // simulated time covered so far
	lastN    int64
	lastT    time.Time
}

func (p *progressReporter) loop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	every := 10 * time.Second
	if p.tty {
		every = time.Second
	}
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			p.print(true)
			return
		case <-tk.C:
			p.print(false)
		}
	}
}

func (p *progressReporter) print(final bool) {
	now := time.Now()
	n := p.c.events.Load()
	rate := 0.0
	if dt := now.Sub(p.lastT).Seconds(); dt > 0 {
		rate = float64(n-p.lastN) / dt
	}
	if final {
		rate = float64(n) / max(now.Sub(p.start).Seconds(), 1e-9)
	}
	p.lastN, p.lastT = n, now
	frac := -1.0
	switch {
	case p.total > 0:
		frac = float64(n) / float64(p.total)
	case p.duration > 0:
		frac = float64(p.simDone()) / float64(p.duration)
	}
	stats := fmt.Sprintf("%d events %.0f ev/s errors %d rejected %d retries %d",
		n, rate, p.c.errors.Load(), p.c.rejected.Load(), p.c.retries.Load())
	if !p.tty {
		fmt.Fprintf(p.w, "loadgen: %s%s\n", stats, pct(frac))
		return
	}
	bar := ""
	if frac >= 0 {
		const width = 30
		k := int(min(frac, 1) * width)
		bar = "[" + strings.Repeat("#", k) + strings.Repeat(".", width-k) + "]" + pct(frac) + " "
	}
	end := ""
	if final {
		end = "\n"
	}
	fmt.Fprintf(p.w, "\r\033[K%s%s%s", bar, stats, end)
}

func pct(f float64) string {
	if f < 0 {
		return ""
	}
	return fmt.Sprintf(" %3.0f%%", min(f, 1)*100)
}
