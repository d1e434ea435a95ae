package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/questline/questline/event"
)

var testOrigin = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testConfig is a small, fast run: shorter drops and windows so that
// drops complete within a few hundred thousand events.
func testConfig(count int) Config {
	c := DefaultConfig()
	c.Seed = 7
	c.Rate = 100
	c.Count = count
	c.Speed = 0
	c.Concurrency = 1
	c.Origin = testOrigin
	c.FirstDrop = time.Minute
	c.DropLength = 4 * time.Minute
	c.DropEvery = 12 * time.Minute
	c.Windows.AttributionWindow = 8 * time.Minute
	c.Windows.AllowedLateness = 2 * time.Minute
	c.LongHoldMin, c.LongHoldMax = 17*time.Minute, 20*time.Minute
	return c
}

// sent is a batch as a sender received it.
type sent struct {
	b    Batch // a copy: Run may not reuse it, but keep the test honest
	body []byte
}

// captureSender keeps every batch (and its reproducible body), in Seq
// order.
type captureSender struct {
	mu      sync.Mutex
	batches []sent
}

func (s *captureSender) Send(_ context.Context, b *Batch) (SendResult, error) {
	cp := *b
	cp.Events = slices.Clone(b.Events)
	body := b.AppendSimJSON(nil)
	s.mu.Lock()
	s.batches = append(s.batches, sent{b: cp, body: body})
	s.mu.Unlock()
	return SendResult{Accepted: len(b.Events)}, nil
}

func (s *captureSender) sorted() []sent {
	slices.SortFunc(s.batches, func(x, y sent) int { return int(x.b.Seq) - int(y.b.Seq) })
	return s.batches
}

func run(t testing.TB, cfg Config) (*Truth, []sent) {
	t.Helper()
	var cs captureSender
	tr, err := Run(context.Background(), cfg, &cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr, cs.sorted()
}

// shared runs, computed once per test binary.
var (
	mainOnce  sync.Once
	mainTruth *Truth
	mainSent  []sent
)

func mainRun(t *testing.T) (*Truth, []sent) {
	mainOnce.Do(func() { mainTruth, mainSent = run(t, testConfig(180000)) })
	if mainTruth == nil {
		t.Fatal("main run failed")
	}
	return mainTruth, mainSent
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Count = 10
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config with a count: %v", err)
	}
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"no stop":        {func(c *Config) { c.Count = 0 }, "count or a duration"},
		"zero rate":      {func(c *Config) { c.Rate = 0 }, "rate"},
		"one bidder":     {func(c *Config) { c.Bidders = 1 }, "bidders"},
		"drops overlap":  {func(c *Config) { c.DropEvery = 20 * time.Minute }, "drop every"},
		"p over one":     {func(c *Config) { c.BaseConversion = 0.7 }, "base conversion"},
		"hold too old":   {func(c *Config) { c.LongHoldMax = 80 * time.Hour }, "long holds"},
		"hold too short": {func(c *Config) { c.LongHoldMin = 20 * time.Minute }, "long holds"},
		"bad slide":      {func(c *Config) { c.Windows.QuestSlide = 7 * time.Minute }, "quest windows"},
		"clock shares":   {func(c *Config) { c.NTPShare, c.SentAtSkewShare = 0.7, 0.5 }, "clock shares"},
		"concurrency":    {func(c *Config) { c.Concurrency = 0 }, "concurrency"},
	} {
		c := ok
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error about %q", name, err, tc.want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	cfg := testConfig(40000)
	cfg.Concurrency = 3 // delivery order must not matter
	tr1, s1 := run(t, cfg)
	tr2, s2 := run(t, cfg)
	if len(s1) != len(s2) {
		t.Fatalf("batches: %d vs %d", len(s1), len(s2))
	}
	for i := range s1 {
		if !bytes.Equal(s1[i].body, s2[i].body) || s1[i].b.SendAt != s2[i].b.SendAt {
			t.Fatalf("batch %d differs:\n%s\n%s", i, s1[i].body, s2[i].body)
		}
	}
	j1, _ := json.Marshal(tr1)
	j2, _ := json.Marshal(tr2)
	if !bytes.Equal(j1, j2) {
		t.Fatal("same seed, different truth")
	}
	cfg.Seed = 8
	_, s3 := run(t, cfg)
	ids := map[string]bool{}
	for _, s := range s1 {
		for _, e := range s.b.Events {
			ids[e.ID] = true
		}
	}
	for _, s := range s3 {
		for _, e := range s.b.Events {
			if ids[e.ID] {
				t.Fatalf("seeds 7 and 8 share event id %s", e.ID)
			}
		}
	}
}

