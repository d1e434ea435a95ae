package loadgen

import (
	"math"
	"strconv"
	"time"
)

// The model's time grid: every event happens on a whole second of true
// time, except conversions, which happen half a second after one. Device
// skews are whole seconds. With a delivery delay under 500 ms, the event
// time ingest derives therefore lies in the same second as the true time
// (exact for server events, synced and NTP devices), so window membership
// and the order of a user's conversion against their other events are
// exactly those of the model. docs/loadgen.md explains why.
const (
	sec      = int64(1000)
	minute   = 60 * sec
	convHalf = 500
)

func ms(d time.Duration) int64 { return d.Milliseconds() }

// quest is a catalog quest.
type quest struct {
	id       string
	minDurMs int64
	maxDurMs int64
}

// drop is a scheduled live drop of a creator.
type drop struct {
	idx       int
	id        string
	creator   string
	start     int64
	end       int64
	inventory int64
	claimed   int64
	lift      float64 // planted
	offerID   string
	// planted enrollment counts (humans, from the model's decisions)
	enrolledExposed, enrolledControl int
	convExposed, convControl         int
}

// bidder is a sponsor's bidder with its planted distributions.
type bidder struct {
	id          string
	bidProb     float64 // P(bid | answered in time, no error)
	errProb     float64
	priceMedian float64 // micros
	priceSigma  float64
	latMedian   float64 // ms
	latSigma    float64
}

// bidTimeoutMs is the exchange's bid deadline: a later answer is a timeout.
const bidTimeoutMs = 150

// user is a human or a bot.
type user struct {
	id      string
	country string
	bot     botKind
	devices []*device
	active  bool // a session is running
	// drop experiment state (humans)
	enrolled   int   // 1 + index of the last drop enrolled in, 0 none
	horizonEnd int64 // end of that drop's conversion horizon
	convGen    int   // bumped to cancel pending quest-driven conversions
}

// family is a device several humans share (up to familyMax).
type family struct {
	dev   *device
	home  string  // the members' declared country
	users []*user // the members, the first the one who opened it
}

// device is a phone or browser.
type device struct {
	id          string
	edgeCountry string
	clock       ClockMode
	skew        int64 // ms, whole seconds
	offline     uint8 // 0 online, 1 short holds, 2 long holds
	flushEvery  int64
	batchSize   int
	buf         *buffer
	family      *family // a device a family shares, else nil
}

// botKind is a planted bot population.
type botKind uint8

const (
	human botKind = iota
	botImpossibleQuest
	botVelocity
	botMetronome
	botSharedDevice
	botClaimBurst
	botGeoMismatch
	numBotKinds
)

var botKindNames = [numBotKinds]string{"human", "impossible_quest", "velocity", "metronome", "shared_device", "claim_burst", "geo_mismatch"}

func (k botKind) String() string { return botKindNames[k] }

var countries = []string{"US", "US", "US", "GB", "DE", "FR", "BR", "IN", "JP", "CA", "ES", "IT"}

var placements = []string{"feed", "quest_end", "drop_live"}

// newWorld builds the catalog: quests, creators, bidders.
func (g *gen) newWorld() {
	c := &g.cfg
	for i := 0; i < c.Quests; i++ {
		minDur := (60 + g.rng.Int64N(91)) * sec // 60–150 s
		g.quests = append(g.quests, &quest{
			id:       "q." + g.tag + "." + strconv.Itoa(i),
			minDurMs: minDur,
			maxDurMs: 15 * minute,
		})
	}
	for i := 0; i < c.Creators; i++ {
		g.creators = append(g.creators, "cr."+g.tag+"."+strconv.Itoa(i))
	}
	for i := 0; i < c.Bidders; i++ {
		g.bidders = append(g.bidders, &bidder{
			id:          "bidder." + strconv.Itoa(i),
			bidProb:     0.55 + 0.3*g.rng.Float64(),
			errProb:     0.01,
			priceMedian: 0.8e6 + 2.2e6*g.rng.Float64(),
			priceSigma:  0.3 + 0.3*g.rng.Float64(),
			latMedian:   35 + 45*g.rng.Float64(),
			latSigma:    0.35 + 0.2*g.rng.Float64(),
		})
	}
}

// dropAt returns the k-th drop, creating the schedule up to it.
func (g *gen) dropAt(k int) *drop {
	for len(g.drops) <= k {
		i := len(g.drops)
		start := g.origin + ms(g.cfg.FirstDrop) + int64(i)*ms(g.cfg.DropEvery)
		// Drops start and end a quarter second past a whole second, so no
		// user event (whole seconds) or conversion (half seconds) ever sits
		// on a live-window boundary, whichever way a processor closes it.
		start = start - start%sec + 250
		d := &drop{
			idx:       i,
			id:        "drop." + g.tag + "." + strconv.Itoa(i),
			creator:   g.creators[i%len(g.creators)],
			start:     start,
			end:       start + ms(g.cfg.DropLength) - ms(g.cfg.DropLength)%sec,
			inventory: 200 + g.rng.Int64N(300),
			lift:      g.cfg.LiftMin + (g.cfg.LiftMax-g.cfg.LiftMin)*g.rng.Float64(),
			offerID:   "of.drop." + strconv.Itoa(i),
		}
		g.drops = append(g.drops, d)
	}
	return g.drops[k]
}

