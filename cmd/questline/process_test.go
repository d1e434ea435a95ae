package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/internal/chtest"
	"github.com/questline/questline/internal/testtool"
	"github.com/questline/questline/sinks/clickhouse"
)

// TestProcessReadiness: `questline process` is ready once Kafka and
// ClickHouse answer, and not ready, naming ClickHouse, once ClickHouse is
// gone (with no check it was "ready" whatever happened).
func TestProcessReadiness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ClickHouse")
	}
	srv := chtest.New(t)
	dsn := srv.DSN("questline")
	if err := clickhouse.Migrate(context.Background(), dsn, nil); err != nil {
		t.Fatal(err)
	}
	metricsAddr := testtool.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs safeBuffer
	code := make(chan int, 1)
	go func() {
		code <- runMain(ctx, []string{"process", "-clickhouse-dsn", dsn, "-metrics-addr", metricsAddr,
			"-embedded-kafka-addr", testtool.FreeAddr(t), "-data-dir", t.TempDir(), "-kafka-partitions", "2"}, io.Discard, &logs)
	}()
	defer func() {
		cancel()
		select {
		case <-code:
		case <-time.After(30 * time.Second):
			t.Error("questline process did not stop within 30 s")
		}
	}()
	// readyz polls /readyz until it answers want (with a body holding
	// say) or 30 s pass.
	readyz := func(want int, say string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get("http://" + metricsAddr + "/readyz")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == want && strings.Contains(string(body), say) {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("/readyz: %d %s, want %d %q", resp.StatusCode, body, want, say)
				}
			}
			select {
			case c := <-code:
				t.Fatalf("questline process exited %d:\n%s", c, logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz did not answer: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	readyz(http.StatusOK, "")
	srv.Close()
	readyz(http.StatusServiceUnavailable, "clickhouse")
}
