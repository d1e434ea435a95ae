package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/questline/questline/event"
)

// decode reads r's JSON body into v: unknown fields, trailing data and a
// body over MaxBodyBytes are refused with a clear message (400, 413, 415).
// An empty body is the empty object. It answers the error itself and
// returns false.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.ContentLength > h.cfg.maxBodyBytes {
		h.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than the limit of %d bytes", h.cfg.maxBodyBytes), 0)
		return false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.maxBodyBytes+1))
	if err != nil {
		h.fail(w, http.StatusBadRequest, "body: read failed", 0)
		return false
	}
	if int64(len(body)) > h.cfg.maxBodyBytes {
		h.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than the limit of %d bytes", h.cfg.maxBodyBytes), 0)
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	} else if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		h.fail(w, http.StatusUnsupportedMediaType, "unsupported Content-Type (want application/json)", 0)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		h.fail(w, http.StatusBadRequest, "body: "+jsonError(err), 0)
		return false
	}
	if dec.More() {
		h.fail(w, http.StatusBadRequest, "body: unexpected data after the JSON object", 0)
		return false
	}
	return true
}

// jsonError words encoding/json's errors for a client.
func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return te.Field + ": must be a JSON " + te.Type.String()
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + f + " (see /v1/openapi.json)"
	}
	return strings.TrimPrefix(msg, "json: ")
}

// required returns the first of the named fields that is empty as
// "name: required", or "".
func required(fields ...string) string {
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] == "" {
			return fields[i] + ": required"
		}
	}
	return ""
}

// parseTime parses an RFC 3339 time into Unix ms.
func parseTime(field, s string) (int64, error) {
	if s == "" {
		return 0, errors.New(field + ": required")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, errors.New(field + ": must be an RFC 3339 time, e.g. 2026-01-02T15:04:05.000Z")
	}
	return t.UnixMilli(), nil
}

// formatTime returns ms as questline writes times (RFC 3339, ms, UTC).
func formatTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(event.TimeLayout) }

// fail answers {"error": msg, "server_time": ms} with status, and
// Retry-After when retry > 0.
func (h *Handler) fail(w http.ResponseWriter, status int, msg string, retry time.Duration) {
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(retry.Seconds())))))
	}
	h.answer(w, status, map[string]any{"error": msg})
}

// answer writes v (an object) with server_time added.
func (h *Handler) answer(w http.ResponseWriter, status int, v map[string]any) {
	v["server_time"] = h.cfg.now().UnixMilli()
	b, _ := json.Marshal(v)
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func itoa(n int) string {
	if n == 0 {
		n = http.StatusOK
	}
	return strconv.Itoa(n)
}
