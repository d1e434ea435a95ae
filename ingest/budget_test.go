package ingest_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/questline/questline/ingest"
)

// TestBufferBudget: the bodies of the requests in flight hold at most
// MaxBufferBytes (questline_ingest_buffered_bytes); past it a request gets
// 503 with Retry-After, and the bytes come back when the requests end
// (helper-37: a thousand small gzip bombs held gigabytes).
func TestBufferBudget(t *testing.T) {
	const maxBody, maxDecoded, budget = 64 << 10, 64 << 10, 190 << 10 // two slow bodies hold 2 × 64 KiB; a third of 61 KiB needs 64 KiB more
	e := newEnv(t, ingest.MaxBodyBytes(maxBody), ingest.MaxDecodedBytes(maxDecoded), ingest.MaxBufferBytes(budget))
	// Two slow requests, 60 KiB into their bodies and waiting.
	var pws []*io.PipeWriter
	answers := make(chan reply, 2)
	for range 2 {
		pr, pw := io.Pipe()
		pws = append(pws, pw)
		go func() { answers <- e.postReader(pr, nil) }()
		go pw.Write(bytes.Repeat([]byte{' '}, 60<<10)) // JSON whitespace, not yet a body
	}
	held := func() float64 { return e.counter("questline_ingest_buffered_bytes") }
	for deadline := time.Now().Add(10 * time.Second); held() < 2*60<<10; {
		if time.Now().After(deadline) {
			t.Fatalf("the slow requests hold %v bytes", held())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if h := held(); h > budget {
		t.Fatalf("%v bytes held, over the budget of %d", h, budget)
	}
	// A 60 KiB body does not fit beside them.
	body := append(batch(ev("probe-1", time.Now())), bytes.Repeat([]byte{' '}, 60<<10)...)
	r := e.post(body, nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || !strings.Contains(r.body.Error, "MaxBufferBytes") {
		t.Fatalf("past the budget: %d %q (Retry-After %q), want 503", r.status, r.body.Error, r.header.Get("Retry-After"))
	}
	for _, pw := range pws {
		pw.Close() // a body of whitespace: 400
	}
	<-answers
	<-answers
	if h := held(); h != 0 {
		t.Fatalf("%v bytes still held after every request ended", h)
	}
	if r := e.post(body, nil); r.status != http.StatusOK {
		t.Fatalf("after the slow requests: %d %q", r.status, r.body.Error)
	}
}

// TestInFlightPerIP: one client address holds at most MaxInFlightPerIP
// requests in flight; past it a request gets 429 with Retry-After, while
// another address is served (helper-37: a few addresses sending bodies
// slowly held all of MaxInFlight's slots). The test's proxy, 127.0.0.1,
// is trusted, so X-Forwarded-For names the client.
func TestInFlightPerIP(t *testing.T) {
	e := newEnv(t, ingest.MaxInFlightPerIP(2))
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	var pws []*io.PipeWriter
	answers := make(chan reply, 2)
	for range 2 {
		pr, pw := io.Pipe()
		pws = append(pws, pw)
		go func() { answers <- e.postReader(pr, from("203.0.113.7")) }()
		go pw.Write([]byte(" "))
	}
	inFlight := func() float64 { return e.counter("questline_ingest_in_flight_requests") }
	for deadline := time.Now().Add(10 * time.Second); inFlight() < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("%v requests in flight, want the 2 slow ones", inFlight())
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := e.post(batch(ev("third", time.Now())), from("203.0.113.7"))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(r.body.Error, "in flight") {
		t.Fatalf("a third request of the address: %d %q (Retry-After %q), want 429", r.status, r.body.Error, r.header.Get("Retry-After"))
	}
	if r := e.post(batch(ev("other", time.Now())), from("198.51.100.9")); r.status != http.StatusOK {
		t.Fatalf("another address: %d %q", r.status, r.body.Error)
	}
	for _, pw := range pws {
		pw.Close()
	}
	<-answers
	<-answers
	if r := e.post(batch(ev("after", time.Now())), from("203.0.113.7")); r.status != http.StatusOK {
		t.Fatalf("the address after its requests ended: %d %q", r.status, r.body.Error)
	}
}

// TestBufferBudgetFloor: at the smallest budget allowed (MaxBodyBytes +
// MaxDecodedBytes + 2), an idle ingest takes a request at both limits
// (helper-41: the buffers' last growth overshot the limit and the
// allocator rounded up, so such a request got 503 for ever).
func TestBufferBudgetFloor(t *testing.T) {
	const maxBody, maxDecoded = 64 << 10, 512 << 10
	e := newEnv(t, ingest.MaxBodyBytes(maxBody), ingest.MaxDecodedBytes(maxDecoded), ingest.MaxBufferBytes(maxBody+maxDecoded+2))
	body := batch(ev("floor-1", time.Now()))
	body = append(body, bytes.Repeat([]byte{' '}, maxDecoded-len(body))...) // exactly the decoded limit
	// Sent as gzip of about the body limit: incompressible padding in a
	// prop would not be valid; so a stored (level 0) gzip of a smaller
	// body fills the sent limit instead.
	z := gzipped(t, body)
	if len(z) > maxBody {
		t.Fatalf("gzip of %d bytes over the limit of %d", len(z), maxBody)
	}
	if r := e.post(z, map[string]string{"Content-Encoding": "gzip"}); r.status != http.StatusOK {
		t.Fatalf("a body at the decoded limit, idle ingest at the smallest budget: %d %q", r.status, r.body.Error)
	}
	raw := batch(ev("floor-2", time.Now()))
	raw = append(raw, bytes.Repeat([]byte{' '}, maxBody-len(raw))...) // exactly the sent limit
	if r := e.post(raw, nil); r.status != http.StatusOK {
		t.Fatalf("a body at the sent limit: %d %q", r.status, r.body.Error)
	}
}
