// Package loadgen is questline's synthetic challenge platform: a seeded,
// deterministic model of users, devices, micro-quests, creators' live
// drops, sponsor auctions and bots that emits client and server event
// batches, together with the ground truth of what it generated (see
// docs/loadgen.md).
//
// The model runs on a simulated clock: a run of N events under a seed is
// reproducible bit for bit (event ids included). Senders deliver the
// batches through the real HTTP ingest (HTTPSender) or straight to Kafka
// (KafkaSender); Run paces them against the wall clock.
package loadgen

import (
	"errors"
	"fmt"
	"time"
)

// Config is a load generator run. Start from DefaultConfig, change what
// you need, and call Validate (Run does too). Durations are simulated
// (event) time unless stated otherwise.
type Config struct {
	// Seed selects the run; the same seed and config give the same events,
	// ids included. Run tags every id with the seed, so two runs with
	// different seeds never collide downstream. Default 1.
	Seed uint64
	// Rate is the target event rate in events per simulated second; with
	// Speed 1 it is also the send rate. Default 200.
	Rate float64
	// Count stops the run after this many events have been sent (the last
	// batch is cut). Count or Duration must be set; with both, the first
	// reached ends the run.
	Count int
	// Duration stops the run when the simulated clock passes Origin+Duration.
	Duration time.Duration
	// Origin is the simulated time of the run's start (rounded up to a
	// whole second). Default: the wall clock when Run starts.
	Origin time.Time
	// Speed maps simulated time to wall time when sending: 1 sends each
	// batch when it happens (real time), 10 ten times faster, 0 as fast as
	// the sender goes. No batch is ever sent before its simulated time has
	// come on the wall clock, so a fast run with Origin in the past
	// catches up with the present and then goes on in real time. Keep
	// Origin within 72 h − LongHoldMax (ingest's max age). Default 1.
	Speed float64
	// Concurrency is how many batches are in flight at once. Default 4.
	Concurrency int

	// Quests, Creators, Bidders size the catalog. Defaults 20, 6, 5.
	Quests   int
	Creators int
	Bidders  int

	// BotShare is the share of sessions run by bots, spread evenly over
	// the six bot kinds. Default 0.04.
	BotShare float64

	// FirstDrop is when the first live drop starts, after Origin; DropLength
	// how long each is live; DropEvery the time between drop starts.
	// DropEvery must be at least DropLength + AttributionWindow, so that a
	// drop's conversion horizon ends before the next drop starts and the
	// planted lift of each drop stays clean. Defaults 2m, 10m, 45m.
	FirstDrop  time.Duration
	DropLength time.Duration
	DropEvery  time.Duration
	// LiftMin, LiftMax bound the planted lift of each drop, drawn
	// uniformly: exposed users convert with probability
	// BaseConversion·(1+lift). Defaults 0.2, 0.8.
	LiftMin, LiftMax float64
	// BaseConversion is the conversion probability of a control user over
	// a drop's horizon, and of a human after a completed quest outside
	// drop horizons. Default 0.12.
	BaseConversion float64
	// ExposeShare is the probability that a human enrolled in a drop's
	// experiment is exposed (views the drop). Default 0.5.
	ExposeShare float64
	// LatencyMedian, LatencySigma define the planted log-normal
	// completion-to-conversion latency. Defaults 4m, 0.8.
	LatencyMedian time.Duration
	LatencySigma  float64
	// ViolationRate is the probability, per auction and per kind, that the
	// model injects an integrity violation of that kind. Default 0.005.
	ViolationRate float64

	// NTPShare and SentAtSkewShare are the shares of devices whose clock is
	// off (by whole seconds) and that send clock_offset_ms measured from
	// server_time, or only sent_at; the rest have a correct clock.
	// Defaults 0.15, 0.1.
	NTPShare        float64
	SentAtSkewShare float64
	// OfflineShare is the share of devices that are offline-first: they
	// hold their events and send them late, either shortly (30 s to
	// min(5 min, AllowedLateness/2): on time for every window) or after
	// LongHoldMin..LongHoldMax (late for every window). LongHoldShare is
	// the share of long holds. Defaults 0.08, 0.3, 1h, 6h.
	OfflineShare float64
	// TravellerShare is the share of humans whose network country (the
	// edge's) differs from the country their app declares, on every event:
	// travellers and VPN users, who must not be flagged. Default 0.02.
	TravellerShare float64
	LongHoldShare  float64
	LongHoldMin    time.Duration
	LongHoldMax    time.Duration

	// Windows are the metric definitions the expected values follow; they
	// must match the processors' configuration.
	Windows Windows
	// EdgeEvents > 0 sends through edge nodes: each request carries up to
	// this many events of many devices (one edge country, one clock
	// correction, sent with clock_offset_ms) instead of one device's batch;
	// server batches are merged likewise (edge.go, docs/loadgen.md). The
	// events, their true times and the truth are those of the same seed
	// without it. Default 0 (every device sends its own batches).
	EdgeEvents int
	// EdgeHold is how long (simulated time) an edge node holds a request
	// open for more batches before it sends it. Default 1s.
	EdgeHold time.Duration
	// EdgeCorrect makes the edge nodes correct skewed devices' clocks
	// themselves: their events go with ts − skew, the device's ts in
	// props.device_ts, in the synced devices' requests. Same event times,
	// far fewer requests; the ts column no longer shows the device clock.
	// Default false.
	EdgeCorrect bool

	// Pregenerate builds every request of the run before sending the
	// first, so that the sending is timed apart from the model (as a bulk
	// load tool reads a file generated beforehand). It holds the whole run
	// in memory: the model's world, and each request. A Sender that is a
	// Preparer builds the bodies that do not depend on the send time as
	// they are generated (the HTTP sender: server batches and edge
	// requests, whose sent_at is the time they are due); their events are
	// then recorded in the truth and let go, so the truth of an
	// interrupted run counts them as sent. A device's own batch is kept
	// whole and still takes its sent_at and clock correction when it is
	// sent. With Speed > 0,
	// pacing starts when the generation ends; set Origin that far ahead of
	// the wall clock to send every batch at its simulated time (real time
	// at Speed 1). Default false.
	Pregenerate bool

	// SkipExpected leaves the expected values (but the event counts) out
	// of the truth: the truth then needs no memory per event (about 300
	// bytes otherwise), for long load-only runs. Default false.
	SkipExpected bool
}

