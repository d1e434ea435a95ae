package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/questline/questline/ingest"
)

// TestServerBoundsEveryRequest: a request whose body never ends, on a
// route whose handler sets no deadline of its own (ingest's 405 for a PUT,
// the mux's 404), loses its connection once the server's read timeout has
// passed (helper-37: without a server ReadTimeout both held their
// connections for ever, past every other timeout).
func TestServerBoundsEveryRequest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a := &app{cfg: config{HTTPAddr: addr}, log: slog.New(slog.DiscardHandler)}
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1")) // never reached
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	keys, _ := ingest.NewKeyring([]string{"server-key-123456"}, nil)
	h, err := ingest.New(cl, ingest.Keys(keys))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.RegisterAlone(mux)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	to := serverTimeouts{header: time.Second, read: time.Second, write: 5 * time.Second, idle: time.Minute}
	go func() { done <- serveHTTP(ctx, a, mux, to) }()
	defer func() { cancel(); <-done }()
	var c net.Conn
	for range 50 {
		if c, err = net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, line := range []string{"PUT /v1/events", "GET /anything"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// A chunked body: one chunk, then nothing.
		fmt.Fprintf(c, "%s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n", line)
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) // the read timeout is 1 s
		r := bufio.NewReader(c)
		for err == nil { // the answer, if any, then the end of the connection
			_, err = r.ReadString('\n')
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("%s: the server held the connection for 10 s (read timeout 1 s)", line)
		}
		c.Close()
	}
}
