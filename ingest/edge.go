package ingest

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Edge resolves what the network edge tells ingest about a request: the
// client's IP (for rate limits; never logged) and its country.
//
// Only a request whose TCP peer is a trusted proxy (TrustedProxies) may
// speak for the client: then the client IP is the rightmost address of
// X-Forwarded-For that is not itself a trusted proxy, and the country is
// the edge country header (EdgeCountryHeader, default X-Edge-Country; set
// it to CF-IPCountry behind Cloudflare or CloudFront-Viewer-Country behind
// CloudFront). From any other peer both headers are ignored, so a client
// cannot pick its own IP or country.
type Edge struct {
	trusted       []netip.Prefix
	countryHeader string
}

func (e *Edge) isTrusted(a netip.Addr) bool {
	for _, p := range e.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peer returns the address of r's TCP peer.
func peer(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// ClientIP returns the client's address and whether the request came
// through a trusted proxy.
func (e *Edge) ClientIP(r *http.Request) (netip.Addr, bool) {
	p := peer(r)
	if !p.IsValid() || !e.isTrusted(p) {
		return p, false
	}
	client := p
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client, true
			}
			client = a.Unmap()
			if !e.isTrusted(client) {
				return client, true
			}
		}
	}
	return client, true
}

// Country returns the edge country of r (ISO 3166-1 alpha-2, upper case)
// when r came through a trusted proxy that set the header, else "".
func (e *Edge) Country(r *http.Request, viaProxy bool) string {
	if !viaProxy || e.countryHeader == "" {
		return ""
	}
	c := strings.TrimSpace(r.Header.Get(e.countryHeader))
	if len(c) != 2 {
		return ""
	}
	c = strings.ToUpper(c)
	// XX (unknown) is a placeholder, not a country; T1 (Tor) fails the check.
	if c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' || c == "XX" {
		return ""
	}
	return c
}

// ipBucket returns the rate-limit identity of a client address: the
// address itself for IPv4, its /64 for IPv6 (one host usually owns a /64).
func ipBucket(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// NewEdge returns the Edge of the trusted proxies and country header (see
// TrustedProxies, EdgeCountryHeader), for the quest/drop API, which
// derives client addresses as ingest does.
func NewEdge(trusted []netip.Prefix, countryHeader string) Edge {
	return Edge{trusted: trusted, countryHeader: countryHeader}
}

// IPBucket returns the rate-limit identity of a client address, as
// Limiter.AllowIP expects it: the address for IPv4, its /64 for IPv6.
func IPBucket(a netip.Addr) string { return ipBucket(a) }
