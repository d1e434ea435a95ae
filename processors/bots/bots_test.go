package bots

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/catalog"
	"github.com/questline/questline/processors/internal/streamgen"
	"github.com/questline/questline/processors/window"
)

const (
	sec = int64(1000)
	t0  = int64(1767225600000)
)

func TestHandComputed(t *testing.T) {
	cat := catalog.New()
	cat.Apply(&event.Event{ID: "qd", Type: event.QuestDefined, QuestID: "easy", MinDurationMs: 5000, EventTime: 1})
	var evs []event.Event
	add := func(e event.Event) { evs = append(evs, e) }
	for i := range int64(25) { // metronome + velocity
		add(event.Event{Type: event.DropViewed, UserID: "bot1", DeviceID: "dbot", EventTime: t0 + i*2*sec})
	}
	add(event.Event{Type: event.DropViewed, UserID: "h1", DeviceID: "dh", Country: "DE", EdgeCountry: "FR", EventTime: t0 + 5*sec})
	// A traveller: every event declares DE on a French network.
	for _, dt := range []int64{10, 40, 180} {
		add(event.Event{Type: event.QuestStarted, UserID: "tr", DeviceID: "dtr", Country: "DE", EdgeCountry: "FR", EventTime: t0 + dt*sec})
	}
	// A spoofer: its declared country changes within GeoHop (the earlier
	// event is before the window at t0, within 10 min of the later one).
	add(event.Event{Type: event.QuestStarted, UserID: "g1", DeviceID: "dg", Country: "VN", EdgeCountry: "FR", EventTime: t0 - 5*60*sec})
	add(event.Event{Type: event.QuestCompleted, UserID: "g1", DeviceID: "dg", Country: "NG", EdgeCountry: "FR", EventTime: t0 + 20*sec})
	add(event.Event{Type: event.QuestCompleted, UserID: "q1", QuestID: "hard", DurationMs: 10_000, Has: event.HasDurationMs, EventTime: t0 + 6*sec})
	add(event.Event{Type: event.QuestCompleted, UserID: "q2", QuestID: "easy", DurationMs: 10_000, Has: event.HasDurationMs, EventTime: t0 + 6*sec})
	for i, u := range []string{"a", "b", "c", "d"} {
		add(event.Event{Type: event.DropViewed, UserID: u, DeviceID: "d0", EventTime: t0 + int64(i)*sec})
	}
	for i := range int64(5) {
		add(event.Event{Type: event.DropClaimed, UserID: "c1", DeviceID: "dc", EventTime: t0 + 30*sec + i})
	}
	slices.SortFunc(evs, func(a, b event.Event) int { return int(a.EventTime - b.EventTime) })

	run := func(entity string) map[string]string {
		cfg := DefaultConfig()
		cfg.Entity = entity
		cfg.Velocity = 20
		flags := NewFlags(cfg.Window)
		p, err := New(cfg, cat, flags)
		if err != nil {
			t.Fatal(err)
		}
		wmk := window.NewWatermark(0)
		for i := range evs {
			p.Add(&evs[i], wmk.Observe(evs[i].EventTime))
		}
		p.Advance(t0 + time.Hour.Milliseconds())
		got := map[string]string{}
		for _, r := range p.Flush(t0 + time.Hour.Milliseconds()) {
			if r.Start != t0 {
				continue
			}
			got[r.EntityID] = fmt.Sprintf("n=%d score=%.2f flagged=%v %s", r.Events, r.Score, r.Flagged, strings.Join(r.Reasons(), ","))
			if r.Flagged != flags.Flagged(r.EntityID, r.Start) {
				t.Errorf("flag store disagrees for %s", r.EntityID)
			}
		}
		return got
	}
	users := run(EntityUser)
	want := map[string]string{
		"bot1": "n=25 score=0.88 flagged=true velocity,metronome",
		"h1":   "n=1 score=0.30 flagged=false geo_mismatch",
		"tr":   "n=2 score=0.30 flagged=false geo_mismatch",
		"g1":   "n=1 score=0.72 flagged=true geo_mismatch,country_hopping",
		"q1":   "n=1 score=0.80 flagged=true impossible_quest",
		"c1":   "n=5 score=0.60 flagged=true claim_burst",
	}
	if fmt.Sprint(users) != fmt.Sprint(want) {
		t.Fatalf("users:\n%v\nwant\n%v", users, want)
	}
	devices := run(EntityDevice)
	if devices["d0"] != "n=4 score=0.25 flagged=false shared_device" {
		t.Fatalf("devices: %v", devices)
	}
	if devices["dbot"] != "n=25 score=0.88 flagged=true velocity,metronome" {
		t.Fatalf("devices: %v", devices)
	}
}

