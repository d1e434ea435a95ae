package loadgen

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/questline/questline/event"
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

// TestBotsSeparable checks that every planted bot kind shows its signal
// and that no human comes near any of them: the premise of "bot recall
// ≥ 0.9 with no human flagged".
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
	type uev struct {
		t   int64
		e   *event.Event
		b   *Batch
		raw int
	}
	byUser := map[string][]uev{}
	devUsers := map[string]map[string]bool{}
	minDur := map[string]int64{}
	for i := range ss {
		b := &ss[i].b
		for j := range b.Events {
			e := &b.Events[j]
			if e.Type == event.QuestDefined {
				minDur[e.QuestID] = e.MinDurationMs
			}
			if e.UserID == "" {
				continue
			}
			byUser[e.UserID] = append(byUser[e.UserID], uev{t: b.TrueTime(j), e: e, b: b})
			if e.DeviceID != "" {
				if devUsers[e.DeviceID] == nil {
					devUsers[e.DeviceID] = map[string]bool{}
				}
				devUsers[e.DeviceID][e.UserID] = true
			}
		}
	}
	// Per-user features.
	maxPerMin := map[string]int{}  // most events in a 60 s window
	sameGaps := map[string]int{}   // longest run of equal gaps (events)
	claimBurst := map[string]int{} // most claims in a 30 s window
	fastDone := map[string]bool{}  // a completion under the quest minimum
	geoOff := map[string]bool{}    // declared country ≠ edge country
	geoHop := map[string]bool{}    // mismatching events declaring two different countries
	for u, evs := range byUser {
		slices.SortStableFunc(evs, func(a, b uev) int { return int(a.t - b.t) })
		j := 0
		for i := range evs {
			for evs[i].t-evs[j].t >= 60000 {
				j++
			}
			maxPerMin[u] = max(maxPerMin[u], i-j+1)
		}
		run := 1
		for i := 2; i < len(evs); i++ {
			if g := evs[i].t - evs[i-1].t; g > 0 && g == evs[i-1].t-evs[i-2].t {
				run++
				sameGaps[u] = max(sameGaps[u], run+1)
			} else {
				run = 1
			}
		}
		var claims []int64
		offCountry := ""
		for _, x := range evs {
			switch x.e.Type {
			case event.DropClaimed, event.ClaimRejected:
				claims = append(claims, x.t)
			case event.QuestCompleted:
				if x.e.Has&event.HasDurationMs != 0 && x.e.DurationMs < minDur[x.e.QuestID] {
					fastDone[u] = true
				}
			}
			if !x.b.Server && x.e.Country != x.b.EdgeCountry {
				geoOff[u] = true
				if offCountry != "" && offCountry != x.e.Country {
					geoHop[u] = true
				}
				offCountry = x.e.Country
			}
		}
		j = 0
		for i := range claims {
			for claims[i]-claims[j] >= 30000 {
				j++
			}
			claimBurst[u] = max(claimBurst[u], i-j+1)
		}
	}
	// Device farms: the device's events keep exactly constant gaps.
	devGaps := map[string]int{} // user → longest equal-gap run of its device
	byDevice := map[string][]int64{}
	devOf := map[string]string{}
	for _, s := range ss {
		for i, e := range s.b.Events {
			if k := kind[e.UserID]; k == "shared_device" || k == "partial:shared_device" {
				byDevice[e.DeviceID] = append(byDevice[e.DeviceID], s.b.TrueTime(i))
				devOf[e.UserID] = e.DeviceID
			}
		}
	}
	for d, ts := range byDevice {
		slices.Sort(ts)
		run, best := 1, 0
		for i := 2; i < len(ts); i++ {
			if g := ts[i] - ts[i-1]; g > 0 && g == ts[i-1]-ts[i-2] {
				run++
				best = max(best, run+1)
			} else {
				run = 1
			}
		}
		for u := range devUsers[d] {
			devGaps[u] = best
		}
	}
	maxUsersOnDevice := map[string]int{}
	for _, us := range devUsers {
		for u := range us {
			maxUsersOnDevice[u] = max(maxUsersOnDevice[u], len(us))
		}
	}
	var humanMaxPerMin, humanMaxGaps, humanMaxClaims, humanMaxShared int
	for u := range byUser {
		k := kind[u]
		if k == "" {
			humanMaxPerMin = max(humanMaxPerMin, maxPerMin[u])
			humanMaxGaps = max(humanMaxGaps, sameGaps[u])
			humanMaxClaims = max(humanMaxClaims, claimBurst[u])
			humanMaxShared = max(humanMaxShared, maxUsersOnDevice[u])
			// Travellers mismatch on every event, but always declare one
			// country: only bots hop.
			if fastDone[u] || geoHop[u] {
				t.Errorf("human %s: fast completion %v, declared-country hops %v", u, fastDone[u], geoHop[u])
			}
		}
	}
	t.Logf("humans: ≤ %d events/min, ≤ %d equal gaps, ≤ %d claims/30 s, ≤ %d users per device",
		humanMaxPerMin, humanMaxGaps, humanMaxClaims, humanMaxShared)
	if humanMaxShared != 1 {
		t.Errorf("a human device has %d users", humanMaxShared)
	}
	for u := range byUser {
		var ok bool
		if kind[u] == "" || strings.HasPrefix(kind[u], "partial:") {
			continue
		}
		switch kind[u] {
		case "velocity":
			ok = maxPerMin[u] >= 2*humanMaxPerMin && maxPerMin[u] > 120
		case "metronome":
			ok = sameGaps[u] >= 20 && sameGaps[u] > 2*humanMaxGaps
		case "shared_device":
			if !slices.Contains(tr.Planted.Bots["shared_device"].Devices, devOf[u]) {
				continue // another account of the farm was cut by the run's edge
			}
			ok = maxUsersOnDevice[u] >= 6 && devGaps[u] >= 20
		case "claim_burst":
			ok = claimBurst[u] >= 10 && claimBurst[u] > 3*humanMaxClaims
		case "impossible_quest":
			ok = fastDone[u]
		case "geo_mismatch":
			ok = geoHop[u]
		}
		if !ok {
			t.Errorf("%s bot %s shows no signal: %d/min, %d equal gaps (device %d), %d claims, %d users/device, fast %v, geo %v",
				kind[u], u, maxPerMin[u], sameGaps[u], devGaps[u], claimBurst[u], maxUsersOnDevice[u], fastDone[u], geoOff[u])
		}
	}
}