// Windows are the window and attribution settings of SPEC §5.
type Windows struct {
	QuestSize, QuestSlide time.Duration // default 10m, 1m (completion and latency)
	YieldSize, YieldSlide time.Duration // default 5m, 1m
	AttributionWindow     time.Duration // default 30m
	AllowedLateness       time.Duration // default 10m
}

// DefaultConfig returns the defaults documented on Config's fields, with
// Count and Duration unset.
func DefaultConfig() Config {
	return Config{
		Seed:            1,
		Rate:            200,
		Speed:           1,
		Concurrency:     4,
		Quests:          20,
		Creators:        6,
		Bidders:         5,
		BotShare:        0.04,
		FirstDrop:       2 * time.Minute,
		DropLength:      10 * time.Minute,
		DropEvery:       45 * time.Minute,
		LiftMin:         0.2,
		LiftMax:         0.8,
		BaseConversion:  0.12,
		ExposeShare:     0.5,
		LatencyMedian:   4 * time.Minute,
		LatencySigma:    0.8,
		ViolationRate:   0.005,
		NTPShare:        0.15,
		SentAtSkewShare: 0.1,
		OfflineShare:    0.08,
		TravellerShare:  0.02,
		LongHoldShare:   0.3,
		LongHoldMin:     time.Hour,
		LongHoldMax:     6 * time.Hour,
		EdgeHold:        time.Second,
		Windows: Windows{
			QuestSize: 10 * time.Minute, QuestSlide: time.Minute,
			YieldSize: 5 * time.Minute, YieldSlide: time.Minute,
			AttributionWindow: 30 * time.Minute,
			AllowedLateness:   10 * time.Minute,
		},
	}
}

// maxAge is ingest's default maximum event age (SPEC §2).
const maxAge = 72 * time.Hour

