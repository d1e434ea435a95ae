package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/questline/questline/ingest"
)

// Option configures New.
type Option func(*config)

type config struct {
	keys             *ingest.Keyring
	limiter          *ingest.Limiter
	trusted          []netip.Prefix
	secret           []byte
	maxBodyBytes     int64
	maxInFlightIP    int
	requestTimeout   time.Duration
	retryAfter       time.Duration
	attemptMaxAge    time.Duration
	claimsRetention  time.Duration
	snapshotDir      string
	snapshotInterval time.Duration
	relay            bool
	group            string
	reg              prometheus.Registerer
	logger           *slog.Logger
	now              func() time.Time
}

// Keys sets the accepted API keys; only server-scope keys may call the
// API (SPEC §2). Required.
func Keys(k *ingest.Keyring) Option { return func(c *config) { c.keys = k } }

// RateLimits sets the rate limiter (questline run shares ingest's).
// Default: ingest.NewLimiter() with its defaults.
func RateLimits(l *ingest.Limiter) Option { return func(c *config) { c.limiter = l } }

// TrustedProxies sets the networks whose X-Forwarded-For is believed when
// deriving the client IP, as ingest.TrustedProxies. Default none.
func TrustedProxies(p ...netip.Prefix) Option {
	return func(c *config) { c.trusted = append(c.trusted, p...) }
}

// Secret sets the key that signs quest attempt tokens; every API instance
// must share it (at least 16 bytes). Default: a random key per process, so
// a token works only on the instance that issued it (New logs a warning).
func Secret(b []byte) Option { return func(c *config) { c.secret = b } }

// MaxBodyBytes limits a request body; a larger one gets 413. Default 64 KiB.
func MaxBodyBytes(n int64) Option { return func(c *config) { c.maxBodyBytes = n } }

// RequestTimeout bounds a whole request, Kafka's acknowledgements and the
// wait for a claim's decision included; past it the answer is 503.
// Default 10s.
func RequestTimeout(d time.Duration) Option { return func(c *config) { c.requestTimeout = d } }

// MaxInFlightPerIP bounds the requests of one client address (a /64 for
// IPv6) in flight at once; beyond it a request gets 429 with
// Retry-After, before authentication, like the IP rate limit (a few
// addresses sending bodies slowly would otherwise hold a goroutine and a
// connection each for the request timeout; ingest has the same bound).
// Default 64.
func MaxInFlightPerIP(n int) Option { return func(c *config) { c.maxInFlightIP = n } }

// RetryAfter is the Retry-After of a 503. Default 1s.
func RetryAfter(d time.Duration) Option { return func(c *config) { c.retryAfter = d } }

// AttemptMaxAge bounds how long after its start an attempt token completes
// its quest (quests take minutes); an older token gets 400, so a token
// kept or leaked does not complete the quest whenever its holder likes.
// Default DefaultAttemptMaxAge.
func AttemptMaxAge(d time.Duration) Option { return func(c *config) { c.attemptMaxAge = d } }

// DefaultAttemptMaxAge is AttemptMaxAge's default (24 h before session
// 13): a micro-quest (3 to 8 minutes) more than twice over, and short
// enough that a completion retried at its very end is still a copy to the
// processors. A retry is written at its own time under the attempt's
// event_id, and the processors remember an id for their de-duplication
// horizon of event time (about 31 min with the default windows) behind a
// watermark that can lead the wall clock by ingest's MaxFuture (5 min):
// within 20 minutes of the start, the first completion's id is still
// remembered, so the retry is dropped; a day later it counted twice.
const DefaultAttemptMaxAge = 20 * time.Minute

// DefaultClaimsRetention is how long after a drop closed (its end record,
// or its end time) its claims' decisions are kept by default.
const DefaultClaimsRetention = 7 * 24 * time.Hour

// ClaimsRetention sets how long after a drop closed (ended, or past its
// end time), measured in the server times of the claims log's records,
// the claims fold keeps the drop and its decisions; after that a claim on
// it (a retry included) is answered 410 and decides nothing. 0 keeps them
// for ever. Every API instance must use the same retention. Default
// DefaultClaimsRetention (7 days).
func ClaimsRetention(d time.Duration) Option { return func(c *config) { c.claimsRetention = d } }

// Snapshots makes the instance write, every interval, the claims fold of
// each partition that changed (and at a clean stop) to a file of its own
// under dir, and restore them at start, reading questline.claims from
// their offsets instead of from the start; a snapshot it cannot trust is
// refused (logged) and its partition read from the start. Default none
// (dir "" or interval 0). Instances may share dir: any instance's fold
// at an offset is every instance's.
func Snapshots(dir string, interval time.Duration) Option {
	return func(c *config) { c.snapshotDir, c.snapshotInterval = dir, interval }
}

// OutcomeRelay turns the outcome relay (a member of consumer group Group
// writing every decided claim's outcome event) on or off. Default on.
func OutcomeRelay(on bool) Option { return func(c *config) { c.relay = on } }

// Group sets the outcome relay's consumer group. Default "questline-api".
func Group(name string) Option { return func(c *config) { c.group = name } }

// Registerer registers the API's metrics. Default none (unregistered).
func Registerer(r prometheus.Registerer) Option { return func(c *config) { c.reg = r } }

// Logger sets the logger. Default slog.Default().
func Logger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Clock sets the server clock (tests). Default time.Now.
func Clock(now func() time.Time) Option { return func(c *config) { c.now = now } }

func newConfig(opts []Option) (config, error) {
	c := config{
		maxBodyBytes:    64 << 10,
		maxInFlightIP:   64,
		requestTimeout:  10 * time.Second,
		retryAfter:      time.Second,
		attemptMaxAge:   DefaultAttemptMaxAge,
		claimsRetention: DefaultClaimsRetention,
		relay:           true,
		group:           "questline-api",
		logger:          slog.Default(),
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
		errs = append(errs, errors.New("no API keys: the API would refuse every request"))
	}
	if c.secret != nil && len(c.secret) < 16 {
		errs = append(errs, errors.New("the token secret must be at least 16 bytes"))
	}
	if c.maxBodyBytes <= 0 || c.requestTimeout <= 0 || c.retryAfter <= 0 || c.attemptMaxAge <= 0 || c.maxInFlightIP <= 0 {
		errs = append(errs, errors.New("MaxBodyBytes, RequestTimeout, RetryAfter, AttemptMaxAge and MaxInFlightPerIP must be positive"))
	}
	if c.snapshotInterval < 0 {
		errs = append(errs, errors.New("the snapshot interval must not be negative"))
	}
	if c.claimsRetention < 0 {
		errs = append(errs, errors.New("ClaimsRetention must not be negative (0 keeps decisions for ever)"))
	}
	if c.relay && c.group == "" {
		errs = append(errs, errors.New("the outcome relay needs a consumer group"))
	}
	for _, p := range c.trusted {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("invalid trusted proxy prefix %v", p))
		}
	}
	if c.logger == nil || c.now == nil {
		errs = append(errs, errors.New("nil logger or clock"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}
