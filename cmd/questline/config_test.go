package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigPrecedence(t *testing.T) {
	t.Setenv("QUESTLINE_HTTP_ADDR", "127.0.0.1:7000")
	t.Setenv("QUESTLINE_KAFKA_BROKERS", "a:9092, b:9092,")
	t.Setenv("QUESTLINE_METRICS_ADDR", "127.0.0.1:7001")
	var cfg config
	fs := newFlagSet("test", &bytes.Buffer{}, &cfg)
	if err := parseFlags(fs, []string{"-metrics-addr", "127.0.0.1:7002"}); err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:7000" {
		t.Errorf("env not applied: http addr %q", cfg.HTTPAddr)
	}
	if cfg.MetricsAddr != "127.0.0.1:7002" {
		t.Errorf("flag must win over env: metrics addr %q", cfg.MetricsAddr)
	}
	if got := strings.Join(cfg.brokers(), "|"); got != "a:9092|b:9092" {
		t.Errorf("brokers %q", got)
	}
	if cfg.ClickHouseDSN != "clickhouse://127.0.0.1:9000/questline" {
		t.Errorf("default DSN %q", cfg.ClickHouseDSN)
	}
}

func TestConfigBadEnvIsUsageError(t *testing.T) {
	t.Setenv("QUESTLINE_KAFKA_PARTITIONS", "many")
	var cfg config
	err := parseFlags(newFlagSet("test", &bytes.Buffer{}, &cfg), nil)
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "QUESTLINE_KAFKA_PARTITIONS") {
		t.Fatalf("want a usage error naming the variable, got %v", err)
	}
}

func TestKeysFromListAndFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(file, []byte("# server keys\nsrv-2\n\n  srv-3  \n"), 0o600)
	cfg := config{APIKeys: "srv-1", APIKeysFile: file, ClientKeys: "cli-1,cli-2"}
	server, client, err := cfg.keys()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(server, ",") != "srv-1,srv-2,srv-3" || strings.Join(client, ",") != "cli-1,cli-2" {
		t.Fatalf("server %v client %v", server, client)
	}
	cfg.ClientKeys = "srv-2"
	if _, _, err := cfg.keys(); err == nil {
		t.Fatal("a key in both scopes must be refused")
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runMain(t.Context(), []string{"nope"}, &out, &errb); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

// TestRoleFlags: -h prints the role's flags and exits 0; numbers out of
// range are usage errors (exit 2) naming the flag, not a wrapped int16
// or a Kafka error after retries.
func TestRoleFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		say  string
	}{
		{[]string{"sink", "-h"}, 0, "-clickhouse-dsn"},
		{[]string{"process", "-kafka-partitions", "0"}, 2, "-kafka-partitions 0"},
		{[]string{"ingest", "-kafka-replication", "70000"}, 2, "-kafka-replication 70000"},
		{[]string{"ingest", "-kafka-replication", "0"}, 2, "-kafka-replication 0"},
		{[]string{"process", "-process-bot-threshold", "0"}, 2, "-process-bot-threshold"},
		{[]string{"run", "-process-bot-threshold", "1.5"}, 2, "-process-bot-threshold"},
		{[]string{"process", "-process-bot-threshold", "NaN"}, 2, "-process-bot-threshold"},
	} {
		var out, errb bytes.Buffer
		if code := runMain(t.Context(), c.args, &out, &errb); code != c.code || !strings.Contains(errb.String(), c.say) {
			t.Errorf("%q: exit %d, want %d; stderr %q", c.args, code, c.code, errb.String())
		}
	}
}

// TestStopWhileStarting: SIGTERM (the context's end) while a role is still
// starting, here retrying topic creation on an unreachable Kafka, is a
// stop: exit 0, no error printed (it was exit 1 and "context canceled").
func TestStopWhileStarting(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var errb bytes.Buffer
	code := make(chan int, 1)
	go func() {
		code <- runMain(ctx, []string{"ingest", "-kafka-brokers", "127.0.0.1:1", "-metrics-addr", "", "-client-keys", "k"}, io.Discard, &errb)
	}()
	time.Sleep(500 * time.Millisecond)
	cancel()
	select {
	case c := <-code:
		if c != 0 || strings.Contains(errb.String(), "questline ingest:") {
			t.Fatalf("exit %d; stderr %s", c, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ingest did not stop within 30 s of the cancel")
	}
}

// TestBotThreshold: -process-bot-threshold (or its variable) reaches the
// bot processors' configuration, which the device stage copies.
func TestBotThreshold(t *testing.T) {
	for _, c := range []struct {
		env  string
		args []string
		want float64
	}{
		{"", nil, 0.5},
		{"0.7", nil, 0.7},
		{"0.7", []string{"-process-bot-threshold", "1"}, 1},
	} {
		if c.env != "" {
			t.Setenv("QUESTLINE_PROCESS_BOT_THRESHOLD", c.env)
		}
		var f processFlags
		a, err := newApp("process", c.args, io.Discard, f.register)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.config(a, nil).Pipeline.Bots.Threshold; got != c.want {
			t.Errorf("env %q args %q: threshold %v, want %v", c.env, c.args, got, c.want)
		}
	}
}
