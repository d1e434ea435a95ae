package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/event"
	"github.com/questline/questline/internal/testtool"
	"github.com/questline/questline/kafka"
)

// buildQuestline builds this command into a temporary directory.
func buildQuestline(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "questline")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestIngestKill9 loads `questline ingest` (with its embedded broker and
// data dir), kills it with SIGKILL mid-load, restarts it on the same data
// dir, and checks that every event answered 200 is in questline.events.
func TestIngestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a load test")
	}
	bin := buildQuestline(t)
	dataDir := t.TempDir()
	httpAddr, metricsAddr, kafkaAddr := testtool.FreeAddr(t), testtool.FreeAddr(t), testtool.FreeAddr(t)
	logPath := filepath.Join(t.TempDir(), "ingest.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QUESTLINE_") {
			env = append(env, kv)
		}
	}
	start := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command(bin, "ingest", "-http-addr", httpAddr, "-metrics-addr", metricsAddr,
			"-embedded-kafka-addr", kafkaAddr, "-data-dir", dataDir, "-client-keys", "kill9-key",
			"-kafka-partitions", "4", "-rate-limit-device", "100000", "-rate-limit-ip", "100000")
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get("http://" + metricsAddr + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return cmd
				}
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(logPath)
				t.Fatalf("ingest not ready after 30 s:\n%s", log)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	p1 := start()
	var (
		mu    sync.Mutex
		acked []string
		sent  int
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	client := &http.Client{Timeout: 5 * time.Second}
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				ids := make([]string, 50)
				var body bytes.Buffer
				body.WriteString(`{"events":[`)
				ts := time.Now().UTC().Format(event.TimeLayout)
				for i := range ids {
					ids[i] = fmt.Sprintf("k9-%d-%d-%d", g, n, i)
					if i > 0 {
						body.WriteByte(',')
					}
					fmt.Fprintf(&body, `{"event_id":%q,"type":"quest_started","ts":%q,"user_id":"u%d","props":{"quest_id":"q"}}`, ids[i], ts, i)
				}
				body.WriteString(`]}`)
				req, _ := http.NewRequest("POST", "http://"+httpAddr+"/v1/events", &body)
				req.Header.Set("Authorization", "Bearer kill9-key")
				req.Header.Set("Content-Type", "application/json")
				mu.Lock()
				sent += len(ids)
				mu.Unlock()
				resp, err := client.Do(req)
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				var a struct{ Accepted int }
				json.NewDecoder(resp.Body).Decode(&a)
				resp.Body.Close()
				if resp.StatusCode == 200 && a.Accepted == len(ids) {
					mu.Lock()
					acked = append(acked, ids...)
					mu.Unlock()
				}
			}
		}()
	}
	// Kill once the load is well under way.
	deadline := time.Now().Add(20 * time.Second)
	for {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 5000 || time.Now().After(deadline) {
			break
		}
	}
	if err := p1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p1.Wait()
	close(stop)
	wg.Wait()
	mu.Lock()
	ackedIDs := append([]string(nil), acked...)
	mu.Unlock()
	if len(ackedIDs) == 0 {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("no batch was acknowledged before the kill:\n%s", log)
	}

	start() // restart on the same data dir
	got := consumeIDs(t, []string{kafkaAddr}, kafka.TopicEvents)
	missing := 0
	for _, id := range ackedIDs {
		if !got[id] {
			missing++
		}
	}
	t.Logf("sent %d events, %d answered 200 before the kill, %d events on Kafka after the restart", sent, len(ackedIDs), len(got))
	if missing > 0 {
		t.Fatalf("%d of %d events answered 200 are missing after kill -9 and restart", missing, len(ackedIDs))
	}
}

// consumeIDs returns the event_ids of every record of topic up to its end.
func consumeIDs(t *testing.T, brokers []string, topic string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kafka.NewClient(brokers, nil, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	ids := map[string]bool{}
	var e event.Event
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming %s: %v (partitions left %v)", topic, ctx.Err(), left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if err := event.DecodeBinary(r.Value, &e); err != nil {
				t.Fatalf("record %d/%d: %v", r.Partition, r.Offset, err)
			}
			ids[e.ID] = true
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
	}
	return ids
}
