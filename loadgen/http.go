package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Sender delivers batches. Send returns once the batch is accepted (or
// failed for good); it may be called concurrently.
type Sender interface {
	Send(ctx context.Context, b *Batch) (SendResult, error)
}

// Preparer is implemented by a Sender that can build a batch's request
// before its send. Run calls Prepare on every batch of a pregenerated run
// (Config.Pregenerate) before it starts sending.
type Preparer interface {
	Prepare(b *Batch)
}

// SendResult is the outcome of one delivered batch.
type SendResult struct {
	Accepted int
	Rejected int // events the ingest rejected (they went to its dead-letter topic)
	Retries  int // attempts beyond the first
}

// StatusError is a whole-request failure that retrying does not fix
// (400, 401, 403, 413, 415, or retries exhausted).
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("loadgen: ingest answered %d: %s", e.Code, e.Body)
}

// HTTPSender posts batches to the ingest's POST /v1/events, gzipped, with
// the client key (or the server key for server batches). It retries a
// whole batch after network errors and 5xx answers, honours Retry-After on
// 429 and 503, and measures each NTP device's clock offset from the
// server_time of answers.
type HTTPSender struct {
	url        string
	clientKey  string
	serverKey  string
	client     *http.Client
	edgeHeader string
	forwarded  bool
	now        func() time.Time
	maxRetries int
	minBackoff time.Duration
	maxBackoff time.Duration

	mu      sync.Mutex
	offsets map[string]int64 // device → measured offset, ms

	// gzips are reused: a gzip.Writer's compressor state is large, and a
	// new one per request made allocation the sender's main cost. So are
	// the JSON bodies before compression.
	gzips     sync.Pool
	gzipLevel int
	bodies    sync.Pool // *[]byte
}

// HTTPOption configures an HTTPSender.
type HTTPOption func(*HTTPSender)

// WithHTTPClient sets the HTTP client. Default: a client with a 30 s timeout.
func WithHTTPClient(c *http.Client) HTTPOption { return func(s *HTTPSender) { s.client = c } }

// WithEdgeCountryHeader sets the header that carries the device's network
// country, as an edge (CDN) would add it; "" sends none. Default
// "X-Edge-Country".
func WithEdgeCountryHeader(name string) HTTPOption {
	return func(s *HTTPSender) { s.edgeHeader = name }
}

// WithForwardedFor makes client batches carry X-Forwarded-For with an
// address derived from the device id (in 100.64.0.0/10, shared address
// space), as an edge proxy would, so that per-IP rate limits see many
// clients. The ingest believes it (and the edge country header) only when
// the loadgen's own address is one of its trusted proxies. Default true.
func WithForwardedFor(on bool) HTTPOption { return func(s *HTTPSender) { s.forwarded = on } }

// WithClock sets the wall clock used for sent_at and offset measurements.
// Default time.Now.
func WithClock(now func() time.Time) HTTPOption { return func(s *HTTPSender) { s.now = now } }

// WithRetries sets the attempts after the first before a batch fails, and
// the exponential backoff bounds between them. Default 10, 100 ms, 5 s.
func WithRetries(n int, minBackoff, maxBackoff time.Duration) HTTPOption {
	return func(s *HTTPSender) { s.maxRetries, s.minBackoff, s.maxBackoff = n, minBackoff, maxBackoff }
}

// WithGzipLevel sets the compression level of request bodies
// (compress/gzip's levels; github.com/klauspost/compress does the work).
// Default gzip.BestSpeed: on the sender's CPU budget the default level
// cost about a quarter of the load generator's time for bodies about 15 %
// smaller.
func WithGzipLevel(level int) HTTPOption { return func(s *HTTPSender) { s.gzipLevel = level } }

// NewHTTPSender returns a sender to the ingest at baseURL (e.g.
// "http://127.0.0.1:8080").
func NewHTTPSender(baseURL, clientKey, serverKey string, opts ...HTTPOption) *HTTPSender {
	s := &HTTPSender{
		url:       strings.TrimRight(baseURL, "/") + "/v1/events",
		clientKey: clientKey,
		serverKey: serverKey,
		// Keep a connection per concurrent batch alive (the default keeps
		// 2 per host and opens a new one for every other request).
		client:     &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}},
		edgeHeader: "X-Edge-Country",
		forwarded:  true,
		now:        time.Now,
		maxRetries: 10,
		minBackoff: 100 * time.Millisecond,
		maxBackoff: 5 * time.Second,
		offsets:    map[string]int64{},
		gzipLevel:  gzip.BestSpeed,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

type ingestAnswer struct {
	Accepted   int               `json:"accepted"`
	Rejected   []json.RawMessage `json:"rejected"`
	ServerTime int64             `json:"server_time"`
}

// Send delivers b, retrying as needed.
func (s *HTTPSender) Send(ctx context.Context, b *Batch) (SendResult, error) {
	var res SendResult
	backoff := s.minBackoff
	for attempt := 0; ; attempt++ {
		wait, err := s.attempt(ctx, b, &res)
		if err == nil {
			return res, nil
		}
		var se *StatusError
		if errors.As(err, &se) && wait == 0 {
			return res, err
		}
		if attempt >= s.maxRetries {
			return res, fmt.Errorf("loadgen: giving up after %d attempts: %w", attempt+1, err)
		}
		if wait == 0 {
			wait = backoff
			backoff = min(2*backoff, s.maxBackoff)
		}
		res.Retries++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return res, ctx.Err()
		case <-t.C:
		}
	}
}