// lateMargin is the slack between a long hold and the last moment its
// events could still be on time: it covers the processors' bounded
// out-of-orderness (assumed under 5 min).
const lateMargin = 5 * time.Minute

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("loadgen: "+format, args...))
		}
	}
	check(c.Rate > 0 && c.Rate <= 1e6, "rate must be in (0, 1e6] events/s, got %v", c.Rate)
	check(c.Count > 0 || c.Duration > 0, "set a count or a duration")
	check(c.Count >= 0 && c.Duration >= 0, "count and duration must not be negative")
	check(c.Speed >= 0, "speed must not be negative")
	check(c.Concurrency >= 1 && c.Concurrency <= 256, "concurrency must be in [1, 256]")
	check(c.Quests >= 1 && c.Quests <= 10000, "quests must be in [1, 10000]")
	check(c.Creators >= 1 && c.Creators <= 10000, "creators must be in [1, 10000]")
	check(c.Bidders >= 2 && c.Bidders <= 50, "bidders must be in [2, 50]")
	check(share(c.BotShare), "bot share must be in [0, 1]")
	check(c.FirstDrop >= 0, "first drop must not be negative")
	check(c.DropLength >= time.Minute, "drop length must be at least 1m")
	check(c.DropEvery >= c.DropLength+c.Windows.AttributionWindow,
		"drop every (%v) must be at least drop length + attribution window (%v)", c.DropEvery, c.DropLength+c.Windows.AttributionWindow)
	check(c.LiftMin > -1 && c.LiftMin <= c.LiftMax, "lift bounds must satisfy -1 < min <= max")
	check(c.BaseConversion > 0 && c.BaseConversion*(1+c.LiftMax) <= 1, "base conversion × (1+lift max) must be in (0, 1]")
	check(share(c.ExposeShare), "expose share must be in [0, 1]")
	check(c.LatencyMedian >= time.Second, "latency median must be at least 1s")
	check(c.LatencySigma >= 0 && c.LatencySigma <= 3, "latency sigma must be in [0, 3]")
	check(c.ViolationRate >= 0 && c.ViolationRate <= 0.1, "violation rate must be in [0, 0.1]")
	check(share(c.NTPShare) && share(c.SentAtSkewShare) && c.NTPShare+c.SentAtSkewShare <= 1, "clock shares must be in [0, 1] and sum to at most 1")
	check(share(c.OfflineShare) && share(c.LongHoldShare), "offline shares must be in [0, 1]")
	check(share(c.TravellerShare), "traveller share must be in [0, 1]")
	check(c.EdgeEvents >= 0, "edge events must not be negative")
	check(c.EdgeHold >= 0 && c.EdgeHold <= min(c.Windows.AllowedLateness/8, 30*time.Second),
		"edge hold must be in [0, min(allowed lateness / 8, 30s)]: half the drift Run allows between batches in flight")
	w := c.Windows
	minHold := w.AllowedLateness + max(w.QuestSize, w.YieldSize) + lateMargin
	check(c.LongHoldMin >= minHold && c.LongHoldMin <= c.LongHoldMax && c.LongHoldMax <= maxAge-2*time.Hour,
		"long holds must satisfy %v (allowed lateness + largest window + %v) <= min <= max <= 70h: late for every window, younger than the 72h max age", minHold, lateMargin)
	check(w.QuestSize > 0 && w.QuestSlide > 0 && w.QuestSize%w.QuestSlide == 0 && w.QuestSlide%time.Second == 0, "quest windows: size must be a multiple of slide, slide whole seconds")
	check(w.YieldSize > 0 && w.YieldSlide > 0 && w.YieldSize%w.YieldSlide == 0 && w.YieldSlide%time.Second == 0, "yield windows: size must be a multiple of slide, slide whole seconds")
	check(w.AttributionWindow >= time.Minute && w.AttributionWindow%time.Second == 0, "attribution window must be whole seconds, at least 1m")
	check(w.AllowedLateness >= 2*time.Minute, "allowed lateness must be at least 2m")
	return errors.Join(errs...)
}

func share(v float64) bool { return v >= 0 && v <= 1 }
