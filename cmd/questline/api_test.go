package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/internal/chtest"
	"github.com/questline/questline/internal/testtool"
)

// role runs `questline <args>` in this process until the test ends and
// waits until its /readyz answers 200. It returns the HTTP address.
func role(t *testing.T, args ...string) string {
	t.Helper()
	addr, _, _ := roleIn(t, t.TempDir(), testtool.FreeAddr(t), args...)
	return addr
}

// roleIn is role on data directory dataDir and embedded broker address
// kafkaAddr; it also returns the metrics address and a function stopping
// the role (as the test's end does; safe to call twice).
func roleIn(t *testing.T, dataDir, kafkaAddr string, args ...string) (httpAddr, metricsAddr string, stop func()) {
	t.Helper()
	httpAddr, metricsAddr = testtool.FreeAddr(t), testtool.FreeAddr(t)
	args = append(args, "-http-addr", httpAddr, "-metrics-addr", metricsAddr,
		"-embedded-kafka-addr", kafkaAddr, "-data-dir", dataDir,
		"-api-keys", "srv-key", "-client-keys", "cli-key", "-kafka-partitions", "2",
		"-api-secret", "sixteen bytes or more")
	ctx, cancel := context.WithCancel(context.Background())
	var (
		logs safeBuffer
		code = make(chan int, 1)
		once sync.Once
	)
	go func() { code <- runMain(ctx, args, io.Discard, &logs) }()
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case c := <-code:
				if c != 0 {
					t.Errorf("questline %s exited %d:\n%s", args[0], c, logs.String())
				}
			case <-time.After(30 * time.Second):
				t.Errorf("questline %s did not stop within 30 s", args[0])
			}
		})
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + metricsAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return httpAddr, metricsAddr, stop
			}
		}
		select {
		case c := <-code:
			t.Fatalf("questline %s exited %d before ready:\n%s", args[0], c, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("questline %s not ready after 60 s:\n%s", args[0], logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *safeBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func post(t *testing.T, addr, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer srv-key")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

// checkAPI schedules a live drop of inventory 1 and claims it twice.
func checkAPI(t *testing.T, addr string) {
	t.Helper()
	now := time.Now().UTC()
	code, v := post(t, addr, "/v1/drops", `{"drop_id":"d1","creator_id":"c1","inventory":1,"starts_at":"`+
		now.Add(-time.Minute).Format(time.RFC3339)+`","ends_at":"`+now.Add(time.Hour).Format(time.RFC3339)+`"}`)
	if code != 200 {
		t.Fatalf("POST /v1/drops: %d %v", code, v)
	}
	if code, v := post(t, addr, "/v1/drops/d1/claims", `{"claim_id":"c-1","user_id":"u1"}`); code != 200 || v["status"] != "granted" {
		t.Fatalf("first claim: %d %v", code, v)
	}
	if code, v := post(t, addr, "/v1/drops/d1/claims", `{"claim_id":"c-2","user_id":"u2"}`); code != 409 || v["reason"] != "sold_out" {
		t.Fatalf("second claim: %d %v", code, v)
	}
	resp, err := http.Get("http://" + addr + "/v1/openapi.json")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/openapi.json: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestAPISubcommand: `questline api` starts on its embedded broker and
// serves the quest/drop API.
func TestAPISubcommand(t *testing.T) {
	checkAPI(t, role(t, "api"))
}

// TestAPIRestartsFromSnapshots: `questline api` snapshots its claims fold
// under <data-dir>/api-snapshots at a clean stop, and restarted on the
// same data dir (its embedded broker's log kept there) restores every
// partition from them and answers claims as before.
func TestAPIRestartsFromSnapshots(t *testing.T) {
	dataDir, kafkaAddr := t.TempDir(), testtool.FreeAddr(t)
	addr, _, stop := roleIn(t, dataDir, kafkaAddr, "api")
	checkAPI(t, addr)
	stop()
	for _, p := range []string{"claims-0.snap", "claims-1.snap"} {
		if _, err := os.Stat(filepath.Join(dataDir, "api-snapshots", p)); err != nil {
			t.Fatalf("no snapshot after a clean stop: %v", err)
		}
	}
	addr, metrics, _ := roleIn(t, dataDir, kafkaAddr, "api")
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "\nquestline_api_claims_snapshot_restored_partitions 2\n") {
		t.Errorf("not restored from both partitions' snapshots:\n%s", grepLines(string(body), "questline_api_claims_snapshot"))
	}
	if code, v := post(t, addr, "/v1/drops/d1/claims", `{"claim_id":"c-1","user_id":"u1"}`); code != 200 || v["status"] != "granted" {
		t.Fatalf("the first claim again after the restart: %d %v", code, v)
	}
	if code, v := post(t, addr, "/v1/drops/d1/claims", `{"claim_id":"c-3","user_id":"u3"}`); code != 409 || v["reason"] != "sold_out" {
		t.Fatalf("a new claim after the restart: %d %v", code, v)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRunServesIngestAndAPI: `questline run` serves POST /v1/events and
// the API on the same address.
func TestRunServesIngestAndAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ClickHouse and every role")
	}
	srv := chtest.New(t)
	addr := role(t, "run", "-clickhouse-dsn", srv.DSN("questline"))
	checkAPI(t, addr)
	ts := time.Now().UTC().Format(event.TimeLayout)
	code, v := post(t, addr, "/v1/events", `{"events":[{"event_id":"e1","type":"quest_started","ts":"`+ts+`","user_id":"u1","props":{"quest_id":"q"}}]}`)
	if code != 200 || v["accepted"] != float64(1) {
		t.Fatalf("POST /v1/events: %d %v", code, v)
	}
}

// TestAPISecretFlags: -api-secret-file wins over -api-secret; a short
// secret is a usage error; none is nil (a random one per process).
func TestAPISecretFlags(t *testing.T) {
	file := t.TempDir() + "/secret"
	if err := os.WriteFile(file, []byte("from the file, long enough\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f    apiFlags
		want string
		err  bool
	}{
		{apiFlags{}, "", false},
		{apiFlags{secret: "sixteen bytes or more"}, "sixteen bytes or more", false},
		{apiFlags{secret: "sixteen bytes or more", secretFile: file}, "from the file, long enough", false},
		{apiFlags{secret: "short"}, "", true},
		{apiFlags{secretFile: file + ".missing"}, "", true},
	} {
		got, err := tc.f.secretBytes()
		if (err != nil) != tc.err || string(got) != tc.want || err != nil && !errors.Is(err, errUsage) {
			t.Errorf("%+v: %q, %v", tc.f, got, err)
		}
	}
}
