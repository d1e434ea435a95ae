package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/questline/questline/kafka"
)

// app is what every role process shares: configuration, logger, its own
// Prometheus registry, the admin server (/metrics, /healthz, /readyz) and
// the resources to release at exit, in reverse order.
type app struct {
	name string
	cfg  config
	log  *slog.Logger
	reg  *prometheus.Registry

	mu        sync.Mutex
	checks    map[string]func(context.Context) error
	closers   []func()
	adminAddr net.Addr // where serveAdmin listens, once it does
}

// newApp parses args for the named role. flags, if not nil, registers the
// role's own flags before parsing.
func newApp(name string, args []string, stderr io.Writer, flags func(*flag.FlagSet)) (*app, error) {
	a := &app{name: name, checks: map[string]func(context.Context) error{}}
	fs := newFlagSet(name, stderr, &a.cfg)
	if flags != nil {
		flags(fs)
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if err := a.cfg.validate(); err != nil {
		return nil, err
	}
	log, err := a.cfg.logger(stderr)
	if err != nil {
		return nil, err
	}
	a.log = log.With("role", name)
	a.reg = prometheus.NewRegistry()
	a.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return a, nil
}

// onClose registers fn to run at close, before those registered earlier.
func (a *app) onClose(fn func()) {
	a.mu.Lock()
	a.closers = append(a.closers, fn)
	a.mu.Unlock()
}

// readyCheck adds a named readiness check to /readyz.
func (a *app) readyCheck(name string, fn func(context.Context) error) {
	a.mu.Lock()
	a.checks[name] = fn
	a.mu.Unlock()
}

func (a *app) close() {
	a.mu.Lock()
	cs := a.closers
	a.closers = nil
	a.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

// serveAdmin starts the admin server on -metrics-addr: /metrics (this
// process's registry only), /healthz (the process is up) and /readyz (every
// readiness check passes; 503 with the failing ones otherwise); with -pprof
// also /debug/pprof/ (off by default: profiles show the code's internals
// and cost CPU while they run, so an operator turns them on).
func (a *app) serveAdmin() error {
	if a.cfg.MetricsAddr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", a.serveReady)
	if a.cfg.Pprof {
		// No /debug/pprof/cmdline: the command line may hold secrets
		// (-api-keys, -client-keys, a -clickhouse-dsn with a password),
		// and nothing guards the metrics address. The index answers 404
		// for it (no such profile).
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	a.adminAddr = ln.Addr()
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 90 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10} // write: pprof's 30 s CPU profile fits
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin server", "err", err)
		}
	}()
	a.log.Info("admin server listening", "addr", ln.Addr().String())
	a.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return nil
}

func (a *app) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	a.mu.Lock()
	checks := make(map[string]func(context.Context) error, len(a.checks))
	for k, v := range a.checks {
		checks[k] = v
	}
	a.mu.Unlock()
	var failed []string
	for name, check := range checks {
		if err := check(ctx); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
		}
	}
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, f := range failed {
			fmt.Fprintln(w, f)
		}
		return
	}
	io.WriteString(w, "ready\n")
}

// kafkaBrokers returns the brokers to use. With -kafka-brokers empty, the
// process starts the embedded broker on -embedded-kafka-addr with its data
// under -data-dir/kafka; if another questline process already holds that
// address, this one uses it as a client instead, so roles can run as
// separate processes against one embedded broker.
func (a *app) kafkaBrokers(ctx context.Context) ([]string, error) {
	if bs := a.cfg.brokers(); len(bs) > 0 {
		return bs, nil
	}
	dir := filepath.Join(a.cfg.DataDir, "kafka")
	e, err := kafka.StartEmbedded(
		kafka.EmbeddedAddr(a.cfg.EmbeddedKafkaAddr),
		kafka.EmbeddedDataDir(dir),
		kafka.EmbeddedDefaultPartitions(a.cfg.KafkaPartitions),
		kafka.EmbeddedSyncWrites(a.cfg.EmbeddedKafkaSync),
		kafka.EmbeddedLogger(a.log),
	)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			a.log.Info("embedded broker address in use; connecting to it as a client", "addr", a.cfg.EmbeddedKafkaAddr)
			return []string{a.cfg.EmbeddedKafkaAddr}, nil
		}
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil { // the event log, snapshots: ours to read only
		e.Close()
		return nil, err
	}
	a.log.Info("embedded Kafka broker started", "addr", e.Addrs()[0], "data_dir", dir)
	a.onClose(e.Close)
	return e.Addrs(), nil
}

// kafka returns the brokers (see kafkaBrokers) once kafka.CoreTopics and
// topics exist.
func (a *app) kafka(ctx context.Context, topics ...kafka.Topic) ([]string, error) {
	brokers, err := a.kafkaBrokers(ctx)
	if err != nil {
		return nil, err
	}
	all := append(append([]kafka.Topic{}, kafka.CoreTopics...), topics...)
	if err := a.ensureTopics(ctx, brokers, all...); err != nil {
		return nil, err
	}
	return brokers, nil
}

// ensureTopics creates topics with the configured partitions and
// replication, retrying while the cluster comes up.
func (a *app) ensureTopics(ctx context.Context, brokers []string, topics ...kafka.Topic) error {
	cl, err := kafka.NewClient(brokers, a.log)
	if err != nil {
		return err
	}
	defer cl.Close()
	var last error
	for attempt := 0; attempt < 30; attempt++ {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		last = kafka.EnsureTopics(tctx, cl, int32(a.cfg.KafkaPartitions), int16(a.cfg.KafkaReplication), topics...)
		cancel()
		if last == nil || ctx.Err() != nil {
			break
		}
		a.log.Warn("creating topics failed; retrying", "err", last)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if last != nil {
		return fmt.Errorf("kafka at %v: %w", brokers, last)
	}
	return nil
}
