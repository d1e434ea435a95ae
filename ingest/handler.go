// Package ingest is questline's edge ingest (SPEC §2): POST /v1/events
// authenticates, limits, parses and validates a batch of client events,
// derives event time, and answers 200 only once Kafka has acknowledged
// every accepted event (questline.events) and every rejected one
// (questline.events.dlq). The HTTP contract as built is docs/ingest.md.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/kafka"
)

// storable reports whether a Unix ms time fits ClickHouse's DateTime
// (seconds in uint32), where ts and sent_at are stored.
func storable(ms int64) bool { return ms >= 0 && ms/1000 <= 1<<32-1 }

// Path is where Register mounts the handler.
const Path = "/v1/events"

// Dead-letter kinds and rejection reasons (the reason label of
// questline_ingest_events_rejected_total).
const (
	KindSchema        = "schema"
	KindScope         = "scope"
	KindTooOld        = "too_old"
	KindInFuture      = "in_future"
	KindDuplicate     = "duplicate_in_batch"
	KindMalformedBody = "malformed_body"
	KindTooLarge      = "too_large"
)

// Handler serves POST /v1/events. Build it with New.
type Handler struct {
	cfg      config
	cl       *kgo.Client
	edge     Edge
	limiter  *Limiter
	m        *metrics
	log      *slog.Logger
	inFlight chan struct{}
	perIP    AddrSlots    // requests in flight by client address (MaxInFlightPerIP)
	buffered atomic.Int64 // bytes of capacity the requests in flight hold (MaxBufferBytes)
	recent   *recentIDs
	states   sync.Pool        // *reqState
	copies   *kafka.CopyMaker // of catalog events, in questline.events
}

// New returns the ingest handler producing with cl, a client built by
// kafka.NewClient (acks=all, idempotent).
func New(cl *kgo.Client, opts ...Option) (*Handler, error) {
	if cl == nil {
		return nil, errors.New("ingest: nil Kafka client")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		cfg:      cfg,
		cl:       cl,
		edge:     Edge{trusted: cfg.trusted, countryHeader: cfg.countryHeader},
		limiter:  cfg.limiter,
		m:        newMetrics(cfg.reg),
		log:      cfg.logger,
		inFlight: make(chan struct{}, cfg.maxInFlight),
		recent:   newRecentIDs(cfg.recentIDs),
		copies:   kafka.NewCopyMaker(cl, kafka.TopicEvents),
	}
	h.m.buffered = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "questline_ingest_buffered_bytes",
		Help: "Bytes of buffer the request bodies in flight hold (as sent and gzip-decoded), at most MaxBufferBytes.",
	}, func() float64 { return float64(h.buffered.Load()) })
	if cfg.reg != nil {
		cfg.reg.MustRegister(h.m.buffered)
	}
	if h.limiter == nil {
		if h.limiter, err = NewLimiter(); err != nil {
			return nil, err
		}
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.log = h.log.With("component", "ingest")
	return h, nil
}

// Register mounts h on mux at POST /v1/events, beside whatever else mux
// serves (questline run mounts the quest/drop API on the same mux).
func (h *Handler) Register(mux *http.ServeMux) { mux.Handle("POST "+Path, h) }

// RegisterAlone registers h on mux as its server's only service (questline
// ingest): Path for POST as Register does, and a catch-all that answers
// every other request in ingest's JSON error shape with server_time (405
// with Allow on Path, 404 elsewhere) rather than ServeMux's plain text.
// Under questline run the API's catch-all does that instead.
func (h *Handler) RegisterAlone(mux *http.ServeMux) {
	h.Register(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == Path {
			h.ServeHTTP(w, r) // not POST: its 405
			return
		}
		h.fail(w, http.StatusNotFound, "no such route: ingest serves POST "+Path, 0)
	})
}

// Limiter returns the rate limiter, for the quest/drop API to share.
func (h *Handler) Limiter() *Limiter { return h.limiter }

// deadRaw returns the part of b a dead letter keeps (its Raw is cut at
// event.MaxDeadLetterRaw, and one byte more marks the cut): a copy of that
// much only, not of a whole 8 MiB body (helper-37).
func deadRaw(b []byte) string { return string(b[:min(len(b), event.MaxDeadLetterRaw+1)]) }

