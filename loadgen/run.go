package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"
)

// Run generates the run described by cfg, sends its batches through out
// (paced by cfg.Speed, cfg.Concurrency at a time), reports progress to
// progress (nil for none) and returns the ground truth of what it sent.
//
// A batch that fails for good is counted (Truth.Run.SendErrors) and the
// run goes on; an authentication failure (401, 403) ends it. When ctx ends
// the run stops and Run returns the truth of what was sent with ctx's
// error (with Config.Pregenerate, of what was built: see there).
func Run(ctx context.Context, cfg Config, out Sender, progress io.Writer) (*Truth, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	origin := cfg.Origin
	if origin.IsZero() {
		origin = time.Now()
	}
	o := origin.UnixMilli()
	if o%sec != 0 {
		o += sec - o%sec
	}
	g := newGen(cfg, o)
	tb := newTruthBuilder(&g.cfg, &g.planted)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var c counters
	fl := newInflight(min(ms(cfg.Windows.AllowedLateness)/4, minute))
	work := make(chan *Batch, 2*cfg.Concurrency)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			for b := range work {
				res, err := out.Send(ctx, b)
				fl.done(b)
				c.retries.Add(int64(res.Retries))
				if err != nil {
					c.errors.Add(1)
					var se *StatusError
					if errors.As(err, &se) && (se.Code == 401 || se.Code == 403) {
						cancel(err)
					}
					continue
				}
				c.events.Add(int64(res.Accepted))
				c.rejected.Add(int64(res.Rejected))
				c.batches.Add(1)
			}
		})
	}
	wallStart := time.Now()
	var simAt int64 // ms of simulated time covered, read by the progress loop
	var simMu sync.Mutex
	var stopProgress chan struct{}
	var progressDone chan struct{}
	// startProgress starts the progress reports, timed from wallStart: at
	// once, or with Pregenerate when the sending starts.
	startProgress := func() {
		if progress == nil {
			return
		}
		pr := &progressReporter{w: progress, tty: isTerminal(progress), total: int64(cfg.Count),
			duration: cfg.Duration, start: wallStart, c: &c, lastT: wallStart,
			simDone: func() time.Duration {
				simMu.Lock()
				defer simMu.Unlock()
				return time.Duration(simAt) * time.Millisecond
			}}
		stopProgress, progressDone = make(chan struct{}), make(chan struct{})
		go pr.loop(stopProgress, progressDone)
	}
	if !cfg.Pregenerate {
		startProgress()
	} else if progress != nil {
		fmt.Fprintln(progress, "loadgen: pregenerating the run before the first send")
	}

	// wait sleeps until a batch sent at simulated time sendAt is due:
	// never before that time has come on the wall clock (nothing is sent
	// from the future: a fast run catches up with the present, then goes
	// on in real time), and with Speed > 0 not before its paced time. It
	// returns false when ctx ended.
	wait := func(sendAt int64) bool {
		due := time.UnixMilli(sendAt)
		if cfg.Speed > 0 {
			due = later(due, wallStart.Add(time.Duration(float64(sendAt-o)/cfg.Speed*float64(time.Millisecond))))
		}
		if d := time.Until(due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return false
			case <-t.C:
			}
		}
		return true
	}
	batches := 0
	// dispatch hands b to the senders once it is due.
	dispatch := func(b *Batch) bool {
		if !wait(b.SendAt) || !fl.add(ctx, b) {
			return false
		}
		select {
		case work <- b:
		case <-ctx.Done():
			return false
		}
		if b.prepared == nil { // a prepared batch is in the truth already
			tb.add(b, len(b.Events))
		}
		simMu.Lock()
		simAt = b.SendAt - o // the simulated time the run has sent up to
		simMu.Unlock()
		batches++
		return true
	}
	var edge *edgeNode
	if cfg.EdgeEvents > 0 {
		edge = newEdgeNode(cfg.EdgeEvents, ms(cfg.EdgeHold), cfg.EdgeCorrect)
	}
	// emit hands a finished request on: to the senders, or with
	// Pregenerate to the queue sent once the whole run is built.
	emit := dispatch
	var queue []*Batch
	if cfg.Pregenerate {
		p, _ := out.(Preparer)
		emit = func(b *Batch) bool {
			if p != nil {
				p.Prepare(b)
			}
			if b.prepared != nil {
				// The request is built: its events are recorded in the
				// truth now and let go: a pregenerated run holds the
				// compressed bodies, not the events as well.
				tb.add(b, len(b.Events))
				b.Events = nil
			}
			queue = append(queue, b)
			return ctx.Err() == nil
		}
	}

	sent := 0
	var runErr error
