package loadgen

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/questline/questline/event"
	"github.com/questline/questline/processors/bots"
	"github.com/questline/questline/processors/catalog"
)

// binomialOK reports whether k successes in n trials are within z standard
// deviations of probability p.
func binomialOK(k, n int, p, z float64) bool {
	sd := math.Sqrt(float64(n) * p * (1 - p))
	return math.Abs(float64(k)-float64(n)*p) <= z*sd+1
}

func TestPlantedLatencyDistribution(t *testing.T) {
	tr, _ := mainRun(t)
	draws := slices.Clone(tr.Planted.latencyDraws)
	if len(draws) < 400 {
		t.Fatalf("%d latency draws", len(draws))
	}
	slices.Sort(draws)
	pl := tr.Planted.Latency
	n := float64(len(draws))
	for _, q := range []struct {
		p, z, want float64
	}{{0.5, 0, pl.P50Ms}, {0.9, 1.2815515655446004, pl.P90Ms}, {0.99, 2.3263478740408408, pl.P99Ms}} {
		got := float64(draws[int(math.Ceil(q.p*n))-1])
		// Standard error of a sample quantile, in log space.
		phi := math.Exp(-q.z*q.z/2) / math.Sqrt(2*math.Pi)
		se := pl.Sigma * math.Sqrt(q.p*(1-q.p)/n) / phi
		if d := math.Abs(math.Log(got / q.want)); d > 4*se+0.005 {
			t.Errorf("p%.0f: sampled %.0f ms, planted %.0f ms (log diff %.4f > 4·se %.4f)", q.p*100, got, q.want, d, 4*se)
		}
	}
}

func TestPlantedViolations(t *testing.T) {
	tr, ss := mainRun(t)
	auctions := 0
	for _, s := range ss {
		for _, e := range s.b.Events {
			if e.Type == event.BidRequest {
				auctions++
			}
		}
	}
	total := 0
	for _, k := range ViolationKinds {
		p, e := tr.Planted.Violations[k], tr.Expected.ViolationsByKind[k]
		total += p
		if p < 5 {
			t.Errorf("%s: only %d injected", k, p)
		}
		// Each injection trips exactly its kind and nothing else trips,
		// except auctions cut by the end of the run.
		if e < p-2 || e > p {
			t.Errorf("%s: %d injected, %d expected", k, p, e)
		}
	}
	cfg := testConfig(0)
	if !binomialOK(total, auctions+tr.Planted.Violations[Orphan], cfg.ViolationRate*float64(len(ViolationKinds)), 4) {
		t.Errorf("%d violations in %d auctions, rate %v per kind", total, auctions, cfg.ViolationRate)
	}
}

