package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestErrorLogRedactsClientAddresses(t *testing.T) {
	var buf bytes.Buffer
	l := redactedErrorLog(slog.New(slog.NewTextHandler(&buf, nil)))
	l.Printf("http: panic serving 203.0.113.9:51234: boom")
	l.Printf("http: TLS handshake error from [2001:db8::1]:443: EOF")
	out := buf.String()
	for _, ip := range []string{"203.0.113.9", "2001:db8::1"} {
		if strings.Contains(out, ip) {
			t.Fatalf("client address %s in the log: %s", ip, out)
		}
	}
	if !strings.Contains(out, "panic serving <client>: boom") {
		t.Fatalf("message lost: %s", out)
	}
}