func TestFlagsFilter(t *testing.T) {
	bot := window.Spec{Size: time.Minute, Slide: 10 * time.Second}
	f := NewFlags(bot)
	// Flagged in the bot window [100 s, 160 s).
	f.set("u", 100*sec, true)
	spec := window.Spec{Size: 5 * time.Minute, Slide: time.Minute} // windows of t = 200 s start at -60 … 180 s
	r := f.Filter("u", 200*sec, spec)
	// W=[s, s+300 s) overlaps [100,160) iff -200 < s < 160: s ∈ {-60,…,120} excluded, 180 left.
	if r.Lo != 160*sec || r.Hi != 180*sec {
		t.Fatalf("range %+v", r)
	}
	if got := f.Filter("v", 200*sec, spec); got != window.Every {
		t.Fatalf("unflagged user: %+v", got)
	}
	// A flag far after t excludes the late starts only.
	f.set("w", 400*sec, true) // excludes 100 < s < 460
	if r := f.Filter("w", 200*sec, spec); r.Lo != -60*sec || r.Hi != 100*sec {
		t.Fatalf("range %+v", r)
	}
	f.set("w", 400*sec, false)
	if f.Len() != 1 {
		t.Fatalf("len %d", f.Len())
	}
	f.Prune(161 * sec)
	if f.Len() != 0 {
		t.Fatal("prune kept an old flag")
	}
}

