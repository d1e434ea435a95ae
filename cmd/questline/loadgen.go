package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/questline/questline/kafka"
	"github.com/questline/questline/loadgen"
)

// loadgenFlags map onto loadgen.Config; defaults are DefaultConfig's.
type loadgenFlags struct {
	cfg       loadgen.Config
	origin    string
	sendTo    string
	ingestURL string
	clientKey string
	serverKey string
	truth     string
}

func (f *loadgenFlags) register(fs *flag.FlagSet) {
	f.cfg = loadgen.DefaultConfig()
	c := &f.cfg
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seed of the run: the same seed and flags give the same events, ids included")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "target events per second (of simulated time)")
	fs.IntVar(&c.Count, "count", 0, "stop after this many events (count or duration is required)")
	fs.DurationVar(&c.Duration, "duration", 0, "stop after this much simulated time")
	fs.StringVar(&f.origin, "origin", "", "simulated start time, RFC 3339 (default: now)")
	fs.Float64Var(&c.Speed, "speed", c.Speed, "simulated seconds per wall second; 0 sends as fast as possible (then set -origin in the past)")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "batches in flight at once")
	fs.Float64Var(&c.BotShare, "bot-share", c.BotShare, "share of sessions run by bots")
	fs.Float64Var(&c.ViolationRate, "violation-rate", c.ViolationRate, "probability per auction and per kind of an injected integrity violation")
	fs.DurationVar(&c.FirstDrop, "drop-first", c.FirstDrop, "when the first live drop starts, after the origin")
	fs.DurationVar(&c.DropLength, "drop-length", c.DropLength, "how long each drop is live")
	fs.DurationVar(&c.DropEvery, "drop-every", c.DropEvery, "time between drop starts")
	fs.StringVar(&f.sendTo, "send-to", "http", "where events go: http (the real ingest) or kafka (straight to questline.events)")
	fs.StringVar(&f.ingestURL, "ingest-url", "", "ingest base URL (default: http://<-http-addr>)")
	fs.StringVar(&f.clientKey, "client-key", "", "client-scope key to send with (default: the first of -client-keys)")
	fs.StringVar(&f.serverKey, "server-key", "", "server-scope key for catalog and drop lifecycle events (default: the first of -api-keys)")
	fs.IntVar(&c.EdgeEvents, "edge-events", 0, "send through edge nodes: up to this many events of many devices per request (one edge country and clock correction each; docs/loadgen.md); 0: each device sends its own batches")
	fs.DurationVar(&c.EdgeHold, "edge-hold", c.EdgeHold, "how long (simulated time) an edge node holds a request open for more events")
	fs.BoolVar(&c.EdgeCorrect, "edge-correct", false, "with -edge-events: the edge nodes correct skewed devices' ts themselves (device time in props.device_ts), so every device of an edge country shares its requests")
	fs.BoolVar(&c.Pregenerate, "pregenerate", false, "build every request before sending the first, so the sending is timed alone (the whole run is held in memory: about 1 GB and 300 bytes per event of -rate × -duration); with -speed 1, set -origin ahead by the generation time")
	fs.BoolVar(&c.SkipExpected, "skip-expected", false, "keep only the planted truth and event counts (the expected values cost about 300 B per event)")
	fs.StringVar(&f.truth, "truth", "", "write the ground truth of the run to this JSON file (default: <data-dir>/truth-<seed>.json)")
}

// runLoadgen is the loadgen role: synthetic traffic through ingest (or
// straight to Kafka) and the ground truth of what it sent.
func runLoadgen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f loadgenFlags
	a, err := newApp("loadgen", args, stderr, f.register)
	if err != nil {
		return err
	}
	defer a.close()
	if f.origin != "" {
		t, err := time.Parse(time.RFC3339, f.origin)
		if err != nil {
			return fmt.Errorf("%w: -origin: %v", errUsage, err)
		}
		f.cfg.Origin = t
	}
	if err := f.cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	out, err := f.sender(ctx, a)
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" && !f.cfg.Pregenerate {
		// The model's live heap is small and it allocates per event: GC
		// took about 15 % of the generator's CPU at the default 100. A
		// pregenerated run keeps the default: it holds the whole run in
		// its heap, which 400 would let grow to five times that (2.45
		// against 1.34 GB for 30 s at 50,000 events/s), and it allocates
		// little once sending.
		debug.SetGCPercent(400)
	}
	truth, runErr := loadgen.Run(ctx, f.cfg, out, stderr)
	if truth == nil {
		return runErr
	}
	path := f.truth
	if path == "" {
		path = filepath.Join(a.cfg.DataDir, fmt.Sprintf("truth-%d.json", f.cfg.Seed))
	}
	if err := writeTruth(path, truth); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sent %d events in %d batches (%d batches failed); ground truth in %s\n",
		truth.Run.Events, truth.Run.Batches, truth.Run.SendErrors, path)
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return nil
}

func (f *loadgenFlags) sender(ctx context.Context, a *app) (loadgen.Sender, error) {
	switch f.sendTo {
	case "http":
		server, client, err := a.cfg.keys()
		if err != nil {
			return nil, err
		}
		if f.clientKey == "" && len(client) > 0 {
			f.clientKey = client[0]
		}
		if f.serverKey == "" && len(server) > 0 {
			f.serverKey = server[0]
		}
		if f.clientKey == "" || f.serverKey == "" {
			return nil, fmt.Errorf("%w: loadgen needs a client key and a server key (-client-key/-server-key, or QUESTLINE_CLIENT_KEYS/QUESTLINE_API_KEYS)", errUsage)
		}
		url := f.ingestURL
		if url == "" {
			url = "http://" + a.cfg.HTTPAddr
		}
		return loadgen.NewHTTPSender(url, f.clientKey, f.serverKey), nil
	case "kafka":
		brokers := a.cfg.brokers()
		if len(brokers) == 0 {
			brokers = []string{a.cfg.EmbeddedKafkaAddr}
		}
		cl, err := kafka.NewClient(brokers, a.log)
		if err != nil {
			return nil, err
		}
		a.onClose(cl.Close)
		return loadgen.NewKafkaSender(cl), nil
	}
	return nil, fmt.Errorf("%w: -send-to %q (want http or kafka)", errUsage, f.sendTo)
}

func writeTruth(path string, t *loadgen.Truth) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	fh, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := t.WriteJSON(fh); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
