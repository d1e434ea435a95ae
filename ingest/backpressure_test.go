package ingest_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/questline/questline/ingest"
)

// TestSlowClients: a body that stalls past ReadTimeout gets 408, and while
// it holds the only in-flight slot other requests get 503 + Retry-After
// (backpressure) instead of queueing.
func TestSlowClients(t *testing.T) {
	e := newEnv(t, ingest.MaxInFlight(1), ingest.ReadTimeout(500*time.Millisecond),
		ingest.ProduceTimeout(time.Second), ingest.WriteTimeout(3*time.Second))
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+ingest.Path, pr)
	req.Header.Set("Authorization", "Bearer "+clientKey)
	req.Header.Set("Content-Type", "application/json")
	slow := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			slow <- -1
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	pw.Write([]byte(`{"events":[`)) // then stall
	time.Sleep(100 * time.Millisecond)

	r := e.post(batch(ev("bp1", time.Now())), nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("while the slot is taken: %d, Retry-After %q; want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	select {
	case code := <-slow:
		if code != http.StatusRequestTimeout {
			t.Fatalf("stalled body: %d, want 408", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stalled request was not timed out")
	}
	if r := e.post(batch(ev("bp2", time.Now())), nil); r.status != 200 {
		t.Fatalf("after the slot is free: %d", r.status)
	}
}
