package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Option configures New.
type Option func(*config)

type config struct {
	keys            *Keyring
	limiter         *Limiter
	trusted         []netip.Prefix
	countryHeader   string
	maxBodyBytes    int64
	maxDecodedBytes int64
	maxEvents       int
	maxAge          time.Duration
	maxFuture       time.Duration
	readTimeout     time.Duration
	writeTimeout    time.Duration
	produceTimeout  time.Duration
	maxInFlight     int
	maxInFlightIP   int
	maxBufferBytes  int64
	retryAfter      time.Duration
	recentIDs       int
	reg             prometheus.Registerer
	logger          *slog.Logger
	now             func() time.Time
}

// Keys sets the accepted API keys. Required.
func Keys(k *Keyring) Option { return func(c *config) { c.keys = k } }

// RateLimits sets the rate limiter, which the quest/drop API may share.
// Default: NewLimiter() with its defaults.
func RateLimits(l *Limiter) Option { return func(c *config) { c.limiter = l } }

// TrustedProxies sets the networks whose X-Forwarded-For and edge country
// header are believed (see Edge). Default none: the TCP peer is the client
// and the edge country is unknown.
func TrustedProxies(p ...netip.Prefix) Option {
	return func(c *config) { c.trusted = append(c.trusted, p...) }
}

// EdgeCountryHeader sets the header a trusted edge puts the client's
// country in. Default "X-Edge-Country".
func EdgeCountryHeader(name string) Option { return func(c *config) { c.countryHeader = name } }

// MaxBodyBytes limits the request body as sent (compressed, if gzip).
// Default 1 MiB.
func MaxBodyBytes(n int64) Option { return func(c *config) { c.maxBodyBytes = n } }

// MaxDecodedBytes limits the body after gzip decoding; decoding stops at the
// limit, so a gzip bomb costs at most this much. Default 8 MiB.
func MaxDecodedBytes(n int64) Option { return func(c *config) { c.maxDecodedBytes = n } }

// MaxEvents limits the events in one batch. Default 1000.
func MaxEvents(n int) Option { return func(c *config) { c.maxEvents = n } }

// MaxAge rejects events whose event_time is older than this at receipt.
// Default 72h.
func MaxAge(d time.Duration) Option { return func(c *config) { c.maxAge = d } }

// MaxFuture rejects events whose event_time is further ahead of receipt.
// Default DefaultMaxFuture.
func MaxFuture(d time.Duration) Option { return func(c *config) { c.maxFuture = d } }

// DefaultMaxFuture is MaxFuture's default: how far a partition's event
// time, and so its watermark, can lead the wall clock.
const DefaultMaxFuture = 5 * time.Minute

// ReadTimeout bounds reading one request body, from the handler's start.
// Default 10s.
func ReadTimeout(d time.Duration) Option { return func(c *config) { c.readTimeout = d } }

// WriteTimeout bounds a whole request, from the handler's start to the end
// of the answer (it must exceed ReadTimeout + ProduceTimeout). Default 30s.
func WriteTimeout(d time.Duration) Option { return func(c *config) { c.writeTimeout = d } }

// ProduceTimeout bounds the wait for Kafka's acknowledgement of a batch;
// past it the answer is 503. Default 10s.
func ProduceTimeout(d time.Duration) Option { return func(c *config) { c.produceTimeout = d } }

// MaxInFlight bounds the requests being read, parsed or produced at once;
// beyond it requests get 503 with Retry-After at once (backpressure).
// Default 1024.
func MaxInFlight(n int) Option { return func(c *config) { c.maxInFlight = n } }

// MaxInFlightPerIP bounds the requests of one client address (a /64 for
// IPv6, as the IP rate limit) in flight at once; beyond it a request gets
// 429 with Retry-After. Without it a few addresses sending bodies slowly
// held every MaxInFlight slot for the read timeout each, and everyone
// else got 503 (helper-37, session 14). Default 64.
func MaxInFlightPerIP(n int) Option { return func(c *config) { c.maxInFlightIP = n } }