func TestPlantedLift(t *testing.T) {
	tr, _ := mainRun(t)
	p := tr.Planted.BaseConversion
	realized := map[string]LiftRow{}
	for _, r := range tr.Expected.CreatorLift {
		if r.Scope == "humans" && r.Complete {
			realized[r.DropID] = r
		}
	}
	if len(realized) < 2 {
		t.Fatalf("%d complete drops", len(realized))
	}
	covered := 0
	for _, d := range tr.Planted.Drops {
		r, ok := realized[d.DropID]
		if !ok {
			continue
		}
		// The model's decisions follow the planted probabilities.
		if !binomialOK(d.ConvertsExposed, d.EnrolledExposed, p*(1+d.Lift), 4) || !binomialOK(d.ConvertsControl, d.EnrolledControl, p, 4) {
			t.Errorf("%s: decisions exposed %d/%d control %d/%d, planted p=%v lift=%v",
				d.DropID, d.ConvertsExposed, d.EnrolledExposed, d.ConvertsControl, d.EnrolledControl, p, d.Lift)
		}
		// Exposure is decided on session events only (an enrollment by an
		// auction or payout event is control), so a little under the share.
		if share := float64(d.EnrolledExposed) / float64(d.EnrolledExposed+d.EnrolledControl); share < 0.8*tr.Planted.ExposeShare || share > 1.1*tr.Planted.ExposeShare {
			t.Errorf("%s: %d exposed of %d enrolled", d.DropID, d.EnrolledExposed, d.EnrolledExposed+d.EnrolledControl)
		}
		// What the pipeline can see matches the model's enrollment: the
		// definitions recover the planted experiment (late events, which
		// the pipeline never counts, make the small difference).
		near := func(got, want int) bool { return math.Abs(float64(got-want)) <= 0.03*float64(want)+3 }
		if !near(r.ExposedUsers, d.EnrolledExposed) || !near(r.ControlUsers, d.EnrolledControl) ||
			!near(r.ExposedConverters, d.ConvertsExposed) || !near(r.ControlConverters, d.ConvertsControl) {
			t.Errorf("%s: realized E %d/%d C %d/%d, model E %d/%d C %d/%d", d.DropID,
				r.ExposedConverters, r.ExposedUsers, r.ControlConverters, r.ControlUsers,
				d.ConvertsExposed, d.EnrolledExposed, d.ConvertsControl, d.EnrolledControl)
		}
		if r.LiftCILow != nil && *r.LiftCILow <= d.Lift && d.Lift <= *r.LiftCIHigh {
			covered++
		}
		t.Logf("%s: planted lift %.3f, realized %.3f [%.3f, %.3f]", d.DropID, d.Lift, deref(r.Lift), deref(r.LiftCILow), deref(r.LiftCIHigh))
	}
	if covered*2 < len(realized) {
		t.Errorf("the planted lift is inside the 95 %% interval of only %d of %d drops", covered, len(realized))
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func TestPlantedClocks(t *testing.T) {
	tr, ss := mainRun(t)
	c := tr.Planted.Clocks
	n := c["synced"] + c["ntp"] + c["sent_at"]
	cfg := testConfig(0)
	if !binomialOK(c["ntp"], n, cfg.NTPShare, 4) || !binomialOK(c["sent_at"], n, cfg.SentAtSkewShare, 4) ||
		!binomialOK(c["offline_short"]+c["offline_long"], n, cfg.OfflineShare, 4) {
		t.Errorf("clock populations %v", c)
	}
	seen := map[ClockMode]bool{}
	for _, s := range ss {
		if !s.b.Server {
			seen[s.b.Clock] = true
		}
	}
	if len(seen) != 3 {
		t.Errorf("batches from clock modes %v, want all three", seen)
	}
}

// TestBotsSeparable: by SPEC §5's bot signals as questline defines them
// (bots.Batch over every event, users and devices, with the catalog),
// every complete planted bot is flagged (a farm's device for
// shared_device) and no human is, nor a device only humans use: the
// premise of "bot recall ≥ 0.9 with no human flagged". Since session 14
// the bots are near their thresholds and some humans come near them (fans
// tapping again after a refused claim, fast players, families of up to 4
// on one tablet, some abroad), and the test checks those humans are in
// the run; before, every bot was far past its signal and every human far
// from all (helper-39: a detector tuned 4× looser or tighter still
// passed), and the test checked features of its own.
func TestBotsSeparable(t *testing.T) {
	tr, ss := mainRun(t)
	kind := map[string]string{}
	for k, b := range tr.Planted.Bots {
		if len(b.Users) < 3 {
			t.Errorf("%s: %d bots", k, len(b.Users))
		}
		for _, u := range b.Users {
			kind[u] = k
		}
		for _, u := range b.Partial {
			kind[u] = "partial:" + k // cut by the run's start or end: not judged
		}
	}
	cat := catalog.New()
	var evs []event.Event
	devUsers := map[string]map[string]bool{}
	for i := range ss {
		b := &ss[i].b
		for j := range b.Events {
			e := b.Events[j]
			if e.Type == event.QuestDefined {
				cat.Apply(&e)
			}
			if e.UserID == "" {
				continue
			}
			e.EventTime = b.TrueTime(j)
			if !b.Server {
				e.EdgeCountry = b.EdgeCountry
			}
			evs = append(evs, e)
			if e.DeviceID != "" {
				if devUsers[e.DeviceID] == nil {
					devUsers[e.DeviceID] = map[string]bool{}
				}
				devUsers[e.DeviceID][e.UserID] = true
			}
		}
	}
	sharedAbroad := map[string]bool{} // devices with a window of shared_device and geo_mismatch
	flagged := func(entity string) map[string]string {
		cfg := bots.DefaultConfig()
		cfg.Entity = entity
		out := map[string]string{}
		for _, r := range bots.Batch(cfg, cat, evs) {
			if r.Flagged {
				out[r.EntityID] = strings.Join(r.Reasons(), ",")
			}
			if want := uint8(1<<bots.SharedDevice | 1<<bots.GeoMismatch); r.Signals&want == want {
				sharedAbroad[r.EntityID] = true
			}
		}
		return out
	}
	users, devices := flagged(bots.EntityUser), flagged(bots.EntityDevice)
	for u, why := range users {
		if kind[u] == "" {
			t.Errorf("human %s flagged: %s", u, why)
		}
	}
	families, abroad := 0, 0
	for d, us := range devUsers {
		humans := 0
		for u := range us {
			if kind[u] == "" {
				humans++
			}
		}
		if humans == len(us) && devices[d] != "" {
			t.Errorf("device %s of %d humans flagged: %s", d, humans, devices[d])
		}
		if humans == len(us) && humans > 3 {
			families++ // past shared_device's 3 users
			if sharedAbroad[d] {
				abroad++ // four in one window, abroad: 0.475 by the two weak signals
			}
		}
	}
	for k, b := range tr.Planted.Bots {
		caught := 0
		for _, u := range b.Users {
			if users[u] != "" {
				caught++
			}
		}
		if k == "shared_device" {
			caught = 0
			for _, d := range b.Devices {
				if devices[d] != "" {
					caught++
				}
			}
			if caught != len(b.Devices) {
				t.Errorf("shared_device: %d of %d farms flagged", caught, len(b.Devices))
			}
			continue
		}
		if caught != len(b.Users) {
			t.Errorf("%s: %d of %d bots flagged", k, caught, len(b.Users))
		}
	}
	// The humans near the thresholds are there.
	refused := map[string][]int64{} // user → times of claims refused as sold_out or not_live
	fast := 0
	for _, e := range evs {
		if kind[e.UserID] != "" {
			continue
		}
		switch e.Type {
		case event.ClaimRejected:
			if e.Reason == "sold_out" || e.Reason == "not_live" {
				refused[e.UserID] = append(refused[e.UserID], e.EventTime)
			}
		case event.QuestCompleted:
			if m := cat.MinDurationMs(e.QuestID); e.DurationMs >= m && e.DurationMs < m*12/10 {
				fast++
			}
		}
	}
	tappers := 0
	for _, ts := range refused {
		slices.Sort(ts)
		for i := 4; i < len(ts); i++ {
			if ts[i]-ts[i-4] < 60_000 {
				tappers++ // five refusals in a minute: claim_burst's count before session 14
				break
			}
		}
	}
	t.Logf("%d users and %d devices flagged; near a threshold, not flagged: %d tappers (5 refusals a minute), %d fast completions (< 1.2× the minimum), %d family devices of 4 (%d members joined), %d of them abroad with 4 users in a window",
		len(users), len(devices), tappers, fast, families, tr.Planted.FamilyMembers, abroad)
	if tappers == 0 || fast == 0 || families == 0 || abroad == 0 {
		t.Error("the run lacks humans near the thresholds: a weak test")
	}
}