// TestStreamingEqualsBatch: random streams (geo-mismatched events declare
// one of three countries, so country_hopping comes and goes) with disorder
// within the watermark bound and up to bound + allowed lateness give the
// batch rows.
func TestStreamingEqualsBatch(t *testing.T) {
	hops, geoOnly := 0, 0
	for _, entity := range []string{EntityUser, EntityDevice} {
		cfg := DefaultConfig()
		cfg.Entity = entity
		cfg.Velocity, cfg.ClaimBurst, cfg.MetronomeEvents, cfg.MetronomeCV = 6, 2, 4, 0.6
		for seed := range uint64(8) {
			bound := 20 * sec
			disorder := bound
			if seed%2 == 1 {
				disorder = bound + cfg.Window.Lateness.Milliseconds()
			}
			// Dense streams, and sparse ones in which a late partner's
			// window is rarely re-emitted by other events.
			sc := streamgen.Config{Seed: seed, Events: 3000, Disorder: disorder, Gap: 300, Users: 12}
			cfg.GeoHop = 40 * time.Second
			if seed >= 4 {
				sc.Gap, sc.Users, cfg.GeoHop = 20000, 8, 5*time.Minute
			}
			events := streamgen.Generate(sc)
			countries := []string{"DE", "IT", "PL"}
			for i := range events {
				e := &events[i]
				if seed >= 4 && i%3 == 0 {
					e.EdgeCountry = "US"
				}
				if geoMismatch(e) {
					e.Country = countries[(i*7+int(seed))%len(countries)]
				}
			}
			want := Batch(cfg, nil, events)
			if len(want) < 50 {
				t.Fatalf("only %d signal rows: a weak test", len(want))
			}
			for _, r := range want {
				switch {
				case r.Signals&(1<<CountryHopping) != 0:
					hops++
				case r.Signals&(1<<GeoMismatch) != 0:
					geoOnly++
				}
			}
			p, err := New(cfg, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			wmk := window.NewWatermark(time.Duration(bound) * time.Millisecond)
			latest := map[[2]any]Row{}
			keep := func(rows []Row) {
				for _, r := range rows {
					latest[[2]any{r.Start, r.EntityID}] = r
				}
			}
			for i := range events {
				wm := wmk.Observe(events[i].EventTime)
				if missed := p.Add(&events[i], wm); missed != 0 {
					t.Fatal("late within the allowed lateness")
				}
				if i%17 == 0 {
					keep(p.Flush(wm))
				}
			}
			p.Advance(wmk.Max() + 1e9)
			keep(p.Flush(wmk.Max() + 1e9))
			var got []Row
			for _, r := range latest {
				if r.Score > 0 {
					r.Version = 0
					got = append(got, r)
				}
			}
			slices.SortFunc(got, compareRows)
			if !reflect.DeepEqual(got, want) {
				for i := 0; i < len(got) && i < len(want); i++ {
					if !reflect.DeepEqual(got[i], want[i]) {
						t.Logf("first difference:\n%+v\nwant\n%+v", got[i], want[i])
						break
					}
				}
				t.Fatalf("%s seed %d: %d rows, want %d", entity, seed, len(got), len(want))
			}
			if len(p.geo) != 0 {
				t.Fatalf("%s seed %d: geo state of %d entities left", entity, seed, len(p.geo))
			}
		}
	}
	if hops < 50 || geoOnly < 50 {
		t.Fatalf("weak test: %d rows with country_hopping, %d with geo_mismatch alone", hops, geoOnly)
	}
	t.Logf("%d rows with country_hopping, %d with geo_mismatch alone", hops, geoOnly)
}

// TestCountryHoppingLatePartner: an earlier partner of a geo-mismatched
// event that arrives after the event's window was emitted, within the
// allowed lateness, re-emits that window with country_hopping and sets the
// flag, though the partner is in other windows; the partner's own windows
// do not get the signal (it goes to the later event of a pair), and a
// partner beyond GeoHop does not count.
func TestCountryHoppingLatePartner(t *testing.T) {
	cfg := DefaultConfig()
	cfg.GeoHop = 2 * time.Minute
	cfg.Window.UpdateEvery = 0 // the update at the next flush
	flags := NewFlags(cfg.Window)
	p, err := New(cfg, nil, flags)
	if err != nil {
		t.Fatal(err)
	}
	wmk := window.NewWatermark(10 * time.Second)
	rows := map[string]Row{}
	add := func(user, country string, at int64) {
		t.Helper()
		e := event.Event{Type: event.QuestStarted, UserID: user, Country: country, EdgeCountry: "FR", EventTime: at}
		if missed := p.Add(&e, wmk.Observe(at)); missed != 0 {
			t.Fatalf("%s at %d: late", user, at)
		}
		for _, r := range p.Flush(wmk.Time()) {
			rows[fmt.Sprint(r.EntityID, "@", (r.Start-t0)/sec)] = r
		}
	}
	add("g", "NG", t0+50*sec)
	add("far", "NG", t0+50*sec)
	add("x", "FR", t0+3*60*sec) // watermark 2:50: the windows of 0:50 are emitted
	if r := rows["g@0"]; r.Score != Score(1<<GeoMismatch) || r.Flagged || flags.Flagged("g", t0) {
		t.Fatalf("before the partner: %+v", r)
	}
	v := rows["g@0"].Version
	add("g", "VN", t0-30*sec)   // 80 s earlier, arriving 200 s behind the watermark
	add("far", "VN", t0-71*sec) // 121 s earlier: beyond GeoHop
	r := rows["g@0"]
	if r.Signals != 1<<GeoMismatch|1<<CountryHopping || !r.Flagged || r.Version <= v || !flags.Flagged("g", t0) {
		t.Fatalf("after the partner: %+v", r)
	}
	if r := rows["g@-30"]; r.Signals != 1<<GeoMismatch || r.Flagged {
		t.Fatalf("the partner's own window: %+v", r)
	}
	if r := rows["far@0"]; r.Signals != 1<<GeoMismatch || r.Flagged {
		t.Fatalf("partner beyond GeoHop: %+v", r)
	}
}

// TestUpdatedWindowZeroRows: when a window is emitted again, an entity
// whose score went down to zero gets a zero row over its old one, and an
// entity that never had a signal gets no row at all.
func TestUpdatedWindowZeroRows(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Window.UpdateEvery = 0 // the update at the next flush
	p, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	wmk := window.NewWatermark(10 * time.Second)
	rows := map[string]Row{}
	add := func(user string, at int64) {
		t.Helper()
		e := event.Event{Type: event.QuestStarted, UserID: user, EventTime: at}
		p.Add(&e, wmk.Observe(at))
		for _, r := range p.Flush(wmk.Time()) {
			rows[fmt.Sprint(r.EntityID, "@", (r.Start-t0)/sec)] = r
		}
	}
	for i := range int64(20) { // every 2 s: metronome
		add("tick", t0+i*2*sec)
	}
	add("quiet", t0+5*sec)
	add("x", t0+3*60*sec) // the watermark passes the windows of [t0, t0+40 s)
	if r, ok := rows["tick@0"]; !ok || r.Signals != 1<<Metronome {
		t.Fatalf("metronome row before the late event: %+v", r)
	}
	if r, ok := rows["quiet@0"]; ok {
		t.Fatalf("a row for an entity without signals: %+v", r)
	}
	add("tick", t0+sec)    // late, within lateness: breaks the rhythm
	add("quiet", t0+7*sec) // late: the window is emitted again
	if r := rows["tick@0"]; r.Score != 0 || r.Signals != 0 {
		t.Fatalf("after the late event, tick's window row is %+v, want a zero row", r)
	}
	if r, ok := rows["quiet@0"]; ok {
		t.Fatalf("a zero row for an entity that never had a signal: %+v", r)
	}
}

// TestThresholdRefused: New refuses a threshold outside (0, 1]; a zero
// Config's 0 would flag every entity with a signal.
func TestThresholdRefused(t *testing.T) {
	for _, th := range []float64{0, -0.1, 1.01, math.NaN()} {
		cfg := DefaultConfig()
		cfg.Threshold = th
		if _, err := New(cfg, catalog.New(), nil); err == nil {
			t.Errorf("threshold %v accepted", th)
		}
	}
	cfg := DefaultConfig()
	cfg.Threshold = 1
	if _, err := New(cfg, catalog.New(), nil); err != nil {
		t.Errorf("threshold 1: %v", err)
	}
}

// TestHumansNotFlagged: what people do that once flagged them (helper-39's
// review, session 14), each beside the bot it must still catch.
func TestHumansNotFlagged(t *testing.T) {
	var evs []event.Event
	add := func(e event.Event) { evs = append(evs, e) }
	// A reader shown an offer every 5 s, 8 bidders answering each: 12
	// auctions × (bid_request, 8 bids, auction_won, offer_shown, billed)
	// is 144 events with the user's id, 24 of them the reader's own.
	for i := range int64(12) {
		at := t0 + i*5*sec
		add(event.Event{Type: event.BidRequest, UserID: "reader", DeviceID: "dr", EventTime: at})
		for b := range int64(8) {
			add(event.Event{Type: event.Bid, UserID: "reader", EventTime: at + 10 + b})
		}
		add(event.Event{Type: event.AuctionWon, UserID: "reader", EventTime: at + 30})
		add(event.Event{Type: event.OfferShown, UserID: "reader", DeviceID: "dr", EventTime: at + 40})
		add(event.Event{Type: event.Billed, UserID: "reader", EventTime: at + 50})
	}
	// A fan taps claim four times before the drop is live, then gets it;
	// a claimer of a sold-out drop likewise; a bot is rate limited.
	for i := range int64(4) {
		add(event.Event{Type: event.ClaimRejected, UserID: "fan", DeviceID: "df", Reason: "not_live", EventTime: t0 + i*sec})
		add(event.Event{Type: event.ClaimRejected, UserID: "late", DeviceID: "dl", Reason: "sold_out", EventTime: t0 + i*sec})
		add(event.Event{Type: event.ClaimRejected, UserID: "burst", DeviceID: "db", Reason: "rate_limited", EventTime: t0 + i*sec})
	}
	add(event.Event{Type: event.DropClaimed, UserID: "fan", DeviceID: "df", EventTime: t0 + 5*sec})
	add(event.Event{Type: event.DropClaimed, UserID: "late", DeviceID: "dl", EventTime: t0 + 5*sec})
	add(event.Event{Type: event.DropClaimed, UserID: "burst", DeviceID: "db", EventTime: t0 + 5*sec})
	// A family of four on one tablet abroad (declared DE, network ES),
	// and a farm of four accounts on one phone, abroad too, taking turns
	// every 2 s (metronome).
	for i, u := range []string{"mum", "dad", "kid1", "kid2"} {
		add(event.Event{Type: event.QuestStarted, UserID: u, DeviceID: "tablet", Country: "DE", EdgeCountry: "ES", EventTime: t0 + int64(i)*7*sec})
	}
	for i := range int64(24) {
		add(event.Event{Type: event.QuestStarted, UserID: fmt.Sprint("farm", i%4), DeviceID: "phone", Country: "DE", EdgeCountry: "ES", EventTime: t0 + i*2*sec})
	}
	slices.SortFunc(evs, func(a, b event.Event) int { return int(a.EventTime - b.EventTime) })
	run := func(entity string) map[string]string {
		cfg := DefaultConfig()
		cfg.Entity = entity
		p, err := New(cfg, catalog.New(), NewFlags(cfg.Window))
		if err != nil {
			t.Fatal(err)
		}
		wmk := window.NewWatermark(0)
		for i := range evs {
			p.Add(&evs[i], wmk.Observe(evs[i].EventTime))
		}
		end := t0 + time.Hour.Milliseconds()
		p.Advance(end)
		got := map[string]string{}
		for _, r := range p.Flush(end) {
			if r.Start == t0 {
				got[r.EntityID] = fmt.Sprintf("n=%d score=%.3f flagged=%v %s", r.Events, r.Score, r.Flagged, strings.Join(r.Reasons(), ","))
			}
		}
		if b := Batch(cfg, catalog.New(), evs); len(b) == 0 {
			t.Fatalf("%s: the batch definition has no rows", entity)
		}
		return got
	}
	users := run(EntityUser)
	for id, want := range map[string]string{
		"reader": "n=24 score=0.000 flagged=false ", // 24 own events: no signal; a zero row, as metronome could have had 20 of them (TestMetronomeZeroRowAfterReplay)
		"fan":    "",
		"late":   "",
		"burst":  "n=5 score=0.600 flagged=true claim_burst",
		"mum":    "n=1 score=0.300 flagged=false geo_mismatch",
	} {
		if users[id] != want {
			t.Errorf("user %s: %q, want %q", id, users[id], want)
		}
	}
	devices := run(EntityDevice)
	for id, want := range map[string]string{
		"tablet": "n=4 score=0.475 flagged=false shared_device,geo_mismatch",
		"phone":  "n=24 score=0.843 flagged=true metronome,shared_device,geo_mismatch",
		"db":     "n=5 score=0.600 flagged=true claim_burst",
		"df":     "",
	} {
		if devices[id] != want {
			t.Errorf("device %s: %q, want %q", id, devices[id], want)
		}
	}
}

// TestDeviceGeoPartnerRange: in the device stage an event reaches the
// windows open at its source only (AddRange's Lo), as a country_hopping
// partner too. Source A forwards x (NG, Lo t0−40 s); source B, behind,
// forwards y (VN, 5 s later, Lo t0−50 s). Whether B's watermark passes the
// window at t0−50 s before x arrives must not change its row: x cannot
// reach it, so that window has geo_mismatch only, and the window at
// t0−40 s, which both reach, has country_hopping. Before session 14 the
// first order gave the window at t0−50 s country_hopping (helper-39).
func TestDeviceGeoPartnerRange(t *testing.T) {
	x := event.Event{Type: event.QuestStarted, UserID: "ua", DeviceID: "farm", Country: "NG", EdgeCountry: "FR", EventTime: t0}
	y := event.Event{Type: event.QuestStarted, UserID: "ub", DeviceID: "farm", Country: "VN", EdgeCountry: "FR", EventTime: t0 + 5*sec}
	run := func(bFirst bool) map[int64]string {
		cfg := DefaultConfig()
		cfg.Entity = EntityDevice
		p, err := New(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		src := map[string]int64{"A": t0 + 615*sec, "B": t0 - 60*sec}
		wm := func() int64 { return min(src["A"], src["B"]) }
		p.AddRange(&y, wm(), window.Range{Lo: t0 - 50*sec, Hi: math.MaxInt64})
		if bFirst { // B's watermark closes the window at t0−50 s before x comes
			src["B"] = t0 + 700*sec
			p.Advance(wm())
		}
		p.AddRange(&x, wm(), window.Range{Lo: t0 - 40*sec, Hi: math.MaxInt64})
		src["B"] = t0 + time.Hour.Milliseconds()
		p.Advance(wm())
		rows := map[int64]string{}
		for _, r := range p.Flush(wm()) {
			rows[r.Start] = fmt.Sprintf("n=%d score=%.2f %s", r.Events, r.Score, strings.Join(r.Reasons(), ","))
		}
		return rows
	}
	a, b := run(false), run(true)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("rows depend on the interleaving:\n%v\n%v", a, b)
	}
	if got, want := a[t0-50*sec], "n=1 score=0.30 geo_mismatch"; got != want {
		t.Errorf("window t0−50 s: %q, want %q", got, want)
	}
	if got, want := a[t0-40*sec], "n=2 score=0.72 geo_mismatch,country_hopping"; got != want {
		t.Errorf("window t0−40 s: %q, want %q", got, want)
	}
}

// TestMetronomePairs: events sent in pairs at the same millisecond, a
// pair every 2 s, are a metronome: the gaps are between distinct times
// (with the zero gaps counted, the coefficient of variation was 1 and the
// cadence hid: helper-39). Thirty events at one instant are not.
func TestMetronomePairs(t *testing.T) {
	var pairs, burst []event.Event
	for i := range int64(30) {
		at := t0 + i*2*sec
		pairs = append(pairs,
			event.Event{Type: event.QuestStarted, UserID: "pairs", EventTime: at},
			event.Event{Type: event.QuestAbandoned, UserID: "pairs", EventTime: at})
		burst = append(burst, event.Event{Type: event.QuestStarted, UserID: "burst", EventTime: t0})
	}
	for _, c := range []struct {
		evs  []event.Event
		want bool
	}{{pairs, true}, {burst, false}} {
		got := false
		for _, r := range Batch(DefaultConfig(), catalog.New(), c.evs) {
			got = got || r.Signals&(1<<Metronome) != 0
		}
		if got != c.want {
			t.Errorf("%s: metronome %v, want %v", c.evs[0].UserID, got, c.want)
		}
	}
}

// TestMetronomeZeroRowAfterReplay is TestUpdatedWindowZeroRows across a
// crash: a process writes tick's metronome row and dies before the late
// event that breaks the rhythm; its successor starts from the snapshot
// before them all and takes every record in one flush, so it never
// emitted the window. tick's row must still become a zero row.
func TestMetronomeZeroRowAfterReplay(t *testing.T) {
	cfg := DefaultConfig()
	var evs []event.Event
	for i := range int64(20) { // every 2 s: metronome
		evs = append(evs, event.Event{Type: event.QuestStarted, UserID: "tick", EventTime: t0 + i*2*sec})
	}
	evs = append(evs,
		event.Event{Type: event.QuestStarted, UserID: "x", EventTime: t0 + 3*60*sec}, // the watermark passes tick's windows
		event.Event{Type: event.QuestStarted, UserID: "tick", EventTime: t0 + sec},   // late, within lateness: breaks the rhythm
		event.Event{Type: event.QuestStarted, UserID: "x", EventTime: t0 + 30*60*sec},
	)
	wmk := window.NewWatermark(10 * time.Second)
	wms := make([]int64, len(evs))
	for i := range evs {
		wms[i] = wmk.Observe(evs[i].EventTime)
	}
	rows := map[string]Row{} // what ReplacingMergeTree(version) FINAL keeps
	keep := func(rs []Row) {
		for _, r := range rs {
			k := fmt.Sprint(r.EntityID, "@", (r.Start-t0)/sec)
			if o, ok := rows[k]; !ok || r.Version >= o.Version {
				rows[k] = r
			}
		}
	}
	first, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 21 {
		first.Add(&evs[i], wms[i])
		keep(first.Flush(wms[i]))
	}
	if r := rows["tick@0"]; r.Signals != 1<<Metronome {
		t.Fatalf("the first process's row: %+v, want metronome", r)
	}
	successor, _ := New(cfg, nil, nil)
	for i := range evs {
		successor.Add(&evs[i], wms[i])
	}
	keep(successor.Flush(wms[len(wms)-1]))
	for k, r := range rows {
		if strings.HasPrefix(k, "tick@") && r.Score != 0 {
			t.Errorf("%s after the replay: %+v, want a zero row", k, r)
		}
	}
}