// MaxBufferBytes bounds the memory the requests in flight hold for their
// bodies (as sent and gzip-decoded): a request whose body would take it
// past the bound gets 503 with Retry-After (backpressure), like one past
// MaxInFlight. Without it, 1024 requests of small gzip bombs (16 KiB each,
// 8 MiB decoded) held about 3 GiB (helper-37). Default 512 MiB; at least
// MaxBodyBytes + MaxDecodedBytes + 2, so that one request at both limits
// always fits in an idle ingest.
func MaxBufferBytes(n int64) Option { return func(c *config) { c.maxBufferBytes = n } }

// RetryAfter is the Retry-After of a 503. Default 1s.
func RetryAfter(d time.Duration) Option { return func(c *config) { c.retryAfter = d } }

// RecentIDs sets the slots (rounded up to a power of two, 16 bytes each) of
// the recent event_id cache, ingest's first line against client retries;
// correctness never depends on it: downstream deduplicates by event_id.
// 0 disables it. Default 262144 (4 MiB).
func RecentIDs(n int) Option { return func(c *config) { c.recentIDs = n } }

// Registerer registers the handler's metrics. Default none (unregistered).
func Registerer(r prometheus.Registerer) Option { return func(c *config) { c.reg = r } }

// Logger sets the logger. Default slog.Default().
func Logger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Clock sets the clock (tests). Default time.Now.
func Clock(now func() time.Time) Option { return func(c *config) { c.now = now } }

func newConfig(opts []Option) (config, error) {
	c := config{
		countryHeader:   "X-Edge-Country",
		maxBodyBytes:    1 << 20,
		maxDecodedBytes: 8 << 20,
		maxEvents:       1000,
		maxAge:          72 * time.Hour,
		maxFuture:       DefaultMaxFuture,
		readTimeout:     10 * time.Second,
		writeTimeout:    30 * time.Second,
		produceTimeout:  10 * time.Second,
		maxInFlight:     1024,
		maxInFlightIP:   64,
		maxBufferBytes:  512 << 20,
		retryAfter:      time.Second,
		recentIDs:       1 << 18,
		now:             time.Now,
	}
	for _, o := range opts {
		o(&c)
	}
	return c, c.validate()
}

func (c *config) validate() error {
	var errs []error
	if c.keys == nil || c.keys.Len() == 0 {
		errs = append(errs, errors.New("no API keys: ingest would refuse every request"))
	}
	if c.maxBodyBytes <= 0 || c.maxDecodedBytes < c.maxBodyBytes {
		errs = append(errs, fmt.Errorf("body limits: want 0 < MaxBodyBytes (%d) <= MaxDecodedBytes (%d)", c.maxBodyBytes, c.maxDecodedBytes))
	}
	if c.maxEvents <= 0 {
		errs = append(errs, errors.New("MaxEvents must be positive"))
	}
	if c.maxAge <= 0 || c.maxFuture < 0 {
		errs = append(errs, errors.New("MaxAge must be positive and MaxFuture not negative"))
	}
	if c.readTimeout <= 0 || c.produceTimeout <= 0 || c.writeTimeout <= c.readTimeout+c.produceTimeout {
		errs = append(errs, fmt.Errorf("timeouts: want WriteTimeout (%v) > ReadTimeout (%v) + ProduceTimeout (%v)", c.writeTimeout, c.readTimeout, c.produceTimeout))
	}
	if c.maxBufferBytes < c.maxBodyBytes+c.maxDecodedBytes+2 {
		errs = append(errs, fmt.Errorf("MaxBufferBytes %d: want at least MaxBodyBytes + MaxDecodedBytes + 2 (%d)", c.maxBufferBytes, c.maxBodyBytes+c.maxDecodedBytes+2))
	}
	if c.maxInFlight <= 0 || c.maxInFlightIP <= 0 || c.retryAfter <= 0 || c.recentIDs < 0 {
		errs = append(errs, errors.New("MaxInFlight, MaxInFlightPerIP and RetryAfter must be positive, RecentIDs not negative"))
	}
	for _, p := range c.trusted {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("invalid trusted proxy prefix %v", p))
		}
	}
	if c.now == nil {
		errs = append(errs, errors.New("nil clock"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	return nil
}
