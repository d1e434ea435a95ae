package loadgen

import (
	"math"
	"strconv"
	"time"
)

// Millis is a Unix-millisecond time that marshals as RFC 3339 with
// milliseconds (UTC), like the events.
type Millis int64

// MarshalJSON writes the time as a JSON string.
func (m Millis) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, time.UnixMilli(int64(m)).UTC().Format("2006-01-02T15:04:05.000Z07:00")), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (m *Millis) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	*m = Millis(t.UnixMilli())
	return nil
}

// Planted is what the model decided, from its own knowledge: parameters
// and the identities it planted. It is not something the pipeline can
// reproduce exactly; Expected is.
type Planted struct {
	// BaseConversion and ExposeShare are the drop experiment's settings.
	BaseConversion float64 `json:"base_conversion"`
	ExposeShare    float64 `json:"expose_share"`
	// Drops holds each drop's true lift and the model's own enrollment
	// counts (humans only).
	Drops []PlantedDrop `json:"drops"`
	// Latency is the planted completion-to-conversion latency of
	// quest-driven conversions: log-normal with this median and sigma,
	// and its exact quantiles.
	Latency PlantedLatency `json:"latency"`
	// Violations counts the injected integrity violations by kind, over
	// the auctions with at least one sent event; each injection trips
	// exactly one kind.
	Violations map[string]int `json:"violations"`
	// Bots lists the bot users and devices by kind.
	Bots map[string]*BotIDs `json:"bots"`
	// Clocks counts devices by clock mode (synced, ntp, sent_at) and by
	// offline behaviour (offline_short, offline_long).
	Clocks map[string]int `json:"clocks"`
	// Bidders are the bidders' planted distributions.
	Bidders []PlantedBidder `json:"bidders"`
	// FamilyMembers counts the humans who joined another human's device
	// (a family sharing a tablet, up to 4 users; session 14).
	FamilyMembers int `json:"family_members"`

	latencyDraws []int64           // every planted latency, for the tests
	botSteps     map[string]int    // bot user → events in its script
	botDevice    map[string]string // bot user → its device
	injected     map[string]string // auction id → injected violation kind
}

// PlantedDrop is one drop as the model scheduled it.
type PlantedDrop struct {
	DropID    string  `json:"drop_id"`
	CreatorID string  `json:"creator_id"`
	Start     Millis  `json:"start"`
	End       Millis  `json:"end"`
	Inventory int64   `json:"inventory"`
	Lift      float64 `json:"lift"` // the true lift: P(convert|exposed)/P(convert|control) − 1 for humans
	// The model's enrollment decisions (humans): users enrolled in each
	// arm and those it decided would convert.
	EnrolledExposed int `json:"enrolled_exposed"`
	EnrolledControl int `json:"enrolled_control"`
	ConvertsExposed int `json:"converts_exposed"`
	ConvertsControl int `json:"converts_control"`
}

// PlantedLatency is the planted latency distribution.
type PlantedLatency struct {
	MedianMs int64   `json:"median_ms"`
	Sigma    float64 `json:"sigma"`
	P50Ms    float64 `json:"p50_ms"`
	P90Ms    float64 `json:"p90_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MeanMs   float64 `json:"mean_ms"`
	Draws    int     `json:"draws"`
}

// PlantedBidder is a bidder's planted behaviour.
type PlantedBidder struct {
	BidderID         string  `json:"bidder_id"`
	BidProbability   float64 `json:"bid_probability"`
	ErrorProbability float64 `json:"error_probability"`
	PriceMedian      float64 `json:"price_median_micros"`
	PriceSigma       float64 `json:"price_sigma"`
	LatencyMedianMs  float64 `json:"latency_median_ms"`
	LatencySigma     float64 `json:"latency_sigma"`
	TimeoutMs        int64   `json:"timeout_ms"`
}

// BotIDs are the ids of one bot kind. Users and Devices are the bots
// whose whole session was sent on time (the ones a detector must find);
// Partial lists the users whose session the start or end of the run cut,
// or whose (offline) device sent it late.
type BotIDs struct {
	// Entity is what a detector must flag for this kind: "user", or
	// "device" for device farms (whose accounts each look quiet).
	Entity string `json:"entity"`
	// Signals are the SPEC §5 signals the kind shows, strongest first.
	Signals []string `json:"signals"`
	Users   []string `json:"users"`
	Devices []string `json:"devices"`
	Partial []string `json:"partial_users"`
}

func newPlanted(c *Config) Planted {
	p := Planted{
		BaseConversion: c.BaseConversion,
		ExposeShare:    c.ExposeShare,
		Violations:     map[string]int{},
		Bots:           map[string]*BotIDs{},
		Clocks:         map[string]int{},
		botSteps:       map[string]int{},
		botDevice:      map[string]string{},
	}
	for _, k := range ViolationKinds {
		p.Violations[k] = 0
	}
	for k := botKind(1); k < numBotKinds; k++ {
		b := &BotIDs{Entity: "user", Signals: []string{k.String()}, Users: []string{}, Devices: []string{}}
		if k == botSharedDevice {
			b.Entity, b.Signals = "device", []string{"shared_device", "metronome"}
		}
		p.Bots[k.String()] = b
	}
	med := float64(ms(c.LatencyMedian))
	q := func(z float64) float64 { return math.Round(med * math.Exp(c.LatencySigma*z)) }
	p.Latency = PlantedLatency{
		MedianMs: ms(c.LatencyMedian), Sigma: c.LatencySigma,
		P50Ms: q(0), P90Ms: q(1.2815515655446004), P99Ms: q(2.3263478740408408),
		MeanMs: math.Round(med * math.Exp(c.LatencySigma*c.LatencySigma/2)),
	}
	return p
}

func (p *Planted) addBot(k botKind, userID, deviceID string) {
	b := p.Bots[k.String()]
	b.Users = append(b.Users, userID)
	p.botDevice[userID] = deviceID
	if n := len(b.Devices); n == 0 || b.Devices[n-1] != deviceID {
		b.Devices = append(b.Devices, deviceID)
	}
}

func (p *Planted) addViolation(auctionID, kind string) {
	if p.injected == nil {
		p.injected = map[string]string{}
	}
	p.injected[auctionID] = kind
}

// finish copies the drop schedule into p.
func (p *Planted) finish(g *gen) {
	p.Drops = p.Drops[:0]
	for _, d := range g.drops {
		p.Drops = append(p.Drops, PlantedDrop{
			DropID: d.id, CreatorID: d.creator, Start: Millis(d.start), End: Millis(d.end),
			Inventory: d.inventory, Lift: d.lift,
			EnrolledExposed: d.enrolledExposed, EnrolledControl: d.enrolledControl,
			ConvertsExposed: d.convExposed, ConvertsControl: d.convControl,
		})
	}
	p.Bidders = p.Bidders[:0]
	for _, b := range g.bidders {
		p.Bidders = append(p.Bidders, PlantedBidder{
			BidderID: b.id, BidProbability: b.bidProb, ErrorProbability: b.errProb,
			PriceMedian: b.priceMedian, PriceSigma: b.priceSigma,
			LatencyMedianMs: b.latMedian, LatencySigma: b.latSigma, TimeoutMs: bidTimeoutMs,
		})
	}
	p.Latency.Draws = len(p.latencyDraws)
}