func TestCountAndDuration(t *testing.T) {
	cfg := testConfig(12345)
	tr, ss := run(t, cfg)
	n := 0
	for _, s := range ss {
		n += len(s.b.Events)
	}
	if n != 12345 || tr.Run.Events != 12345 || tr.Expected.Events.Total != 12345 {
		t.Fatalf("sent %d, truth run %d expected %d; want 12345", n, tr.Run.Events, tr.Expected.Events.Total)
	}
	var buf bytes.Buffer
	if err := tr.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Truth
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Run.Origin != Millis(testOrigin.UnixMilli()) || back.Expected.Events.IDsSHA256 != tr.Expected.Events.IDsSHA256 || back.Expected.Events.ByType["bid"] != tr.Expected.Events.ByType["bid"] ||
		len(back.Expected.OfferYield) != len(tr.Expected.OfferYield) || back.Expected.OfferYield[3] != tr.Expected.OfferYield[3] {
		t.Fatalf("truth JSON does not round-trip")
	}
	cfg.Count, cfg.Duration = 0, 3*time.Minute
	_, ss = run(t, cfg)
	end := testOrigin.Add(3 * time.Minute).UnixMilli()
	if last := ss[len(ss)-1].b.SendAt; last > end || last < end-5000 {
		t.Fatalf("last batch sent at %v, want within 5 s before %v", time.UnixMilli(last).UTC(), time.UnixMilli(end).UTC())
	}
}

// TestEventsValidAndTimed checks every event against the contract and the
// model's time rules: valid, server-only types only in server batches,
// true times on the grid and never after the send, the derived event time
// exactly the true time, and the target rate.
func TestEventsValidAndTimed(t *testing.T) {
	tr, ss := mainRun(t)
	origin := testOrigin.UnixMilli()
	var first, last int64 = 1 << 62, 0
	n := 0
	for _, s := range ss {
		b := &s.b
		if b.Server != (b.DeviceID == "") {
			t.Fatalf("batch %d: server %v with device %q", b.Seq, b.Server, b.DeviceID)
		}
		if b.Skew%1000 != 0 || (b.Clock == ClockSynced) != (b.Skew == 0) {
			t.Fatalf("batch %d: clock %v skew %d", b.Seq, b.Clock, b.Skew)
		}
		for i := range b.Events {
			e := &b.Events[i]
			n++
			if err := event.Validate(e); err != nil {
				t.Fatalf("event %s (%s): %v", e.ID, e.Type, err)
			}
			if e.Type.ServerOnly() && !b.Server {
				t.Fatalf("server-only %s in a client batch", e.Type)
			}
			if (e.SessionID == "") != b.Server || (e.DeviceID == "") != b.Server {
				t.Fatalf("event %s (%s): session %q device %q in a server=%v batch", e.ID, e.Type, e.SessionID, e.DeviceID, b.Server)
			}
			tt := b.TrueTime(i)
			first, last = min(first, tt), max(last, tt)
			switch frac := tt % 1000; {
			case e.Type == event.Conversion && frac == 500:
			case (e.Type == event.DropStarted || e.Type == event.DropEnded || e.Type == event.DropScheduled) && frac == 250:
			case frac == 0:
			default:
				t.Fatalf("event %s (%s) at %d: off the time grid", e.ID, e.Type, tt)
			}
			if tt < origin || tt > b.SendAt {
				t.Fatalf("event %s at %d sent at %d (origin %d)", e.ID, tt, b.SendAt, origin)
			}
			if b.SendAt-tt > int64(70*time.Hour/time.Millisecond) {
				t.Fatalf("event %s sent %v after it happened", e.ID, time.Duration(b.SendAt-tt)*time.Millisecond)
			}
			// As ingest derives it when the batch arrives with no delay.
			got := DeriveEventTime(e.TS, b.Server, b.SendAt+b.Skew, true, -b.Skew, b.Clock == ClockNTP, b.SendAt)
			if got != tt {
				t.Fatalf("event %s: derived event time %d, true %d (clock %v skew %d)", e.ID, got, tt, b.Clock, b.Skew)
			}
		}
	}
	if n != tr.Run.Events {
		t.Fatalf("%d events sent, truth says %d", n, tr.Run.Events)
	}
	rate := float64(n) / (float64(last-first) / 1000)
	if rate < 85 || rate > 115 {
		t.Errorf("event rate %.1f/s, want 100 ± 15 %%", rate)
	}
}

