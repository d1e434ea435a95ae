package ingest_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/questline/questline/event"
	"github.com/questline/questline/ingest"
	"github.com/questline/questline/kafka"
	"github.com/questline/questline/kafka/kafkatest"
)

var (
	benchOnce sync.Once
	benchData [][]byte
)

// benchBodies returns 3000 gzip bodies of 100 realistic events each (about
// 300 bytes of JSON per event, 7.5 KB per body compressed), with unique
// event ids so that the recent-id cache never short-cuts a produce. They
// are made once per test binary.
func benchBodies() [][]byte {
	benchOnce.Do(func() { benchData = makeBodies(3000) })
	return benchData
}

func makeBodies(n int) [][]byte {
	now := time.Now().Add(-time.Minute)
	bodies := make([][]byte, n)
	kinds := []string{
		`"type":"quest_started","props":{"quest_id":"quest-%03d"}`,
		`"type":"quest_completed","props":{"quest_id":"quest-%03d","duration_ms":241337}`,
		`"type":"drop_viewed","props":{"drop_id":"drop-%04d","creator_id":"creator-17"}`,
		`"type":"offer_shown","props":{"auction_id":"auc-%010d","offer_id":"offer-42","placement":"feed_top"}`,
		`"type":"conversion","props":{"order_id":"order-%08d","amount_micros":4990000,"currency":"EUR","app_version":"3.14.1"}`,
	}
	for i := range bodies {
		var raw bytes.Buffer
		fmt.Fprintf(&raw, `{"sent_at":%q,"events":[`, now.UTC().Format(event.TimeLayout))
		for j := range 100 {
			if j > 0 {
				raw.WriteByte(',')
			}
			fmt.Fprintf(&raw, `{"event_id":"01J%08d-%03d","ts":%q,"user_id":"user-%06d","device_id":"dev-%08x","session_id":"sess-%04d","country":"DE",`,
				i, j, now.Add(time.Duration(j)*time.Millisecond).UTC().Format(event.TimeLayout), (i*7+j)%100000, i, i%1000)
			fmt.Fprintf(&raw, kinds[j%len(kinds)], (i*31+j)%1000)
			raw.WriteByte('}')
		}
		raw.WriteString(`]}`)
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(raw.Bytes())
		zw.Close()
		bodies[i] = gz.Bytes()
	}
	return bodies
}

// runHTTPBench posts the bodies round robin from 64 concurrent clients and
// reports events/s.
func runHTTPBench(b *testing.B, url string, bodies [][]byte) {
	tr := &http.Transport{MaxIdleConnsPerHost: 128, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var next atomic.Int64
	b.SetParallelism(64) // goroutines per GOMAXPROCS
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := bodies[int(next.Add(1))%len(bodies)]
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+clientKey)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Content-Encoding", "gzip")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)*100/time.Since(start).Seconds(), "events/s")
	// Events per CPU second of this process (server, clients and broker):
	// the per-core figure, robust to other load on a shared machine.
	b.ReportMetric(float64(b.N)*100/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
}

// cpuTime returns the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIngestHTTP measures ingest end to end: 100-event gzip batches
// over loopback HTTP, parsed, validated, produced to a kfake broker with
// acks=all and acknowledged before the 200. Server, clients and broker
// share the process, so with -cpu 1 every component shares one core.
func BenchmarkIngestHTTP(b *testing.B) {
	bodies := benchBodies()
	br := kafkatest.New(b)
	cl, err := kafka.NewClient(br.Addrs(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	keys, _ := ingest.NewKeyring(nil, []string{clientKey})
	lim, _ := ingest.NewLimiter(ingest.KeyRate(1e9, 1e9), ingest.DeviceRate(1e9, 1e9), ingest.NewDeviceBurst(1e9), ingest.IPRate(1e9, 1e9))
	h, err := ingest.New(cl, ingest.Keys(keys), ingest.RateLimits(lim))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	runHTTPBench(b, srv.URL+ingest.Path, bodies)
}

// BenchmarkBaselineGunzipDiscard is the baseline of BenchmarkIngestHTTP:
// the same requests against a handler that only gunzips the body and
// discards it (no auth, parsing, validation or Kafka).
func BenchmarkBaselineGunzipDiscard(b *testing.B) {
	bodies := benchBodies()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		io.Copy(io.Discard, zr)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"accepted":100,"rejected":[],"server_time":0}`+"\n")
	}))
	defer srv.Close()
	runHTTPBench(b, srv.URL+ingest.Path, bodies)
}
