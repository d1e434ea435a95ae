package ingest

import (
	"errors"
	"hash/maphash"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limiter holds the token buckets of SPEC §2's rate limits: per API key
// and per device in events per second, per client IP in requests per
// second. It is safe for concurrent use and its memory is bounded: each
// table keeps at most about 2×MaxEntries buckets (two generations; a
// bucket unused for a whole generation is forgotten, and a forgotten
// bucket starts full again, as an idle one would be anyway — except a
// device's, which starts at the stricter new-device burst).
//
// A request may spend more tokens than a bucket holds as long as the bucket
// holds at least one; the bucket then goes into debt and the next request waits
// until it is repaid. So one batch larger than the burst is not refused
// forever, while the long-run rate still never exceeds the limit.
//
// Stricter where the signals disagree: an event whose declared country
// differs from the edge country costs MismatchCost device and key tokens
// instead of 1, and a device not seen recently starts with NewDeviceBurst
// tokens instead of a full DeviceBurst.
type Limiter struct {
	cfg    limiterCfg
	keys   *table
	device *table
	ip     *table
}

// LimiterOpt configures NewLimiter.
type LimiterOpt func(*limiterCfg)

type limiterCfg struct {
	keyRate, keyBurst       float64
	deviceRate, deviceBurst float64
	newDeviceBurst          float64
	ipRate, ipBurst         float64
	mismatchCost            float64
	maxEntries              int
	now                     func() time.Time
}

// KeyRate sets the events per second and burst of one API key. Default
// 20000/s, burst 40000.
func KeyRate(perSec, burst float64) LimiterOpt {
	return func(c *limiterCfg) { c.keyRate, c.keyBurst = perSec, burst }
}

// DeviceRate sets the events per second and burst of one device_id.
// Default 50/s, burst 500.
func DeviceRate(perSec, burst float64) LimiterOpt {
	return func(c *limiterCfg) { c.deviceRate, c.deviceBurst = perSec, burst }
}

// NewDeviceBurst sets the tokens a device starts with when it has not been
// seen recently. Default 100.
func NewDeviceBurst(n float64) LimiterOpt { return func(c *limiterCfg) { c.newDeviceBurst = n } }

// IPRate sets the requests per second and burst of one client IP (IPv6:
// one /64). Default 50/s, burst 200.
func IPRate(perSec, burst float64) LimiterOpt {
	return func(c *limiterCfg) { c.ipRate, c.ipBurst = perSec, burst }
}

// MismatchCost sets the token cost of an event whose declared country
// differs from the edge country. Default 4.
func MismatchCost(n float64) LimiterOpt { return func(c *limiterCfg) { c.mismatchCost = n } }

// MaxEntries bounds the buckets kept per table (per generation). Default
// 100000.
func MaxEntries(n int) LimiterOpt { return func(c *limiterCfg) { c.maxEntries = n } }

// LimiterClock sets the clock. Default time.Now.
func LimiterClock(now func() time.Time) LimiterOpt { return func(c *limiterCfg) { c.now = now } }

// NewLimiter returns a limiter with opts applied over the defaults.
func NewLimiter(opts ...LimiterOpt) (*Limiter, error) {
	c := limiterCfg{
		keyRate: 20000, keyBurst: 40000,
		deviceRate: 50, deviceBurst: 500, newDeviceBurst: 100,
		ipRate: 50, ipBurst: 200,
		mismatchCost: 4,
		maxEntries:   100000,
		now:          time.Now,
	}
	for _, o := range opts {
		o(&c)
	}
	for _, v := range []float64{c.keyRate, c.keyBurst, c.deviceRate, c.deviceBurst, c.newDeviceBurst, c.ipRate, c.ipBurst} {
		if !(v > 0) || math.IsInf(v, 0) {
			return nil, errors.New("ingest: rate limits and bursts must be positive and finite")
		}
	}
	if c.newDeviceBurst > c.deviceBurst {
		return nil, errors.New("ingest: the new-device burst must not exceed the device burst")
	}
	if c.mismatchCost < 1 {
		return nil, errors.New("ingest: the mismatch cost must be at least 1")
	}
	if c.maxEntries < 1 {
		return nil, errors.New("ingest: MaxEntries must be positive")
	}
	return &Limiter{
		cfg:    c,
		keys:   newTable(c.keyRate, c.keyBurst, c.keyBurst, c.maxEntries),
		device: newTable(c.deviceRate, c.deviceBurst, c.newDeviceBurst, c.maxEntries),
		ip:     newTable(c.ipRate, c.ipBurst, c.ipBurst, c.maxEntries),
	}, nil
}

// AllowIP spends one request of the client IP bucket ip (see ipBucket). It
// returns 0 when allowed, else how long to wait.
func (l *Limiter) AllowIP(ip string) time.Duration {
	if ip == "" {
		return 0
	}
	return l.ip.take(ip, 1, l.cfg.now())
}

// AllowKey spends cost event tokens of API key keyID.
func (l *Limiter) AllowKey(keyID string, cost float64) time.Duration {
	return l.keys.take(keyID, cost, l.cfg.now())
}

// AllowDevice spends cost event tokens of device deviceID ("" is allowed:
// events without a device are limited by key and IP only).
func (l *Limiter) AllowDevice(deviceID string, cost float64) time.Duration {
	if deviceID == "" {
		return 0
	}
	return l.device.take(deviceID, cost, l.cfg.now())
}

// RefundDevice gives back cost event tokens that AllowDevice spent for a
// batch refused by another limit (at most up to the burst).
func (l *Limiter) RefundDevice(deviceID string, cost float64) {
	if deviceID != "" {
		l.device.give(deviceID, cost)
	}
}

// EventCost is the token cost of one event: MismatchCost when the declared
// country and the edge country are both known and differ, else 1.
func (l *Limiter) EventCost(declared, edge string) float64 {
	if declared != "" && edge != "" && declared != edge {
		return l.cfg.mismatchCost
	}
	return 1
}

const numShards = 16

// table is a sharded, two-generation map of token buckets.
type table struct {
	rate, burst, initial float64
	perShard             int
	seed                 maphash.Seed
	shards               [numShards]shard
}

type shard struct {
	mu        sync.Mutex
	cur, prev map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newTable(rate, burst, initial float64, maxEntries int) *table {
	t := &table{rate: rate, burst: burst, initial: initial, seed: maphash.MakeSeed()}
	t.perShard = max(1, maxEntries/numShards)
	for i := range t.shards {
		t.shards[i].cur = map[string]*bucket{}
	}
	return t
}

// maxKeyBytes bounds a bucket's key: a longer id (a device_id past SPEC's
// 128 characters, which validation refuses after the batch was charged)
// is keyed by its hash, so a bucket never holds 64 KiB of a client's
// string (helper-37).
const maxKeyBytes = 512

// key returns the bucket key of id.
func (t *table) key(id string) string {
	if len(id) <= maxKeyBytes {
		return id
	}
	return "#" + strconv.FormatUint(maphash.String(t.seed, id), 36) + "/" + strconv.Itoa(len(id))
}

// take spends cost tokens of the bucket of id at now. It returns 0 when
// allowed, else the wait until the bucket has tokens again.
func (t *table) take(id string, cost float64, now time.Time) time.Duration {
	id = t.key(id)
	s := &t.shards[maphash.String(t.seed, id)%numShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.cur[id]
	if b == nil {
		if b = s.prev[id]; b != nil {
			delete(s.prev, id)
		} else {
			b = &bucket{tokens: t.initial, last: now}
		}
		if len(s.cur) >= t.perShard {
			s.prev, s.cur = s.cur, make(map[string]*bucket, t.perShard)
		}
		// A copy keys the bucket: id is often a view of a request's
		// decoded body (a device_id), which the key would keep alive
		// for as long as the bucket lives (helper-37: 60 bodies of
		// 7 MiB, 405 MiB kept).
		s.cur[strings.Clone(id)] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(t.burst, b.tokens+dt*t.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) / t.rate * float64(time.Second))
	}
	b.tokens -= cost
	return 0
}

// give adds cost tokens back to the bucket of id, if it still has one, up
// to the burst.
func (t *table) give(id string, cost float64) {
	id = t.key(id)
	s := &t.shards[maphash.String(t.seed, id)%numShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.cur[id]
	if b == nil {
		b = s.prev[id]
	}
	if b != nil {
		b.tokens = min(t.burst, b.tokens+cost)
	}
}
