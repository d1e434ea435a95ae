package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
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
		// A body still arriving at the request's deadline is not a bad
		// request: 408 and Retry-After, as ingest answers it.
		var t interface{ Timeout() bool }
		if errors.As(err, &t) && t.Timeout() {
			h.fail(w, http.StatusRequestTimeout, "body: not received within the request timeout of "+h.cfg.requestTimeout.String(), h.cfg.retryAfter)
			return false
		}
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
	// dec.More would miss a stray '}' or ']' after the object.
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		h.fail(w, http.StatusBadRequest, "body: unexpected data after the JSON object", 0)
		return false
	}
	if msg := fieldsExact(body, v); msg != "" {
		h.fail(w, http.StatusBadRequest, "body: "+msg, 0)
		return false
	}
	return true
}

// fieldsExact returns why the top-level object of body (which decoded into
// the struct v points to) names a field other than exactly as v's json
// tags do, or names one twice, else "". encoding/json matches names
// case-insensitively and keeps the last of a repeated field: a body read
// one way by a proxy or a log and another way here.
func fieldsExact(body []byte, v any) string {
	known := map[string]bool{}
	if t := reflect.TypeOf(v); t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
		for f := range t.Elem().Fields() {
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
				known[name] = true
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "" // not an object: null, already decoded as nothing
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err.Error()
		}
		name, _ := tok.(string)
		if !known[name] {
			return fmt.Sprintf("unknown field %q (see /v1/openapi.json)", name)
		}
		if seen[name] {
			return fmt.Sprintf("field %q given twice", name)
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err.Error()
		}
	}
	return ""
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

// statusLabel returns the code label of an answer's status: 0, a handler
// that wrote nothing, is net/http's implied 200.
func statusLabel(status int) string {
	if status == 0 {
		status = http.StatusOK
	}
	return strconv.Itoa(status)
}