loop:
	for {
		b := g.next()
		if cfg.Duration > 0 && b.SendAt > o+ms(cfg.Duration) {
			break
		}
		n := len(b.Events)
		if cfg.Count > 0 {
			n = min(n, cfg.Count-sent)
			b.Events = b.Events[:n]
		}
		if edge == nil {
			if !emit(b) {
				break loop
			}
		} else {
			// The edge node sends what its hold closed before b reaches
			// it, then takes b (sending a full request at once).
			for _, m := range edge.due(b.SendAt) {
				if !emit(m) {
					break loop
				}
			}
			if !cfg.Pregenerate && !wait(b.SendAt) {
				break loop
			}
			if m := edge.add(b); m != nil && !emit(m) {
				break loop
			}
		}
		sent += n
		if cfg.Count > 0 && sent >= cfg.Count {
			break
		}
	}
	if edge != nil && ctx.Err() == nil {
		for _, m := range edge.all() {
			if !emit(m) {
				break
			}
		}
	}
	if cfg.Pregenerate && ctx.Err() == nil {
		if progress != nil {
			fmt.Fprintf(progress, "loadgen: pregenerated %d requests of %d events in %v; sending\n",
				len(queue), sent, time.Since(wallStart).Round(time.Millisecond))
		}
		// Pacing (Speed > 0) starts now; batches are still never sent
		// before their simulated time (an Origin ahead of the wall clock
		// by more than the generation leaves them on schedule).
		wallStart = time.Now()
		startProgress()
		for i, b := range queue {
			queue[i] = nil // sent requests are garbage
			if !dispatch(b) {
				break
			}
		}
	}
	close(work)
	wg.Wait()
	if stopProgress != nil {
		close(stopProgress)
		<-progressDone
	}
	if ctx.Err() != nil {
		runErr = context.Cause(ctx)
	}
	bots := map[string]bool{}
	for _, b := range g.planted.Bots {
		for _, u := range b.Users {
			bots[u] = true // every bot, complete or not
		}
	}
	tr := tb.build(g, RunInfo{
		Seed: cfg.Seed, Tag: g.tag, Rate: cfg.Rate, Origin: Millis(o),
		Batches: batches, SendErrors: int(c.errors.Load()), Rejected: int(c.rejected.Load()),
	}, bots)
	return tr, runErr
}

// inflight bounds how far, in simulated time, the batches being delivered
// may drift apart: a batch is not dispatched while one sent more than
// maxLag earlier is still in flight (retrying after a 429, say). Without
// it a fast run would deliver a retried batch long after its successors
// and the pipeline would count on-time events as late.
type inflight struct {
	mu     sync.Mutex
	cond   *sync.Cond
	maxLag int64
	sendAt map[uint64]int64 // batch seq → send time
}

func newInflight(maxLag int64) *inflight {
	f := &inflight{maxLag: maxLag, sendAt: map[uint64]int64{}}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// add registers b, waiting while an in-flight batch lags it by more than
// maxLag. It returns false when ctx ended.
func (f *inflight) add(ctx context.Context, b *Batch) bool {
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for ctx.Err() == nil && f.oldest() < b.SendAt-f.maxLag {
		f.cond.Wait()
	}
	f.sendAt[b.Seq] = b.SendAt
	return ctx.Err() == nil
}

func (f *inflight) oldest() int64 {
	o := int64(math.MaxInt64)
	for _, t := range f.sendAt {
		o = min(o, t)
	}
	return o
}

func (f *inflight) done(b *Batch) {
	f.mu.Lock()
	delete(f.sendAt, b.Seq)
	f.cond.Broadcast()
	f.mu.Unlock()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
