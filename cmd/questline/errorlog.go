package main

import (
	"bytes"
	"log"
	"log/slog"
	"regexp"
)

// clientAddr matches the IPv4 and IPv6 addresses (with a port) that
// net/http writes into its error log ("http: panic serving 203.0.113.9:5123",
// TLS handshake errors): questline never logs a raw client IP.
var clientAddr = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b|\[?[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f:.]*[0-9A-Fa-f]\]?(:\d+)?`)

// redactedErrorLog returns the error log for an http.Server: net/http's
// messages at warning level in the process log, client addresses removed.
func redactedErrorLog(l *slog.Logger) *log.Logger {
	return log.New(redactWriter{l}, "", 0)
}

type redactWriter struct{ l *slog.Logger }

func (w redactWriter) Write(p []byte) (int, error) {
	msg := clientAddr.ReplaceAll(bytes.TrimSpace(p), []byte("<client>"))
	w.l.Warn(string(msg), "component", "http")
	return len(p), nil
}
