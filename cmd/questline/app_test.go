package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAdminPprof: Go's profiles are on the admin server only with -pprof.
func TestAdminPprof(t *testing.T) {
	for _, on := range []bool{false, true} {
		args := []string{"-metrics-addr", "127.0.0.1:0"}
		if on {
			args = append(args, "-pprof")
		}
		a, err := newApp("test", args, io.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.serveAdmin(); err != nil {
			t.Fatal(err)
		}
		get := func(path string) (int, string) {
			resp, err := http.Get("http://" + a.adminAddr.String() + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if code, _ := get("/metrics"); code != http.StatusOK {
			t.Fatalf("pprof %v: /metrics answered %d", on, code)
		}
		code, body := get("/debug/pprof/heap?debug=1")
		switch {
		case on && (code != http.StatusOK || !strings.Contains(body, "heap profile")):
			t.Fatalf("-pprof: /debug/pprof/heap answered %d: %.100s", code, body)
		case !on && code != http.StatusNotFound:
			t.Fatalf("without -pprof: /debug/pprof/heap answered %d", code)
		}
		if code, body := get("/debug/pprof/"); on && (code != http.StatusOK || !strings.Contains(body, "goroutine")) {
			t.Fatalf("-pprof: the index answered %d: %.100s", code, body)
		}
		// The command line may hold keys and a DSN's password.
		if code, body := get("/debug/pprof/cmdline"); code != http.StatusNotFound {
			t.Fatalf("pprof %v: /debug/pprof/cmdline answered %d: %.100s", on, code, body)
		}
		if on {
			// A CPU profile of the default 30 s, as long as the admin
			// server's WriteTimeout: net/http/pprof (since Go 1.23)
			// extends the write deadline by the profile's seconds instead
			// of refusing it (400), so it runs until the client gives up.
			c := &http.Client{Timeout: time.Second}
			resp, err := c.Get("http://" + a.adminAddr.String() + "/debug/pprof/profile")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Fatalf("-pprof: a 30 s CPU profile answered %d within 1 s: %.100s", resp.StatusCode, b)
			}
		}
		a.close()
	}
}

// TestStopsAfter: the claims reader's context outlives the roles' context
// until the HTTP role has drained (done), so an answer in flight at a
// shutdown still gets its claim's decision.
func TestStopsAfter(t *testing.T) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	run := stopsAfter(done, func(ctx context.Context) error {
		<-ctx.Done()
		close(stopped)
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx) }()
	cancel()
	select {
	case <-stopped:
		t.Fatal("the role stopped with its context, before the HTTP role drained")
	case <-time.After(100 * time.Millisecond):
	}
	close(done)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the role did not stop once the HTTP role had")
	}
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("role returned %v", err)
	}
}
