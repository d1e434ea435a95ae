package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/api"
	"github.com/questline/questline/ingest"
	"github.com/questline/questline/kafka"
)

// apiFlags are the API's own flags (also used by run). QUESTLINE_API_SECRET
// is -api-secret, like every flag.
type apiFlags struct {
	secret        string
	secretFile    string
	maxBodyBytes  int64
	maxInFlightIP int
	retention     time.Duration
	snapshotDir   string
	snapshotEvery time.Duration
	attemptMaxAge time.Duration
}

func (f *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.secret, "api-secret", "", "secret (at least 16 bytes) signing quest attempt tokens; every API instance needs the same one (empty: a random one per process, tokens then work only on the instance that issued them)")
	fs.StringVar(&f.secretFile, "api-secret-file", "", "file holding -api-secret (for production; wins over -api-secret)")
	fs.Int64Var(&f.maxBodyBytes, "api-max-body-bytes", 64<<10, "largest quest/drop API request body")
	fs.IntVar(&f.maxInFlightIP, "api-max-in-flight-per-ip", 64, "most API requests of one client address (IPv6: its /64) in flight at once (past it: 429, Retry-After)")
	fs.DurationVar(&f.retention, "api-claims-retention", api.DefaultClaimsRetention, "how long after a drop closed (ended, or past its end time; measured in the claims log's record times) the API keeps its claims' decisions; later, claims on it are answered 410 and decided no more (0: keep for ever); every API instance needs the same")
	fs.StringVar(&f.snapshotDir, "api-snapshot-dir", "", "where the API writes snapshots of its claims fold, restored at start so that it reads the claims log from their offsets, not from the start (default <data-dir>/api-snapshots)")
	fs.DurationVar(&f.attemptMaxAge, "api-attempt-max-age", api.DefaultAttemptMaxAge, "how long after its start a quest attempt may complete; keep it below the processors' de-duplication horizon (about 31m with the default windows) minus 5m, or a completion retried late can count twice (docs/api.md)")
	fs.DurationVar(&f.snapshotEvery, "api-snapshot-interval", time.Minute, "how often the API snapshots the claims fold's changed partitions (also at a clean stop; 0: no snapshots, written or restored)")
}

// secretBytes returns the configured token secret, or nil for none.
func (f *apiFlags) secretBytes() ([]byte, error) {
	s := f.secret
	if f.secretFile != "" {
		b, err := os.ReadFile(f.secretFile)
		if err != nil {
			return nil, fmt.Errorf("%w: -api-secret-file: %v", errUsage, err)
		}
		s = strings.TrimSpace(string(b))
	}
	if s == "" {
		return nil, nil
	}
	if len(s) < 16 {
		return nil, fmt.Errorf("%w: the API secret must be at least 16 bytes", errUsage)
	}
	return []byte(s), nil
}

// newAPI builds the quest/drop API producing with cl and reading
// questline.claims from brokers; lim is ingest's limiter under run.
func newAPI(a *app, cl *kgo.Client, brokers []string, f *apiFlags, e *edgeFlags, lim *ingest.Limiter) (*api.Handler, error) {
	keys, err := a.keyring()
	if err != nil {
		return nil, err
	}
	proxies, err := e.proxies()
	if err != nil {
		return nil, err
	}
	if lim == nil {
		if lim, err = e.limiter(); err != nil {
			return nil, err
		}
	}
	secret, err := f.secretBytes()
	if err != nil {
		return nil, err
	}
	opts := []api.Option{
		api.Keys(keys), api.RateLimits(lim), api.TrustedProxies(proxies...),
		api.MaxBodyBytes(f.maxBodyBytes), api.MaxInFlightPerIP(f.maxInFlightIP), api.Registerer(a.reg), api.Logger(a.log),
		api.ClaimsRetention(f.retention), api.AttemptMaxAge(f.attemptMaxAge),
	}
	if f.snapshotEvery > 0 {
		dir := f.snapshotDir
		if dir == "" {
			dir = filepath.Join(a.cfg.DataDir, "api-snapshots")
		}
		opts = append(opts, api.Snapshots(dir, f.snapshotEvery))
	}
	if secret != nil {
		opts = append(opts, api.Secret(secret))
	}
	h, err := api.New(cl, brokers, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	a.readyCheck("claims-log", h.Ready)
	return h, nil
}

// runAPI is the api role: the quest/drop API on -http-addr, and its
// readers of questline.claims (the claims sequencer and outcome relay).
func runAPI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		f apiFlags
		e edgeFlags
	)
	a, err := newApp("api", args, stderr, func(fs *flag.FlagSet) { f.register(fs); e.register(fs) })
	if err != nil {
		return err
	}
	defer a.close()
	brokers, err := a.kafka(ctx, api.Topics...)
	if err != nil {
		return err
	}
	cl, err := kafka.NewClient(brokers, a.log)
	if err != nil {
		return err
	}
	a.onClose(cl.Close) // after serveHTTP returned: every answer's events are acknowledged
	a.readyCheck("kafka", cl.Ping)
	h, err := newAPI(a, cl, brokers, &f, &e, nil)
	if err != nil {
		return err
	}
	if err := a.serveAdmin(); err != nil {
		return err
	}
	mux := http.NewServeMux()
	h.Register(mux)
	serve, claims := httpAndClaims(a, mux, h.Run)
	return runRoles(ctx, a, map[string]func(context.Context) error{"api": serve, "claims-log": claims})
}
