package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/ingest"
	"github.com/questline/questline/kafka"
)

// ingestFlags are the ingest role's own flags (also used by run). Each
// has its QUESTLINE_* variable like the shared ones, e.g.
// QUESTLINE_TRUSTED_PROXIES, QUESTLINE_EDGE_COUNTRY_HEADER.
type ingestFlags struct {
	edgeFlags
	countryHeader string
	maxBodyBytes  int64
	maxBuffered   int64
	maxInFlightIP int
	maxEvents     int
	maxAge        time.Duration
}

func (f *ingestFlags) register(fs *flag.FlagSet) {
	f.edgeFlags.register(fs)
	fs.StringVar(&f.countryHeader, "edge-country-header", "X-Edge-Country", "header in which a trusted edge proxy sends the client's country (e.g. CF-IPCountry)")
	fs.Int64Var(&f.maxBodyBytes, "ingest-max-body-bytes", 1<<20, "largest POST /v1/events body as sent (decoded: 8x, at least 8 MiB)")
	fs.Int64Var(&f.maxBuffered, "ingest-max-buffer-bytes", 512<<20, "most bytes the request bodies in flight may hold, as sent and decoded (past it: 503, Retry-After); at least one body of each limit")
	fs.IntVar(&f.maxInFlightIP, "ingest-max-in-flight-per-ip", 64, "most requests of one client address (IPv6: its /64) in flight at once (past it: 429, Retry-After)")
	fs.IntVar(&f.maxEvents, "ingest-max-events", 1000, "most events in one batch")
	fs.DurationVar(&f.maxAge, "ingest-max-age", 72*time.Hour, "oldest event_time accepted, relative to receipt")
}

// edgeFlags are the flags ingest and the API share: trusted proxies and
// rate limits (SPEC §3: the API has the same authentication and limits).
type edgeFlags struct {
	trustedProxies string
	rateKey        float64
	rateDevice     float64
	rateIP         float64
}

func (f *edgeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs of proxies whose X-Forwarded-For and edge country header are believed (empty: none)")
	fs.Float64Var(&f.rateKey, "rate-limit-key", 20000, "events (API: requests) per second per API key (burst: 2 s worth)")
	fs.Float64Var(&f.rateDevice, "rate-limit-device", 50, "events (API: requests) per second per device_id (burst: 10 s worth; a new device starts with 2 s worth)")
	fs.Float64Var(&f.rateIP, "rate-limit-ip", 50, "requests per second per client IP (burst: 4 s worth)")
}

// keyring returns the configured API keys.
func (a *app) keyring() (*ingest.Keyring, error) {
	server, client, err := a.cfg.keys()
	if err != nil {
		return nil, err
	}
	keys, err := ingest.NewKeyring(server, client)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if keys.Len() == 0 {
		return nil, fmt.Errorf("%w: no API keys: set QUESTLINE_API_KEYS and/or QUESTLINE_CLIENT_KEYS (or -api-keys, -client-keys)", errUsage)
	}
	return keys, nil
}

// proxies parses -trusted-proxies.
func (f *edgeFlags) proxies() ([]netip.Prefix, error) {
	var proxies []netip.Prefix
	for _, s := range strings.Split(f.trustedProxies, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%w: -trusted-proxies: %v", errUsage, err)
		}
		proxies = append(proxies, p)
	}
	return proxies, nil
}

// limiter builds the rate limiter of the -rate-limit-* flags.
func (f *edgeFlags) limiter() (*ingest.Limiter, error) {
	lim, err := ingest.NewLimiter(
		ingest.KeyRate(f.rateKey, 2*f.rateKey),
		ingest.DeviceRate(f.rateDevice, 10*f.rateDevice),
		ingest.NewDeviceBurst(2*f.rateDevice),
		ingest.IPRate(f.rateIP, 4*f.rateIP),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return lim, nil
}

// newIngest builds the ingest handler from the configuration; run mounts
// it beside the quest/drop API and shares its rate limiter.
func newIngest(a *app, cl *kgo.Client, f *ingestFlags) (*ingest.Handler, error) {
	keys, err := a.keyring()
	if err != nil {
		return nil, err
	}
	proxies, err := f.proxies()
	if err != nil {
		return nil, err
	}
	lim, err := f.limiter()
	if err != nil {
		return nil, err
	}
	decoded := max(8*f.maxBodyBytes, 8<<20)
	h, err := ingest.New(cl,
		ingest.Keys(keys),
		ingest.RateLimits(lim),
		ingest.TrustedProxies(proxies...),
		ingest.EdgeCountryHeader(f.countryHeader),
		ingest.MaxBodyBytes(f.maxBodyBytes),
		ingest.MaxDecodedBytes(decoded),
		ingest.MaxBufferBytes(max(f.maxBuffered, f.maxBodyBytes+decoded+2)),
		ingest.MaxEvents(f.maxEvents),
		ingest.MaxInFlightPerIP(f.maxInFlightIP),
		ingest.MaxAge(f.maxAge),
		ingest.Registerer(a.reg),
		ingest.Logger(a.log),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return h, nil
}

// runIngest is the ingest role: POST /v1/events on -http-addr.
func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f ingestFlags
	a, err := newApp("ingest", args, stderr, f.register)
	if err != nil {
		return err
	}
	defer a.close()
	brokers, err := a.kafka(ctx)
	if err != nil {
		return err
	}
	cl, err := kafka.NewClient(brokers, a.log)
	if err != nil {
		return err
	}
	a.onClose(cl.Close) // runs after serveHTTP returned: every answered batch is acknowledged
	a.readyCheck("kafka", cl.Ping)
	h, err := newIngest(a, cl, &f)
	if err != nil {
		return err
	}
	if err := a.serveAdmin(); err != nil {
		return err
	}
	mux := http.NewServeMux()
	h.RegisterAlone(mux)
	return serveHTTP(ctx, a, mux, publicTimeouts)
}

// serverTimeouts bound a connection's request: its headers, the whole
// request (headers and body: a route whose handler sets no deadline of
// its own, a 404, a 405, a GET, is bounded by it, as is net/http's
// discarding of a body the handler did not read), the answer, and an idle
// keep-alive connection.
type serverTimeouts struct {
	header, read, write, idle time.Duration
}

// publicTimeouts are -http-addr's. The handlers set their own deadlines
// within them (ingest.ReadTimeout 10 s and WriteTimeout 30 s, the API's
// RequestTimeout 10 s). Until session 14 the server set no read or write
// timeout: a request on a route without deadlines, with a body that never
// ended, held its connection for ever (helper-37).
var publicTimeouts = serverTimeouts{header: 5 * time.Second, read: 15 * time.Second, write: 45 * time.Second, idle: 2 * time.Minute}

// serveHTTP serves h on -http-addr until ctx ends (SIGINT, SIGTERM), then
// stops accepting and lets requests in flight finish (they wait for Kafka's
// acks) for up to 20 s.
func serveHTTP(ctx context.Context, a *app, h http.Handler, to serverTimeouts) error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: to.header,
		ReadTimeout:       to.read,
		WriteTimeout:      to.write,
		IdleTimeout:       to.idle,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          redactedErrorLog(a.log),
	}
	a.log.Info("http server listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}