func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	cfg := testConfig(5000)
	if _, err := Run(context.Background(), cfg, &captureSender{}, &buf); err != nil {
		t.Fatal(err)
	}
	if s := buf.String(); !strings.HasPrefix(s, "loadgen: 5000 events ") || !strings.Contains(s, "errors 0 rejected 0") ||
		!strings.HasSuffix(s, "100%\n") || strings.Contains(s, "\r") {
		t.Fatalf("plain progress %q", s)
	}
	// Pregenerated: a line before the generation; the rate is that of the
	// sending alone (5000 events sent in well under a second here).
	buf.Reset()
	cfg.Pregenerate = true
	if _, err := Run(context.Background(), cfg, &captureSender{}, &buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	last := strings.Fields(lines[len(lines)-1])
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "loadgen: pregenerating") || !strings.Contains(lines[1], "; sending") ||
		len(last) < 5 || last[1] != "5000" || last[4] != "ev/s" || !strings.HasSuffix(lines[2], "100%") {
		t.Fatalf("pregenerated progress %q", buf.String())
	}
	if rate, _ := strconv.Atoi(last[3]); rate < 5000 {
		t.Fatalf("pregenerated progress rate %d events/s: timed from before the generation?", rate)
	}
	buf.Reset()
	var c counters
	c.events.Store(250)
	c.errors.Store(2)
	p := &progressReporter{w: &buf, tty: true, total: 1000, start: time.Now(), lastT: time.Now(), c: &c}
	p.print(false)
	if s := buf.String(); !strings.HasPrefix(s, "\r\033[K[#######.......................]  25% 250 events") || !strings.Contains(s, "errors 2") {
		t.Fatalf("terminal progress %q", s)
	}
}

// slowSender holds one batch for a while and records what was sent
// meanwhile.
type slowSender struct {
	mu       sync.Mutex
	slowSeq  uint64
	slowAt   int64
	inFlight bool
	during   []int64 // send times of batches started while the slow one was in flight
}

func (s *slowSender) Send(ctx context.Context, b *Batch) (SendResult, error) {
	s.mu.Lock()
	if s.inFlight {
		s.during = append(s.during, b.SendAt)
	}
	slow := b.Seq == s.slowSeq
	if slow {
		s.inFlight, s.slowAt = true, b.SendAt
	}
	s.mu.Unlock()
	if slow {
		time.Sleep(300 * time.Millisecond)
		s.mu.Lock()
		s.inFlight = false
		s.mu.Unlock()
	}
	return SendResult{Accepted: len(b.Events)}, nil
}

// TestRunBoundsDeliveryLag: a batch stuck in retries holds back batches
// sent more than a quarter of the allowed lateness after it, so a fast
// run never turns on-time events late.
func TestRunBoundsDeliveryLag(t *testing.T) {
	cfg := testConfig(20000)
	cfg.Concurrency = 4
	s := &slowSender{slowSeq: 50}
	if _, err := Run(context.Background(), cfg, s, nil); err != nil {
		t.Fatal(err)
	}
	lag := int64(cfg.Windows.AllowedLateness/4) / int64(time.Millisecond)
	if len(s.during) == 0 {
		t.Fatal("nothing was sent while the slow batch was in flight")
	}
	for _, at := range s.during {
		if at > s.slowAt+lag {
			t.Fatalf("batch sent at +%d ms while one at 0 was in flight (bound %d ms)", at-s.slowAt, lag)
		}
	}
}

// wallSender records when each batch reached it.
type wallSender struct {
	mu      sync.Mutex
	early   []int64 // ms a batch arrived before its simulated send time
	maxLate int64   // the most ms a batch arrived after it
	n       int
}

func (s *wallSender) Send(_ context.Context, b *Batch) (SendResult, error) {
	now := time.Now().UnixMilli()
	s.mu.Lock()
	s.n++
	if now < b.SendAt {
		s.early = append(s.early, b.SendAt-now)
	}
	s.maxLate = max(s.maxLate, now-b.SendAt)
	s.mu.Unlock()
	return SendResult{Accepted: len(b.Events)}, nil
}

// TestRunNeverSendsFromTheFuture: a fast run whose simulated time reaches
// the present goes on in real time.
func TestRunNeverSendsFromTheFuture(t *testing.T) {
	cfg := testConfig(0)
	cfg.Origin = time.Now().Add(-time.Second)
	cfg.Duration = 3 * time.Second
	cfg.Rate = 300
	start := time.Now()
	s := &wallSender{}
	if _, err := Run(context.Background(), cfg, s, nil); err != nil {
		t.Fatal(err)
	}
	if len(s.early) > 0 || s.n < 10 {
		t.Fatalf("%d of %d batches sent before their time (by %v ms)", len(s.early), s.n, s.early)
	}
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Fatalf("a run reaching 2 s into the future took only %v", el)
	}
}