// liveDrop returns the drop live at t (drops never overlap), or nil.
func (g *gen) liveDrop(t int64) *drop {
	first := g.origin + ms(g.cfg.FirstDrop)
	if t < first {
		return nil
	}
	d := g.dropAt(int((t - first) / ms(g.cfg.DropEvery)))
	if t >= d.start && t < d.end {
		return d
	}
	return nil
}

// nextDropStart returns the first drop starting at or after t.
func (g *gen) nextDropAfter(t int64) *drop {
	first := g.origin + ms(g.cfg.FirstDrop)
	k := 0
	if t > first {
		k = int((t-first)/ms(g.cfg.DropEvery)) + 1
	}
	return g.dropAt(k)
}

// logNormal draws exp(N(ln median, sigma)).
func (g *gen) logNormal(median, sigma float64) float64 {
	return median * math.Exp(sigma*g.rng.NormFloat64())
}

// between draws a whole number of seconds in [lo, hi] and returns ms.
func (g *gen) between(lo, hi int64) int64 {
	return (lo + g.rng.Int64N(hi-lo+1)) * sec
}

func (g *gen) pick(list []string) string { return list[g.rng.IntN(len(list))] }

// newDevice creates a device with the population's clock and connectivity.
func (g *gen) newDevice(edgeCountry string) *device {
	g.nDevices++
	d := &device{
		id:          "d." + g.tag + "." + strconv.FormatUint(g.nDevices, 36),
		edgeCountry: edgeCountry,
		flushEvery:  g.between(2, 20),
		batchSize:   5 + g.rng.IntN(46),
	}
	switch r := g.rng.Float64(); {
	case r < g.cfg.NTPShare:
		d.clock = ClockNTP
	case r < g.cfg.NTPShare+g.cfg.SentAtSkewShare:
		d.clock = ClockSentAt
	}
	if d.clock != ClockSynced {
		// 2 s to 15 min either way, whole seconds.
		d.skew = g.between(2, 900)
		if g.rng.IntN(2) == 0 {
			d.skew = -d.skew
		}
	}
	if g.rng.Float64() < g.cfg.OfflineShare {
		d.offline = 1
		if g.rng.Float64() < g.cfg.LongHoldShare {
			d.offline = 2
		}
	}
	g.planted.Clocks[d.clock.String()]++
	switch d.offline {
	case 1:
		g.planted.Clocks["offline_short"]++
	case 2:
		g.planted.Clocks["offline_long"]++
	}
	d.buf = &buffer{dev: d}
	return d
}

// humanFor returns a human for a new session: a returning one or new.
func (g *gen) humanFor() *user {
	if n := len(g.humans); n > 0 && g.rng.Float64() < 0.4 {
		u := g.humans[g.rng.IntN(n)]
		if !u.active {
			return u
		}
	}
	g.nUsers++
	country := g.pick(countries)
	u := &user{id: "u." + g.tag + "." + strconv.FormatUint(g.nUsers, 36), country: country}
	if n := len(g.families); n > 0 && g.rng.Float64() < familyJoin {
		// Joins a family's tablet: its network, its home country (a
		// family abroad mismatches on every member's events).
		if f := g.families[g.rng.IntN(n)]; len(f.users) < familyMax {
			f.users = append(f.users, u)
			u.country, u.devices = f.home, []*device{f.dev}
			g.planted.FamilyMembers++
			g.humans = append(g.humans, u)
			return u
		}
	}
	network := country
	if g.rng.Float64() < g.cfg.TravellerShare {
		// A traveller or VPN user: the edge sees another country than the
		// one the app declares, on every event (a precision check for the
		// geo signals).
		for network == country {
			network = g.pick(countries)
		}
	}
	u.devices = append(u.devices, g.newDevice(network))
	if g.rng.Float64() < 0.15 {
		u.devices = append(u.devices, g.newDevice(country))
	}
	if g.rng.Float64() < familyStart {
		f := &family{dev: u.devices[0], home: country, users: []*user{u}}
		if g.rng.Float64() < familyAbroad {
			// On holiday: a tablet on a foreign network, every member's
			// events geo-mismatched.
			abroad := country
			for abroad == country {
				abroad = g.pick(countries)
			}
			f.dev = g.newDevice(abroad)
			u.devices = append(u.devices, f.dev)
		}
		// A home tablet is online: an offline device's holds would make
		// four users' events late at once.
		switch f.dev.offline {
		case 1:
			g.planted.Clocks["offline_short"]--
		case 2:
			g.planted.Clocks["offline_long"]--
		}
		f.dev.offline, f.dev.family = 0, f
		g.families = append(g.families, f)
	}
	g.humans = append(g.humans, u)
	return u
}

// newBot creates a bot user of kind k on its own new device.
func (g *gen) newBot(k botKind, dev *device) *user {
	g.nUsers++
	u := &user{id: "u." + g.tag + "." + strconv.FormatUint(g.nUsers, 36), country: g.pick(countries), bot: k}
	if dev == nil {
		dev = g.newDevice(u.country)
	} else {
		u.country = dev.edgeCountry
	}
	u.devices = []*device{dev}
	g.planted.addBot(k, u.id, dev.id)
	return u
}
