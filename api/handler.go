// Package api is questline's quest/drop API (SPEC §3): a thin REST API
// whose every effect is an ordinary event in questline.events, with server
// time. Claims are decided by a log-ordered sequencer (questline.claims,
// folded in order by every instance), so inventory is never oversold with
// any number of instances and across crashes. The HTTP contract is
// docs/api.md and openapi.json.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/ingest"
	"github.com/questline/questline/kafka"
)

// Topics are the topics the API needs besides kafka.CoreTopics.
var Topics = []kafka.Topic{{Name: kafka.TopicClaims, KeepForever: true}}

// Handler serves the API. Build it with New, mount it with Register and
// start its claims log readers with Run.
type Handler struct {
	cfg     config
	cl      *kgo.Client
	brokers []string
	edge    ingest.Edge
	limiter *ingest.Limiter
	perIP   ingest.AddrSlots // requests in flight by client address (MaxInFlightPerIP)
	tokens  tokens
	copies  *kafka.CopyMaker
	seq     *sequencer
	m       *metrics
	log     *slog.Logger
	routes  []string
	mux     *http.ServeMux
}

// New returns the API producing with cl (a client of kafka.NewClient:
// acks=all, idempotent) and reading questline.claims from brokers with
// clients of its own.
func New(cl *kgo.Client, brokers []string, opts ...Option) (*Handler, error) {
	if cl == nil || len(brokers) == 0 {
		return nil, errors.New("api: a Kafka client and its brokers are required")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		cfg: cfg, cl: cl, brokers: brokers,
		edge:    ingest.NewEdge(cfg.trusted, ""),
		limiter: cfg.limiter,
		copies:  kafka.NewCopyMaker(cl, kafka.TopicEvents),
		m:       newMetrics(cfg.reg),
		log:     cfg.logger.With("component", "api"),
	}
	if h.limiter == nil {
		if h.limiter, err = ingest.NewLimiter(); err != nil {
			return nil, err
		}
	}
	h.tokens.secret = cfg.secret
	if h.tokens.secret == nil {
		h.tokens.secret = newSecret()
		h.log.Warn("no -api-secret set: quest attempt tokens are signed with a random per-process secret and work only on the instance that issued them; give every API instance the same secret")
	}
	if h.seq, err = newSequencer(brokers, &cfg, h.m, h.log); err != nil {
		return nil, err
	}
	h.m.retention.Set(cfg.claimsRetention.Seconds())
	h.mux = http.NewServeMux()
	h.routes = h.register(h.mux)
	return h, nil
}

// Register mounts every route of the API on mux, beside whatever else it
// serves (questline run mounts ingest on the same mux).
func (h *Handler) Register(mux *http.ServeMux) { h.register(mux) }

// Routes returns the route patterns the API serves ("POST /v1/quests").
func (h *Handler) Routes() []string { return append([]string(nil), h.routes...) }

// ServeHTTP serves the API's routes alone.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Ready reports nil once the instance has re-read questline.claims up to
// its end at start; until then claims get 503 (a readiness check).
func (h *Handler) Ready(ctx context.Context) error { return h.seq.Ready(ctx) }

// Run reads questline.claims (the sequencer) and, with OutcomeRelay on,
// relays claim outcomes, until ctx ends or one of them fails.
func (h *Handler) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	run := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
			cancel()
		}()
	}
	run(h.seq.run)
	if h.cfg.relay {
		run(h.runRelay)
	}
	wg.Wait()
	return first
}

// route is one endpoint's handler, called once the request is
// authenticated (key) and within its limits.
type route func(ctx context.Context, w http.ResponseWriter, r *http.Request, key ingest.Key)

// handle wraps fn with what every authenticated route does: a deadline,
// the IP rate limit, authentication, the server scope, the key's rate
// limit, metrics.
func (h *Handler) handle(pattern string, fn route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now() // wall time: cfg.now is the server clock of events
		rw := &statusWriter{ResponseWriter: w}
		defer func() {
			h.m.requests.WithLabelValues(pattern, statusLabel(rw.status)).Inc()
			h.m.duration.WithLabelValues(pattern).Observe(time.Since(start).Seconds())
		}()
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(h.cfg.requestTimeout))
		_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.requestTimeout + 5*time.Second))
		ctx, cancel := context.WithTimeout(r.Context(), h.cfg.requestTimeout)
		defer cancel()

		ip, _ := h.edge.ClientIP(r)
		addr := ingest.IPBucket(ip)
		if ok, why := h.perIP.Admit(addr, h.cfg.maxInFlightIP, h.limiter, h.cfg.retryAfter); !ok {
			h.m.rateLimited.WithLabelValues(why.Reason).Inc()
			h.fail(rw, http.StatusTooManyRequests, why.Message, why.Wait)
			return
		}
		defer h.perIP.Release(addr)
		key, err := h.cfg.keys.Authenticate(r)
		if err != nil {
			rw.Header().Set("WWW-Authenticate", `Bearer realm="questline"`)
			h.fail(rw, http.StatusUnauthorized, err.Error()+" (Authorization: Bearer <server key>)", 0)
			return
		}
		if key.Scope != ingest.ScopeServer {
			h.fail(rw, http.StatusForbidden, "this is a client-scope key; the quest/drop API needs a server-scope key", 0)
			return
		}
		if wait := h.limiter.AllowKey(key.ID, 1); wait > 0 {
			h.m.rateLimited.WithLabelValues("key").Inc()
			h.fail(rw, http.StatusTooManyRequests, "rate limit of this API key exceeded", wait)
			return
		}
		if k := r.Header.Get(IdempotencyHeader); k != "" && !event.ValidEventID(k) {
			h.fail(rw, http.StatusBadRequest, "Idempotency-Key: must be 1-64 characters of [A-Za-z0-9._:-]", 0)
			return
		}
		fn(ctx, rw, r, key)
	})
}

// allowDevice spends a token of deviceID's bucket; false means it answered 429.
func (h *Handler) allowDevice(w http.ResponseWriter, deviceID string) bool {
	// Checked before the limiter keys a bucket by it (a 64 KiB device_id
	// was a 64 KiB bucket key: helper-37); the event's validation would
	// refuse it later anyway.
	if utf8.RuneCountInString(deviceID) > event.MaxIDLen {
		h.fail(w, http.StatusBadRequest, "device_id: at most "+strconv.Itoa(event.MaxIDLen)+" characters", 0)
		return false
	}
	if wait := h.limiter.AllowDevice(deviceID, 1); wait > 0 {
		h.m.rateLimited.WithLabelValues("device").Inc()
		h.fail(w, http.StatusTooManyRequests, "rate limit of this device exceeded", wait)
		return false
	}
	return true
}

// unavailable answers 503 for a Kafka failure or a timeout.
func (h *Handler) unavailable(w http.ResponseWriter, what string, err error) {
	h.log.Warn("answering 503", "what", what, "err", err)
	h.fail(w, http.StatusServiceUnavailable, "the event log is unavailable ("+what+"); retry later with the same Idempotency-Key or claim_id", h.cfg.retryAfter)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// fieldName turns event.Validate's "props.x" into the API's field name "x".
func fieldName(msg string) string { return strings.TrimPrefix(msg, "props.") }