// TestPregenerateRealTime: a pregenerated real-time run (Speed 1, Origin
// ahead of the generation) sends each batch at its time, not before and
// not late.
func TestPregenerateRealTime(t *testing.T) {
	cfg := testConfig(0)
	cfg.Origin = time.Now().Add(time.Second)
	cfg.Duration = 2 * time.Second
	cfg.Rate = 300
	cfg.Speed = 1
	cfg.Pregenerate = true
	s := &wallSender{}
	start := time.Now()
	if _, err := Run(context.Background(), cfg, s, nil); err != nil {
		t.Fatal(err)
	}
	if len(s.early) > 0 || s.n < 10 {
		t.Fatalf("%d of %d batches sent before their time (by %v ms)", len(s.early), s.n, s.early)
	}
	if el := time.Since(start); el < 2500*time.Millisecond {
		t.Fatalf("a real-time run of 2 s starting 1 s ahead took only %v", el)
	}
	if s.maxLate > 1500 { // generous: a loaded machine delays goroutines too
		t.Fatalf("a batch was sent %d ms after its time", s.maxLate)
	}
}

// TestSkipExpected: the load-only truth keeps the planted part and the
// event counts, identical to a full truth's.
func TestSkipExpected(t *testing.T) {
	cfg := testConfig(30000)
	full, _ := run(t, cfg)
	cfg.SkipExpected = true
	lite, _ := run(t, cfg)
	pf, _ := json.Marshal(full.Planted)
	pl, _ := json.Marshal(lite.Planted)
	if !bytes.Equal(pf, pl) {
		t.Fatal("planted truth differs with SkipExpected")
	}
	ef, el := full.Expected.Events, lite.Expected.Events
	if ef.Total != el.Total || ef.Late != el.Late || len(ef.ByType) != len(el.ByType) || el.IDsSHA256 != "" ||
		lite.Expected.QuestCompletion != nil || lite.Run.End != full.Run.End {
		t.Fatalf("events %+v vs %+v", ef, el)
	}
}

// firstSendSender records, at the first send, whether the run had already
// said it finished generating (the progress line of Pregenerate).
type firstSendSender struct {
	captureSender
	once   sync.Once
	before int // progress lines written before the first send
	lines  *lineCounter
}

func (s *firstSendSender) Send(ctx context.Context, b *Batch) (SendResult, error) {
	s.once.Do(func() { s.before = s.lines.count() })
	return s.captureSender.Send(ctx, b)
}

type lineCounter struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.Split(strings.TrimSpace(string(p)), "\n")...)
	return len(p), nil
}

func (l *lineCounter) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, "pregenerated") {
			n++
		}
	}
	return n
}

func TestPregenerate(t *testing.T) {
	for _, edge := range []int{0, 200} {
		cfg := testConfig(30000)
		cfg.Concurrency = 3
		cfg.EdgeEvents = edge
		tr1, s1 := run(t, cfg)
		cfg.Pregenerate = true
		lc := &lineCounter{}
		fs := &firstSendSender{lines: lc}
		tr2, err := Run(context.Background(), cfg, fs, lc)
		if err != nil {
			t.Fatal(err)
		}
		if fs.before != 1 {
			t.Fatalf("edge %d: first batch sent before the run was generated (%d 'pregenerated' lines before it; progress: %q)", edge, fs.before, lc.lines)
		}
		s2 := fs.sorted()
		if len(s1) != len(s2) {
			t.Fatalf("edge %d: batches: %d vs %d pregenerated", edge, len(s1), len(s2))
		}
		for i := range s1 {
			if !bytes.Equal(s1[i].body, s2[i].body) || s1[i].b.SendAt != s2[i].b.SendAt {
				t.Fatalf("edge %d: batch %d differs when pregenerated:\n%s\n%s", edge, i, s1[i].body, s2[i].body)
			}
		}
		j1, _ := json.Marshal(tr1)
		j2, _ := json.Marshal(tr2)
		if !bytes.Equal(j1, j2) {
			t.Fatalf("edge %d: pregenerated run has another truth", edge)
		}
	}
}

// TestPregenerateCanceled: a context that ends while the run is being
// generated ends the generation then (not at the end of the run's
// million events, seconds later) and sends nothing; Run returns the
// context's error and the truth of nothing sent.
func TestPregenerateCanceled(t *testing.T) {
	cfg := testConfig(1_000_000)
	cfg.Pregenerate = true
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var cs captureSender
	start := time.Now()
	tr, err := Run(ctx, cfg, &cs, nil)
	if el := time.Since(start); el > 4*time.Second {
		t.Fatalf("Run took %v after a cancel 50 ms in", el)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v, want the context's deadline", err)
	}
	if len(cs.batches) != 0 || tr.Run.Batches != 0 {
		t.Fatalf("%d batches sent, truth of %d, after a cancel during the generation", len(cs.batches), tr.Run.Batches)
	}
}
