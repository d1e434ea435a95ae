package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/questline/questline/api"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/processors"
	"github.com/questline/questline/sinks/clickhouse"
)

// runFlags are the run role's flags: those of every role it runs.
type runFlags struct {
	ingest  ingestFlags
	api     apiFlags
	sink    sinkFlags
	process processFlags
	migrate bool
}

func (f *runFlags) register(fs *flag.FlagSet) {
	f.ingest.register(fs)
	f.api.register(fs)
	f.sink.register(fs)
	f.process.register(fs)
	fs.BoolVar(&f.migrate, "migrate", true, "create or upgrade the ClickHouse schema before starting (as questline migrate)")
}

// runAll runs every role in one process: ingest and the quest/drop API on
// one mux on -http-addr (sharing the rate limiter), the sink and the
// processors, on the embedded broker unless -kafka-brokers is given.
// The roles share the process's Kafka connection settings, registry and
// admin server; when one fails, the others are stopped and run returns its
// error.
func runAll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f runFlags
	a, err := newApp("run", args, stderr, f.register)
	if err != nil {
		return err
	}
	defer a.close()
	brokers, err := a.kafka(ctx, append(append([]kafka.Topic{}, processors.Topics...), api.Topics...)...)
	if err != nil {
		return err
	}
	if f.migrate {
		if err := clickhouse.Migrate(ctx, a.cfg.ClickHouseDSN, a.log); err != nil {
			return err
		}
	}
	if err := a.serveAdmin(); err != nil {
		return err
	}

	// Ingest and the API.
	cl, err := kafka.NewClient(brokers, a.log)
	if err != nil {
		return err
	}
	a.onClose(cl.Close)
	a.readyCheck("kafka", cl.Ping)
	h, err := newIngest(a, cl, &f.ingest)
	if err != nil {
		return err
	}
	ah, err := newAPI(a, cl, brokers, &f.api, &f.ingest.edgeFlags, h.Limiter())
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	h.Register(mux)
	ah.Register(mux)

	// Sink.
	s, err := f.sink.newSink(ctx, a, brokers)
	if err != nil {
		return err
	}

	serve, claims := httpAndClaims(a, mux, ah.Run) // ingest and the API
	roles := map[string]func(context.Context) error{
		"http":       serve,
		"claims-log": claims,
		"sink":       s.Run,
		"process": func(ctx context.Context) error {
			return processors.Run(ctx, f.process.config(a, brokers), a.reg, a.log)
		},
	}
	return runRoles(ctx, a, roles)
}

// httpAndClaims returns the roles of the HTTP server of h and of the
// claims log's reader run by claims, the reader stopping after the
// server's drain (stopsAfter).
func httpAndClaims(a *app, h http.Handler, claims func(context.Context) error) (serve, read func(context.Context) error) {
	done := make(chan struct{})
	serve = func(ctx context.Context) error {
		defer close(done)
		return serveHTTP(ctx, a, h, publicTimeouts)
	}
	return serve, stopsAfter(done, claims)
}

// stopsAfter returns role run with a context that ends when done is
// closed, not when the role's own context ends: the claims log's reader
// outlives the HTTP server's drain, so a claim in flight at a shutdown
// still gets its decision (it got 503 when both stopped at once). done
// must close once the roles stop (the HTTP role's return).
func stopsAfter(done <-chan struct{}, role func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		go func() {
			select {
			case <-done:
				cancel()
			case <-rctx.Done():
			}
		}()
		return role(rctx)
	}
}

// runRoles runs each role until ctx ends or one of them fails; then it
// stops the others and returns the first failure.
func runRoles(ctx context.Context, a *app, roles map[string]func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for name, run := range roles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := run(ctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", name, err)
				}
				mu.Unlock()
				a.log.Error("role failed; stopping the others", "failed", name, "err", err)
			}
			cancel()
		}()
	}
	a.log.Info("all roles running")
	wg.Wait()
	return firstErr
}