// AddrSlots counts the requests in flight per client address (IPBucket);
// an address has an entry only while it has one. The zero value is ready;
// the quest/drop API keeps one too.
type AddrSlots struct {
	mu sync.Mutex
	n  map[string]int
}

// Acquire takes a slot of addr unless it holds limit already.
func (s *AddrSlots) Acquire(addr string, limit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[addr] >= limit {
		return false
	}
	if s.n == nil {
		s.n = map[string]int{}
	}
	s.n[addr]++
	return true
}

// AddrRefusal says why Admit refused a request: the reason label of the
// rate-limited metric, the message for the client and how long it should
// wait.
type AddrRefusal struct {
	Reason, Message string
	Wait            time.Duration
}

// Admit applies the limits of client address addr (IPBucket), which come
// before any key is checked so that guessing keys is limited too: a slot
// of its requests in flight (at most limit; refused: retry after
// retryAfter), then a request of its rate in l. Admitted, the caller gives
// the slot back with Release when done; refused, it holds none. Ingest
// and the quest/drop API both admit this way.
func (s *AddrSlots) Admit(addr string, limit int, l *Limiter, retryAfter time.Duration) (ok bool, why AddrRefusal) {
	if !s.Acquire(addr, limit) {
		return false, AddrRefusal{"ip_in_flight", "too many requests of this client address in flight", retryAfter}
	}
	if wait := l.AllowIP(addr); wait > 0 {
		s.Release(addr)
		return false, AddrRefusal{"ip", "rate limit of this client address exceeded", wait}
	}
	return true, AddrRefusal{}
}

// Held returns the slots addr holds.
func (s *AddrSlots) Held(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[addr]
}

// Release gives back a slot of addr.
func (s *AddrSlots) Release(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[addr]--; s.n[addr] <= 0 {
		delete(s.n, addr)
	}
}

// hold adds n bytes to st's share of the buffered bytes, unless that
// would take them past MaxBufferBytes.
func (h *Handler) hold(st *reqState, n int64) bool {
	if h.buffered.Add(n) > h.cfg.maxBufferBytes {
		h.buffered.Add(-n)
		return false
	}
	st.held += n
	return true
}

// release gives back st's share of the buffered bytes (its buffers are
// pooled or dropped: either way no longer the request's).
func (h *Handler) release(st *reqState) {
	h.buffered.Add(-st.held)
	st.held = 0
}

// reqState is the per-request scratch memory, pooled.
type reqState struct {
	raw, dec []byte // the body as sent and gzip-decoded (readBody)
	held     int64  // of Handler.buffered: this request's share
	batch    event.Batch
	ids      map[string]struct{}
	recs     []kgo.Record
	buf      []byte
	acked    []string
	catalog  []int // indexes in recs (and acked) of catalog and lifecycle events
	rejected []rejection
	dead     []event.DeadLetter
}

type rejection struct {
	Index   int    `json:"index"`
	EventID string `json:"event_id"`
	Error   string `json:"error"`
}

const maxPooledBody = 4 << 20 // do not keep huge buffers alive in the pool

func (h *Handler) getState() *reqState {
	if st, ok := h.states.Get().(*reqState); ok {
		return st
	}
	return &reqState{ids: map[string]struct{}{}}
}

