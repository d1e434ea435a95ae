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
	const maxBody, maxDecoded, budget = 64 << 10, 64 << 10, 200 << 10
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
