package pipeline

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/window"
)

// rpCase runs log (events; a nil Type is a watermark record at EventTime)
// uninterrupted with flushes after the records in flushAt and at the end,
// and returns the FINAL tables.
func rpCase(t *testing.T, cfg Config, log []event.Event, flushAt map[int]bool) rpTables {
	s := &rpScenario{cfg: cfg, devEvery: 1}
	for i := range log {
		en := rpEntry{refFlush: flushAt[i]}
		if log[i].Type == event.TypeInvalid {
			en.wm = log[i].EventTime
		} else {
			en.rec = event.AppendBinary(nil, &log[i])
		}
		s.log = append(s.log, en)
	}
	s.log = append(s.log, rpEntry{wm: t0 + 48*3600_000})
	return runScenario(t, s, false).tables
}

func rpShowDiff(t *testing.T, a, b rpTables) {
	d := rpDiff(rpResult{tables: a}, rpResult{tables: b})
	vo := 0
	for _, x := range d {
		if strings.Contains(x, "(version only)") {
			vo++
			continue
		}
		t.Log(x)
	}
	t.Logf("%d rows differ in version only", vo)
	if len(d) > 0 {
		t.Errorf("%d rows differ between the two flush cadences", len(d))
	}
}

// TestYieldAuctionEvictedAtFlush: until session 15 an auction's state was
// evicted by yield.Flush only, once the watermark had passed its expiry,
// so a very late event of it joined it (late, window_late_events) or, if
// a Flush ran in between, started an orphan auction (bidstream_integrity;
// helper-46). Now Add evicts it too: always an orphan.
func TestYieldAuctionEvictedAtFlush(t *testing.T) {
	cfg := testConfig()
	log := []event.Event{
		{ID: "r", Type: event.BidRequest, UserID: "u", AuctionID: "a1", Placement: "feed", FloorMicros: 1, Has: event.HasFloorMicros, EventTime: t0},
		{ID: "x", Type: event.BidRequest, UserID: "v", AuctionID: "a2", Placement: "feed", FloorMicros: 1, Has: event.HasFloorMicros, EventTime: t0 + 46*minute},
		{ID: "b", Type: event.Billed, UserID: "u", AuctionID: "a1", AmountMicros: 5, Has: event.HasAmountMicros, EventTime: t0 + 46*minute},
	}
	rpShowDiff(t, rpCase(t, cfg, log, nil), rpCase(t, cfg, log, map[int]bool{1: true}))
}

// TestCleanLatencyZeroRowDependsOnFlush: until session 15 the clean
// scope's all-quests row of a window holding only a flagged user's conversion was
// written by an update, never by a first emission, and whether the
// emission was an update depended on the engine's emission watermark at
// earlier Flushes (helper-46). Now such a window writes no row.
func TestCleanLatencyZeroRowDependsOnFlush(t *testing.T) {
	cfg := testConfig()
	log := []event.Event{
		// u completes q2 in 32 s (impossible: flagged in the bot windows of t0+30 s).
		{ID: "c", Type: event.QuestCompleted, UserID: "u", QuestID: "q2", DurationMs: 31_708, Has: event.HasDurationMs, EventTime: t0 + 30*sec},
		{ID: "s", Type: event.QuestStarted, UserID: "u", QuestID: "q1", EventTime: t0 + 650*sec},
		{ID: "a", Type: event.QuestAbandoned, UserID: "w", QuestID: "q2", EventTime: t0 + 748*sec},
		{ID: "v", Type: event.Conversion, UserID: "u", OrderID: "o", EventTime: t0 + 439*sec},
		{ID: "x", Type: event.QuestStarted, UserID: "w", QuestID: "q1", EventTime: t0 + 1942*sec},
		{ID: "y", Type: event.QuestStarted, UserID: "w", QuestID: "q1", EventTime: t0 + 2236*sec},
	}
	rpShowDiff(t, rpCase(t, cfg, log, nil), rpCase(t, cfg, log, map[int]bool{4: true}))
}

// TestDeviceZeroRowDependsOnEmissions: until session 15 the device
// stage's bots processor wrote a zero row for a shared-device candidate
// (users summed over panes > SharedDeviceUsers, distinct users ≤ it) when
// the window had been emitted before, and none on a first emission
// (helper-46). Now neither writes one (below metronome's count).
func TestDeviceZeroRowDependsOnEmissions(t *testing.T) {
	cfg := testConfig().Bots
	cfg.Entity = bots.EntityDevice
	evs := []event.Event{
		{Type: event.QuestStarted, UserID: "u0", DeviceID: "d0", QuestID: "q", EventTime: t0 + 1*sec},
		{Type: event.QuestStarted, UserID: "u1", DeviceID: "d0", QuestID: "q", EventTime: t0 + 2*sec},
		{Type: event.QuestStarted, UserID: "x", DeviceID: "dx", QuestID: "q", EventTime: t0 + 2*minute}, // closes [t0, t0+1m) for emission
		{Type: event.QuestStarted, UserID: "u2", DeviceID: "d0", QuestID: "q", EventTime: t0 + 15*sec},  // late, within lateness
		{Type: event.QuestStarted, UserID: "u0", DeviceID: "d0", QuestID: "q", EventTime: t0 + 25*sec},  // late: 4 user-pane entries, 3 users
		{Type: event.QuestStarted, UserID: "x", DeviceID: "dx", QuestID: "q", EventTime: t0 + 30*minute},
	}
	run := func(flushAt map[int]bool) rpTables {
		p, err := bots.New(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		wmk := window.NewWatermark(20 * time.Second)
		tb := rpTables{}
		keep := func(rows []bots.Row) {
			for _, r := range rows {
				tb.put("bot_signals/device", fmt.Sprint(r.EntityID, "|", dtSec(r.Start)), r.Version, r)
			}
		}
		for i := range evs {
			p.Add(&evs[i], wmk.Observe(evs[i].EventTime))
			if flushAt[i] {
				keep(p.Flush(wmk.Time()))
			}
		}
		keep(p.Flush(wmk.Time()))
		return tb
	}
	rpShowDiff(t, run(nil), run(map[int]bool{2: true}))
}

// TestCleanPassBeforeBotFlags: an event bots does not count (auction_won)
// moves the partition's watermark past the clean lag; until session 15 it
// did not advance the bots engine, so the clean pass took u's completion
// before u's bot window had its final emission, and u was left out of the
// clean scope only if a Flush had emitted that window earlier (helper-46).
func TestCleanPassBeforeBotFlags(t *testing.T) {
	cfg := testConfig()
	log := []event.Event{
		// 52 s for a quest (minimum 60 s): impossible_quest flags u.
		{ID: "c", Type: event.QuestCompleted, UserID: "u", QuestID: "q0", DurationMs: 52_085, Has: event.HasDurationMs, EventTime: t0 + 27*sec},
		{ID: "s", Type: event.QuestStarted, UserID: "v", QuestID: "q1", EventTime: t0 + 146*sec},
		{ID: "w", Type: event.AuctionWon, UserID: "x", AuctionID: "a", BidderID: "b", ClearingMicros: 1, Has: event.HasClearingMicros, EventTime: t0 + 3205*sec},
	}
	once := rpCase(t, cfg, log, nil)
	rpShowDiff(t, once, rpCase(t, cfg, log, map[int]bool{1: true}))
	for id, r := range once["quest_completion"] {
		if strings.HasPrefix(id, "clean|q0|") && !strings.Contains(r.content, `"Completions":0`) {
			t.Errorf("quest_completion %s: %s; u is flagged, its completion is not clean", id, r.content)
		}
	}
}