func (h *Handler) putState(st *reqState) {
	h.release(st)
	if cap(st.raw) > maxPooledBody || cap(st.dec) > maxPooledBody {
		return
	}
	st.raw, st.dec = st.raw[:0], st.dec[:0]
	clear(st.ids)
	clear(st.recs)
	st.recs = st.recs[:0]
	st.buf = st.buf[:0]
	clear(st.acked)
	st.acked = st.acked[:0]
	st.catalog = st.catalog[:0]
	st.rejected = st.rejected[:0]
	clear(st.dead)
	st.dead = st.dead[:0]
	clear(st.batch.Items)
	st.batch.Items = st.batch.Items[:0]
	h.states.Put(st)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.cfg.now()
	receivedAt := start.UnixMilli()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, http.StatusMethodNotAllowed, "method not allowed: use POST", 0)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(start.Add(h.cfg.readTimeout)) // not every ResponseWriter supports deadlines
	_ = rc.SetWriteDeadline(start.Add(h.cfg.writeTimeout))

	select {
	case h.inFlight <- struct{}{}:
		defer func() { <-h.inFlight }()
	default:
		h.fail(w, http.StatusServiceUnavailable, "ingest is at capacity; retry later", h.cfg.retryAfter)
		return
	}
	h.m.inFlight.Inc()
	defer h.m.inFlight.Dec()

	// The IP limit comes first, so that guessing keys is limited too.
	ip, viaProxy := h.edge.ClientIP(r)
	addr := ipBucket(ip)
	if ok, why := h.perIP.Admit(addr, h.cfg.maxInFlightIP, h.limiter, h.cfg.retryAfter); !ok {
		h.m.rateLimited.WithLabelValues(why.Reason).Inc()
		h.fail(w, http.StatusTooManyRequests, why.Message, why.Wait)
		return
	}
	defer h.perIP.Release(addr)
	key, err := h.cfg.keys.Authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="questline"`)
		h.fail(w, http.StatusUnauthorized, err.Error(), 0)
		return
	}
	dl := event.DeadLetter{Index: -1, ReceivedAt: receivedAt, Source: key.Scope.Source().String(), KeyID: key.ID}

	gz, err := checkHeaders(r, h.cfg.maxBodyBytes)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			dl.Kind = KindTooLarge
			dl.Reason = "body: Content-Length " + strconv.FormatInt(r.ContentLength, 10) + " exceeds the limit of " + strconv.FormatInt(h.cfg.maxBodyBytes, 10) + " bytes"
			h.failDead(w, http.StatusRequestEntityTooLarge, dl)
			return
		}
		h.fail(w, http.StatusUnsupportedMediaType, err.Error(), 0)
		return
	}

	st := h.getState()
	if !h.hold(st, int64(cap(st.raw)+cap(st.dec))) { // a pooled state's buffers
		h.fail(w, http.StatusServiceUnavailable, errBusy.Error(), h.cfg.retryAfter)
		h.putState(st)
		return
	}
	body, sent, err := readBody(r.Body, gz, h.cfg.maxBodyBytes, h.cfg.maxDecodedBytes, &st.raw, &st.dec,
		func(n int) bool { return h.hold(st, int64(n)) })
	if err != nil {
		defer h.putState(st)
		switch {
		case errors.Is(err, errBusy):
			h.fail(w, http.StatusServiceUnavailable, err.Error(), h.cfg.retryAfter)
		case errors.Is(err, errTooLarge):
			dl.Kind, dl.Raw = KindTooLarge, deadRaw(sent)
			dl.Reason = "body: larger than the limit of " + strconv.FormatInt(h.cfg.maxBodyBytes, 10) + " bytes as sent"
			if int64(len(sent)) <= h.cfg.maxBodyBytes { // a gzip body over the decoded limit
				dl.Raw = deadRaw(st.dec)
				dl.Reason = "body: larger than the limit of " + strconv.FormatInt(h.cfg.maxDecodedBytes, 10) + " bytes after gzip decoding"
			}
			h.failDead(w, http.StatusRequestEntityTooLarge, dl)
		case errors.Is(err, errBadGzip):
			dl.Kind, dl.Raw, dl.Reason = KindMalformedBody, deadRaw(sent), err.Error()
			h.failDead(w, http.StatusBadRequest, dl)
		case errors.Is(err, errReadBodyTimeout):
			h.fail(w, http.StatusRequestTimeout, err.Error(), 0)
		default:
			h.fail(w, http.StatusBadRequest, "body: read failed", 0)
		}
		return
	}
	h.m.bodyBytes.WithLabelValues("sent").Observe(float64(len(sent)))
	h.m.bodyBytes.WithLabelValues("decoded").Observe(float64(len(body)))

	if err := event.ParseBatch(body, &st.batch, h.cfg.maxEvents); err != nil {
		dl.Raw, dl.Reason = deadRaw(body), err.Error()
		if errors.Is(err, event.ErrTooManyEvents) {
			dl.Kind = KindTooLarge
			dl.Reason += " (limit " + strconv.Itoa(h.cfg.maxEvents) + ")"
			h.failDead(w, http.StatusRequestEntityTooLarge, dl)
		} else {
			dl.Kind = KindMalformedBody
			h.failDead(w, http.StatusBadRequest, dl)
		}
		h.putState(st)
		return
	}
	items := st.batch.Items
	h.m.batchEvents.Observe(float64(len(items)))

	edgeCountry := h.edge.Country(r, viaProxy)
	if wait := h.spendEventTokens(key.ID, items, edgeCountry); wait.d > 0 {
		h.m.rateLimited.WithLabelValues(wait.limit).Inc()
		h.fail(w, http.StatusTooManyRequests, "rate limit of this "+wait.what+" exceeded", wait.d)
		h.putState(st)
		return
	}

	accepted := h.classify(st, key, receivedAt, edgeCountry, dl)
	done, err := h.produce(st, key.ID)
	if err != nil {
		h.log.Warn("produce failed; answering 503", "key_id", key.ID, "events", len(items), "err", err)
		h.fail(w, http.StatusServiceUnavailable, "the event log is unavailable; retry the whole batch later", h.cfg.retryAfter)
		if done {
			h.putState(st)
		} else {
			h.release(st) // its records may still be in the client: not pooled, but not held
		}
		return
	}
	h.m.accepted.WithLabelValues(key.Scope.Source().String()).Add(float64(accepted))
	for _, d := range st.dead {
		h.m.rejected.WithLabelValues(d.Kind).Inc()
		h.m.deadLetters.WithLabelValues(d.Kind).Inc()
	}
	h.answer(w, accepted, st.rejected)
	h.putState(st)
}

type wait struct {
	d           time.Duration
	limit, what string
}

// spendEventTokens charges the batch's events to the key bucket and to
// each device's bucket (a batch usually comes from one device). A refused
// batch is charged nothing: what it spent before the refusing bucket is
// given back, so its retry is charged once (docs/ingest.md: a 429 batch
// left no trace).
func (h *Handler) spendEventTokens(keyID string, items []event.Item, edgeCountry string) wait {
	var total float64
	for i := 0; i < len(items); {
		j, cost := h.deviceRun(items, i, edgeCountry)
		total += cost
		if d := h.limiter.AllowDevice(items[i].Event.DeviceID, cost); d > 0 {
			h.refundDevices(items[:i], edgeCountry)
			return wait{d, "device", "device"}
		}
		i = j
	}
	if d := h.limiter.AllowKey(keyID, total); d > 0 {
		h.refundDevices(items, edgeCountry)
		return wait{d, "key", "API key"}
	}
	return wait{}
}

// deviceRun returns the end of the run of items from i with its device,
// and the run's cost in event tokens.
func (h *Handler) deviceRun(items []event.Item, i int, edgeCountry string) (j int, cost float64) {
	dev := items[i].Event.DeviceID
	for j = i; j < len(items) && items[j].Event.DeviceID == dev; j++ {
		cost += h.limiter.EventCost(items[j].Event.Country, edgeCountry)
	}
	return j, cost
}

// refundDevices gives back what spendEventTokens charged the devices of
// items.
func (h *Handler) refundDevices(items []event.Item, edgeCountry string) {
	for i := 0; i < len(items); {
		j, cost := h.deviceRun(items, i, edgeCountry)
		h.limiter.RefundDevice(items[i].Event.DeviceID, cost)
		i = j
	}
}

// classify completes each event with what ingest derives and sorts it into
// records (st.recs, accepted) and dead letters (st.dead, st.rejected). It
// returns the number of accepted events.
func (h *Handler) classify(st *reqState, key Key, receivedAt int64, edgeCountry string, base event.DeadLetter) int {
	b := &st.batch
	src := key.Scope.Source()
	maxFuture, minTime := receivedAt+h.cfg.maxFuture.Milliseconds(), receivedAt-h.cfg.maxAge.Milliseconds()
	accepted := 0
	for i := range b.Items {
		it := &b.Items[i]
		e := &it.Event
		var kind, reason string
		switch {
		case it.Err != nil:
			kind, reason = KindSchema, it.Err.Error()
		case key.Scope != ScopeServer && e.Type.ServerOnly():
			kind, reason = KindScope, "type: "+e.Type.String()+" may only be sent with a server-scope key"
		case key.Scope != ScopeServer && event.APIEventID(e.ID):
			kind, reason = KindScope, "event_id: ids beginning "+event.APIIDPrefix+" are the quest/drop API's and may only be sent with a server-scope key"
		default:
			e.EventTime = EventTime(src, e.TS, receivedAt, b)
			e.ReceivedAt = receivedAt
			if b.HasSentAt {
				e.SentAt = b.SentAt
				e.Has |= event.HasSentAt
			}
			if b.HasClockOffset {
				e.ClockOffsetMs = b.ClockOffsetMs
				e.Has |= event.HasClockOffset
			}
			e.Source, e.KeyID, e.EdgeCountry = src, key.ID, edgeCountry
			if e.EventTime > maxFuture {
				kind, reason = KindInFuture, "event_time: more than "+h.cfg.maxFuture.String()+" in the future (check the device clock, sent_at or clock_offset_ms)"
			} else if e.EventTime < minTime {
				kind, reason = KindTooOld, "event_time: older than the maximum age of "+h.cfg.maxAge.String()+" (check the device clock, sent_at or clock_offset_ms)"
			} else if !storable(e.TS) || e.Has&event.HasSentAt != 0 && !storable(e.SentAt) {
				field := "ts"
				if storable(e.TS) {
					field = "sent_at"
				}
				kind, reason = KindSchema, field+": the device clock is outside 1970-01-01..2106-02-07, the range questline stores"
			} else if _, dup := st.ids[e.ID]; dup {
				kind, reason = KindDuplicate, "event_id: duplicate of an earlier event in this batch"
			}
		}
		mark := len(st.buf)
		if kind == "" {
			st.buf = appendRecord(st.buf, e)
			if len(st.buf)-mark > maxEventRecord {
				st.buf = st.buf[:mark]
				kind, reason = KindTooLarge, "event: larger than the limit of "+strconv.Itoa(maxEventRecord)+" bytes per event"
			}
		}
		if kind == "" {
			st.ids[e.ID] = struct{}{}
			accepted++
			if h.recent.seen(e.ID) {
				st.buf = st.buf[:mark]
				h.m.deduplicated.Inc()
				continue
			}
			if e.Type.ServerOnly() {
				st.catalog = append(st.catalog, len(st.acked))
			}
			st.acked = append(st.acked, e.ID)
			continue
		}
		// The reason may quote the client's input at any length: the
		// answer quotes what the dead letter keeps of it.
		reason = event.BoundReason(reason)
		d := base
		d.Kind, d.Reason, d.Index, d.EventID, d.Raw = kind, reason, i, e.ID, it.Raw
		st.dead = append(st.dead, d)
		st.rejected = append(st.rejected, rejection{Index: i, EventID: echoID(e.ID), Error: reason})
	}
	return accepted
}

// maxEventRecord bounds one event's encoded Kafka record: Kafka refuses
// records over about 1 MiB (the producer's batch limit and the broker's
// default max.message.bytes), and one such record would fail its whole
// batch with a 503 on every retry. A larger event is rejected on its own.
const maxEventRecord = 512 << 10

// appendRecord appends the record of e to buf as key length (uvarint-free:
// 4 bytes), key, value length, value; produce slices records out of it.
func appendRecord(buf []byte, e *event.Event) []byte {
	k := e.Key()
	buf = appendU32(buf, uint32(len(k)))
	buf = append(buf, k...)
	n := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	buf = event.AppendBinary(buf, e)
	v := uint32(len(buf) - n - 4)
	buf[n], buf[n+1], buf[n+2], buf[n+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	return buf
}

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func readU32(b []byte) (uint32, []byte) {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), b[4:]
}

// echoID bounds the event_id echoed in an answer (it may be invalid).
func echoID(id string) string {
	if len(id) > event.MaxEventIDLen {
		return id[:event.MaxEventIDLen]
	}
	return id
}

// produce sends st's accepted events to questline.events and its dead
// letters to questline.events.dlq, and waits until Kafka acknowledges all
// of them or ProduceTimeout passes. A catalog or lifecycle event is
// preceded by its copies to every partition (kafka.ProducerCopies), all
// acknowledged before it is sent. done is false when it gave up waiting:
// the producer may still hold st's records, so st must not be reused.
func (h *Handler) produce(st *reqState, keyID string) (done bool, err error) {
	n := len(st.acked) + len(st.dead)
	if n == 0 {
		return true, nil
	}
	if cap(st.recs) < n {
		st.recs = make([]kgo.Record, n)
	}
	st.recs = st.recs[:n]
	i := 0
	for b := st.buf; len(b) > 0; i++ {
		var l uint32
		l, b = readU32(b)
		k := b[:l:l]
		b = b[l:]
		l, b = readU32(b)
		st.recs[i] = kgo.Record{Topic: kafka.TopicEvents, Key: k, Value: b[:l:l]}
		b = b[l:]
	}
	for _, d := range st.dead {
		st.recs[i] = kgo.Record{Topic: kafka.TopicDLQ, Key: []byte(keyID), Value: d.Marshal()}
		i++
	}

	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.produceTimeout)
	defer cancel()
	t0 := time.Now()
	if len(st.catalog) > 0 {
		var copies []*kgo.Record
		for _, c := range st.catalog {
			cs, err := h.copies.Copies(ctx, &st.recs[c])
			if err != nil {
				return true, err
			}
			copies = append(copies, cs...)
		}
		if done, err := h.send(ctx, len(copies), func(i int) *kgo.Record { return copies[i] }); !done || err != nil {
			if done {
				h.copies.Failed()
			}
			return done, err
		}
	}
	if done, err := h.send(ctx, n, func(i int) *kgo.Record { return &st.recs[i] }); !done || err != nil {
		return done, err
	}
	h.m.produce.Observe(time.Since(t0).Seconds())
	h.recent.add(st.acked)
	return true, nil
}

// send produces the n records rec(0)..rec(n-1) and waits for every
// acknowledgement; it returns the first error. done is false when ctx
// ended first.
func (h *Handler) send(ctx context.Context, n int, rec func(int) *kgo.Record) (done bool, err error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	wg.Add(n)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
		}
		wg.Done()
	}
	for i := range n {
		h.cl.Produce(ctx, rec(i), promise)
	}
	acked := make(chan struct{})
	go func() { wg.Wait(); close(acked) }()
	select {
	case <-acked:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return true, first
}

// failDead writes dl (a whole request that was refused) to the dead-letter
// topic, then answers status; if the dead letter cannot be written the
// answer is 503 instead, so the client retries and nothing is lost.
func (h *Handler) failDead(w http.ResponseWriter, status int, dl event.DeadLetter) {
	rec := &kgo.Record{Topic: kafka.TopicDLQ, Key: []byte(dl.KeyID), Value: dl.Marshal()}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.produceTimeout)
	defer cancel()
	if err := h.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		h.log.Warn("dead letter not written; answering 503", "key_id", dl.KeyID, "kind", dl.Kind, "err", err)
		h.fail(w, http.StatusServiceUnavailable, "the event log is unavailable; retry later", h.cfg.retryAfter)
		return
	}
	h.m.deadLetters.WithLabelValues(dl.Kind).Inc()
	h.fail(w, status, dl.Reason, 0)
}

// fail answers a whole-request error: {"error": ..., "server_time": ms},
// with Retry-After when retry > 0.
func (h *Handler) fail(w http.ResponseWriter, status int, msg string, retry time.Duration) {
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
	}
	b, _ := json.Marshal(struct {
		Error      string `json:"error"`
		ServerTime int64  `json:"server_time"`
	}{msg, h.cfg.now().UnixMilli()})
	h.write(w, status, b)
}

func (h *Handler) answer(w http.ResponseWriter, accepted int, rejected []rejection) {
	if rejected == nil {
		rejected = []rejection{}
	}
	b, _ := json.Marshal(struct {
		Accepted   int         `json:"accepted"`
		Rejected   []rejection `json:"rejected"`
		ServerTime int64       `json:"server_time"`
	}{accepted, rejected, h.cfg.now().UnixMilli()})
	h.write(w, http.StatusOK, b)
}

func (h *Handler) write(w http.ResponseWriter, status int, body []byte) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
	h.m.requests.WithLabelValues(strconv.Itoa(status)).Inc()
}
