package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestDecodeStrict: a body is exactly one JSON object whose fields are
// named as documented, each once. Anything else is a 400 naming why, not
// a guess: encoding/json alone accepts a stray closing bracket after the
// object, matches field names case-insensitively ("USER_ID" set user_id)
// and keeps the last of a repeated field.
func TestDecodeStrict(t *testing.T) {
	h := &Handler{cfg: config{maxBodyBytes: 1 << 10, now: time.Now}}
	for body, want := range map[string]string{
		`{"claim_id":"c","user_id":"u"}`:                  "",
		` {"claim_id":"c","user_id":"u"} `:                "",
		``:                                                "",
		`{"claim_id":"c","user_id":"u"}}`:                 "after the JSON object",
		`{"claim_id":"c","user_id":"u"}]`:                 "after the JSON object",
		`{"claim_id":"c","user_id":"u"} {}`:               "after the JSON object",
		`{"claim_id":"c","USER_ID":"u"}`:                  `unknown field "USER_ID"`,
		`{"claim_id":"c","user_id":"u","user_id":"v"}`:    `"user_id" given twice`,
		`{"claim_id":"c","user_id":"u","device_id":null}`: "",
		`{"claim_id":"c","nope":1}`:                       `unknown field "nope"`,
	} {
		var q claimReq
		r := httptest.NewRequest("POST", "/v1/drops/d/claims", strings.NewReader(body))
		w := httptest.NewRecorder()
		ok := h.decode(w, r, &q)
		if want == "" {
			if !ok {
				t.Errorf("%s: refused: %d %s", body, w.Code, w.Body)
			}
			continue
		}
		var a struct{ Error string }
		json.Unmarshal(w.Body.Bytes(), &a)
		if ok || w.Code != 400 || !strings.Contains(a.Error, want) {
			t.Errorf("%s: ok %v, %d %s; want 400 with %q", body, ok, w.Code, w.Body, want)
		}
	}
}

// TestUnroutedAnswersJSON: a path under /v1/ that no route serves, and a
// route called with another method, are answered in the API's error shape
// (JSON with server_time; 405 with Allow), not ServeMux's plain text.
func TestUnroutedAnswersJSON(t *testing.T) {
	base := startInstance(t, newBroker(t)).srv.URL
	for _, tc := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"GET", "/v1/nope", 404, ""},
		{"GET", "/v1/drops/d1/claims", 405, "POST"},
		{"DELETE", "/v1/drops/d1", 405, "GET, HEAD"},
		{"PUT", "/v1/quests", 405, "POST"},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+serverKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var a map[string]any
		err = json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if resp.StatusCode != tc.code || err != nil || a["error"] == nil || a["server_time"] == nil || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q %v (%v); want %d Allow %q, JSON error", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), a, err, tc.code, tc.allow)
		}
	}
}
