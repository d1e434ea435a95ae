package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
)

// config is the configuration shared by the roles (SPEC §8). Every flag
// has an environment variable of the same meaning: QUESTLINE_ plus the
// flag name in upper case with '-' as '_'. A flag given on the command
// line wins over the environment, which wins over the default.
type config struct {
	HTTPAddr          string
	MetricsAddr       string
	KafkaBrokers      string
	EmbeddedKafkaAddr string
	EmbeddedKafkaSync bool
	DataDir           string
	ClickHouseDSN     string
	APIKeys           string
	APIKeysFile       string
	ClientKeys        string
	ClientKeysFile    string
	KafkaPartitions   int
	KafkaReplication  int
	LogLevel          string
	LogFormat         string
	Pprof             bool
}

// newFlagSet returns a flag set for the named command with the shared
// flags registered into cfg.
func newFlagSet(name string, stderr io.Writer, cfg *config) *flag.FlagSet {
	fs := flag.NewFlagSet("questline "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "listen address of ingest and the API (run serves both on it)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "127.0.0.1:9464", "listen address of /metrics, /healthz and /readyz (empty disables)")
	fs.StringVar(&cfg.KafkaBrokers, "kafka-brokers", "", "comma-separated Kafka brokers; empty selects the embedded broker")
	fs.StringVar(&cfg.EmbeddedKafkaAddr, "embedded-kafka-addr", "127.0.0.1:9092", "listen address of the embedded broker, reachable by any Kafka client")
	fs.BoolVar(&cfg.EmbeddedKafkaSync, "embedded-kafka-sync", false, "the embedded broker syncs each batch to disk before acknowledging it (a machine crash then loses nothing acknowledged; a kill of the process never does)")
	fs.StringVar(&cfg.DataDir, "data-dir", "./questline-data", "where the embedded broker and other local state live")
	fs.StringVar(&cfg.ClickHouseDSN, "clickhouse-dsn", "clickhouse://127.0.0.1:9000/questline", "ClickHouse DSN")
	fs.StringVar(&cfg.APIKeys, "api-keys", "", "comma-separated server-scope API keys")
	fs.StringVar(&cfg.APIKeysFile, "api-keys-file", "", "file of server-scope API keys, one per line (# comments); for production")
	fs.StringVar(&cfg.ClientKeys, "client-keys", "", "comma-separated client-scope API keys")
	fs.StringVar(&cfg.ClientKeysFile, "client-keys-file", "", "file of client-scope API keys, one per line (# comments)")
	fs.IntVar(&cfg.KafkaPartitions, "kafka-partitions", 8, "partitions of the topics questline creates")
	fs.IntVar(&cfg.KafkaReplication, "kafka-replication", -1, "replication factor of the topics questline creates (-1: the broker's default)")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "also serve Go's profiles (/debug/pprof/) on the metrics address")
	return fs
}

// parseFlags applies the QUESTLINE_* environment, then the arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "QUESTLINE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%w: %s=%q: %v", errUsage, name, v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return nil
}

// validate checks what parsing cannot: numbers in range.
func (c *config) validate() error {
	if c.KafkaPartitions < 1 || c.KafkaPartitions > math.MaxInt32 {
		return fmt.Errorf("%w: -kafka-partitions %d: want 1 or more", errUsage, c.KafkaPartitions)
	}
	if c.KafkaReplication != -1 && (c.KafkaReplication < 1 || c.KafkaReplication > math.MaxInt16) {
		return fmt.Errorf("%w: -kafka-replication %d: want -1 (the broker's default) or 1 to %d", errUsage, c.KafkaReplication, math.MaxInt16)
	}
	return nil
}

// brokers returns the configured broker list, or nil for the embedded one.
func (c *config) brokers() []string {
	var bs []string
	for _, b := range strings.Split(c.KafkaBrokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			bs = append(bs, b)
		}
	}
	return bs
}

// keys returns the server-scope and client-scope keys from the lists and
// files. A key in both scopes is an error: its scope would be ambiguous.
func (c *config) keys() (server, client []string, err error) {
	if server, err = keyList(c.APIKeys, c.APIKeysFile); err != nil {
		return nil, nil, err
	}
	if client, err = keyList(c.ClientKeys, c.ClientKeysFile); err != nil {
		return nil, nil, err
	}
	seen := make(map[string]bool, len(server))
	for _, k := range server {
		seen[k] = true
	}
	for _, k := range client {
		if seen[k] {
			return nil, nil, fmt.Errorf("%w: a key is configured as both a server key and a client key", errUsage)
		}
	}
	return server, client, nil
}

func keyList(list, file string) ([]string, error) {
	var keys []string
	for _, k := range strings.Split(list, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	if file == "" {
		return keys, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		keys = append(keys, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("key file %s: %w", file, err)
	}
	return keys, nil
}

// logger builds the process logger from -log-level and -log-format.
func (c *config) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("%w: -log-level %q", errUsage, c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: -log-format %q (want text or json)", errUsage, c.LogFormat)
}
