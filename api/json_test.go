package api

import (
	"encoding/json"
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
