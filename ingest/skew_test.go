package ingest

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/questline/questline/event"
)

func TestEventTime(t *testing.T) {
	const ts, recv = int64(1_000_000_000), int64(1_000_100_000)
	cases := []struct {
		name string
		src  event.Source
		b    event.Batch
		want int64
	}{
		{"offset wins over sent_at", event.SourceClient, event.Batch{HasClockOffset: true, ClockOffsetMs: -2500, HasSentAt: true, SentAt: recv - 60_000}, ts - 2500},
		{"zero offset is still an offset", event.SourceClient, event.Batch{HasClockOffset: true, HasSentAt: true, SentAt: recv - 60_000}, ts},
		{"sent_at: device 60 s behind", event.SourceClient, event.Batch{HasSentAt: true, SentAt: recv - 60_000}, ts + 60_000},
		{"sent_at: device 30 s ahead", event.SourceClient, event.Batch{HasSentAt: true, SentAt: recv + 30_000}, ts - 30_000},
		{"sent_at: under 1 s is network delay", event.SourceClient, event.Batch{HasSentAt: true, SentAt: recv - 999}, ts},
		{"sent_at: under 1 s ahead", event.SourceClient, event.Batch{HasSentAt: true, SentAt: recv + 999}, ts},
		{"sent_at: exactly 1 s", event.SourceClient, event.Batch{HasSentAt: true, SentAt: recv - 1000}, ts + 1000},
		{"nothing: ts", event.SourceClient, event.Batch{}, ts},
		{"server key: trusted", event.SourceServer, event.Batch{HasClockOffset: true, ClockOffsetMs: 5000, HasSentAt: true, SentAt: recv - 60_000}, ts},
		{"api: trusted", event.SourceAPI, event.Batch{HasSentAt: true, SentAt: recv - 60_000}, ts},
		{"hostile offset saturates", event.SourceClient, event.Batch{HasClockOffset: true, ClockOffsetMs: 1<<63 - 1}, 1<<63 - 1},
		{"most negative offset does not wrap", event.SourceClient, event.Batch{HasClockOffset: true, ClockOffsetMs: -1 << 63}, ts + (-1 << 63)},
	}
	for _, c := range cases {
		if got := EventTime(c.src, ts, recv, &c.b); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestEdge(t *testing.T) {
	e := Edge{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, countryHeader: "CF-IPCountry"}
	cases := []struct {
		name, remote, xff, country string
		wantIP, wantCountry        string
		wantProxy                  bool
	}{
		{"direct client ignores headers", "198.51.100.9:5000", "203.0.113.1", "DE", "198.51.100.9", "", false},
		{"via proxy", "10.1.2.3:5000", "203.0.113.1", "de", "203.0.113.1", "DE", true},
		{"proxy chain: rightmost untrusted", "10.1.2.3:5000", "1.1.1.1, 203.0.113.1, 10.9.9.9", "FR", "203.0.113.1", "FR", true},
		{"all trusted: leftmost", "10.1.2.3:5000", "10.2.2.2", "", "10.2.2.2", "", true},
		{"garbage in XFF stops the walk", "10.1.2.3:5000", "203.0.113.1, nonsense", "XX", "10.1.2.3", "", true},
		{"no XFF: the proxy", "10.1.2.3:5000", "", "T1", "10.1.2.3", "", true},
		{"ipv6 client", "10.1.2.3:5000", "2001:db8::1", "US", "2001:db8::1", "US", true},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/v1/events", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if c.country != "" {
			r.Header.Set("CF-IPCountry", c.country)
		}
		ip, via := e.ClientIP(r)
		if ip.String() != c.wantIP || via != c.wantProxy {
			t.Errorf("%s: ip %v via %v, want %s %v", c.name, ip, via, c.wantIP, c.wantProxy)
		}
		if got := e.Country(r, via); got != c.wantCountry {
			t.Errorf("%s: country %q, want %q", c.name, got, c.wantCountry)
		}
	}
	if got := ipBucket(netip.MustParseAddr("2001:db8::1")); got != "2001:db8::/64" {
		t.Errorf("ipv6 bucket %s", got)
	}
}

func TestKeyring(t *testing.T) {
	k, err := NewKeyring([]string{"s1", " "}, []string{"c1"})
	if err != nil {
		t.Fatal(err)
	}
	if k.Len() != 2 {
		t.Fatalf("%d keys", k.Len())
	}
	for _, c := range []struct {
		hdr   string
		scope Scope
	}{{"Bearer s1", ScopeServer}, {"bearer c1", ScopeClient}, {"Bearer  c1 ", ScopeClient}, {"Bearer s2", 0}, {"s1", 0}, {"", 0}} {
		r := httptest.NewRequest("POST", "/", nil)
		r.Header.Set("Authorization", c.hdr)
		key, err := k.Authenticate(r)
		if (err == nil) != (c.scope != 0) || key.Scope != c.scope {
			t.Errorf("%q: %+v %v", c.hdr, key, err)
		}
		if err == nil && (key.ID == "" || len(key.ID) != 12) {
			t.Errorf("key id %q", key.ID)
		}
	}
	if _, err := NewKeyring([]string{"x"}, []string{"x"}); err == nil {
		t.Error("a key in both scopes must be refused")
	}
}