// attempt makes one request. It returns a wait > 0 to retry after it, an
// error with wait 0 that is retried with backoff (network, 5xx), or a
// *StatusError with wait 0 that is final.
func (s *HTTPSender) attempt(ctx context.Context, b *Batch, res *SendResult) (time.Duration, error) {

	// sent_at is the device clock now: the true wall clock plus the skew,
	// whatever the simulated time, so ingest's derivation recovers the
	// true event time even when the run replays the past at high speed.
	sentAt := s.now().UnixMilli() + b.Skew
	offset, hasOffset := int64(0), false
	switch b.Clock {
	case ClockNTP:
		s.mu.Lock()
		offset, hasOffset = s.offsets[b.DeviceID]
		s.mu.Unlock()
	case ClockEdge:
		// The edge node measured its devices' clock (edge.go).
		offset, hasOffset = -b.Skew, true
	}
	reqBody := b.prepared
	if reqBody == nil {
		reqBody = s.encode(b, sentAt, offset, hasOffset)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(reqBody))
	if err != nil {
		return 0, &StatusError{Code: 0, Body: err.Error()}
	}
	key := s.clientKey
	if b.Server {
		key = s.serverKey
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	if s.edgeHeader != "" && b.EdgeCountry != "" {
		req.Header.Set(s.edgeHeader, b.EdgeCountry)
	}
	if s.forwarded && !b.Server {
		if b.Clock == ClockEdge {
			req.Header.Set("X-Forwarded-For", edgeIP(b.EdgeCountry))
		} else {
			req.Header.Set("X-Forwarded-For", deviceIP(b.DeviceID))
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, &StatusError{Body: ctx.Err().Error()}
		}
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, err
	}
	recvDevice := s.now().UnixMilli() + b.Skew
	switch {
	case resp.StatusCode == http.StatusOK:
		var a ingestAnswer
		if err := json.Unmarshal(body, &a); err != nil {
			return 0, fmt.Errorf("loadgen: bad ingest answer: %w", err)
		}
		res.Accepted, res.Rejected = a.Accepted, len(a.Rejected)
		if b.Clock == ClockNTP && a.ServerTime > 0 {
			// NTP-style: offset = server_time − midpoint of send and
			// receive on the device clock, rounded to the second.
			mid := (sentAt + recvDevice) / 2
			off := int64(math.Round(float64(a.ServerTime-mid)/1000)) * 1000
			s.mu.Lock()
			s.offsets[b.DeviceID] = off
			s.mu.Unlock()
		}
		return 0, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("loadgen: ingest answered %d", resp.StatusCode)
	case resp.StatusCode >= 500:
		return 0, fmt.Errorf("loadgen: ingest answered %d: %s", resp.StatusCode, snippet(body))
	default:
		return 0, &StatusError{Code: resp.StatusCode, Body: snippet(body)}
	}
}

// Prepare builds b's gzipped body now when it does not depend on when it
// is sent: a server batch (trusted as it is) or an edge node's request
// (clock_offset_ms given), whose event times ingest derives from ts and
// the offset alone. Its sent_at is the time the batch is due (SendAt, on
// its clock): a request held up by a slow ingest then shows the delay as
// the pipeline's, received_at − sent_at. A device's own batch is left to
// be built at its send, where sent_at is the device clock at that moment
// (ingest may derive event times from it) and an NTP device's offset is
// the latest measured.
func (s *HTTPSender) Prepare(b *Batch) {
	switch {
	case b.Server && b.Clock != ClockEdge:
		b.prepared = s.encode(b, b.SendAt+b.Skew, 0, false)
	case b.Clock == ClockEdge:
		b.prepared = s.encode(b, b.SendAt+b.Skew, -b.Skew, true)
	}
}

// encode returns b's request body, gzipped.
func (s *HTTPSender) encode(b *Batch, sentAt, offset int64, hasOffset bool) []byte {
	js, _ := s.bodies.Get().(*[]byte)
	if js == nil {
		js = new([]byte)
	}
	*js = b.AppendJSON((*js)[:0], sentAt, offset, hasOffset)
	// A fresh compressed buffer per body: the transport may still read a
	// request body after Do returns (an early answer), so it is not
	// pooled; sized once instead of grown.
	buf := bytes.NewBuffer(make([]byte, 0, len(*js)/3+512))
	zw, _ := s.gzips.Get().(*gzip.Writer)
	if zw == nil {
		var err error
		if zw, err = gzip.NewWriterLevel(buf, s.gzipLevel); err != nil {
			zw = gzip.NewWriter(buf)
		}
	} else {
		zw.Reset(buf)
	}
	zw.Write(*js)
	zw.Close()
	s.gzips.Put(zw)
	if cap(*js) <= 4<<20 {
		s.bodies.Put(js)
	}
	return buf.Bytes()
}

// retryAfter parses Retry-After (seconds or an HTTP date); default 1 s.
func retryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return max(time.Duration(n)*time.Second, 10*time.Millisecond)
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return time.Second
}

// deviceIP maps a device id to a stable address in 100.64.0.0/10.
func deviceIP(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	v := h.Sum32()
	return "100." + strconv.Itoa(64+int(v>>16&63)) + "." + strconv.Itoa(int(v>>8&255)) + "." + strconv.Itoa(int(v&255))
}

// edgeIP maps an edge node (one per country) to a stable address in
// 198.18.0.0/15 (benchmarking).
func edgeIP(country string) string {
	h := fnv.New32a()
	h.Write([]byte(country))
	v := h.Sum32()
	return "198." + strconv.Itoa(18+int(v>>8&1)) + "." + strconv.Itoa(int(v&255)) + ".1"
}

func snippet(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return strings.TrimSpace(string(b))
}
