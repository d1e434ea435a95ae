package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/questline/questline/event"
)

// Scope is what an API key may do (SPEC §2).
type Scope uint8

const (
	// ScopeClient keys (apps, edge nodes) may send user events only.
	ScopeClient Scope = iota + 1
	// ScopeServer keys may also send the drop lifecycle and catalog types
	// and call the quest/drop API.
	ScopeServer
)

// String returns "client" or "server".
func (s Scope) String() string {
	switch s {
	case ScopeClient:
		return "client"
	case ScopeServer:
		return "server"
	}
	return ""
}

// Source is the event.Source of events sent with a key of scope s.
func (s Scope) Source() event.Source {
	if s == ScopeServer {
		return event.SourceServer
	}
	return event.SourceClient
}

// Key is an authenticated API key. It never holds the secret.
type Key struct {
	// ID is a short, non-secret fingerprint of the key (KeyID), safe for
	// logs, metrics and Kafka records.
	ID    string
	Scope Scope
}

// KeyID returns the non-secret id of an API key: the first 12 hex digits
// of its SHA-256. It identifies a key in logs and records without
// revealing it, and cannot be reversed into it.
func KeyID(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:6])
}

// Keyring holds the accepted API keys, by the SHA-256 of the secret so
// that a lookup does not compare secrets byte by byte.
type Keyring struct {
	keys map[[sha256.Size]byte]Key
}

// ErrUnauthorized is returned by Authenticate for a missing or unknown key.
var ErrUnauthorized = errors.New("missing or unknown API key")

// NewKeyring builds a keyring from server-scope and client-scope secrets
// (QUESTLINE_API_KEYS and QUESTLINE_CLIENT_KEYS). Empty entries are
// skipped; a key listed in both scopes is an error.
func NewKeyring(server, client []string) (*Keyring, error) {
	k := &Keyring{keys: map[[sha256.Size]byte]Key{}}
	add := func(secret string, s Scope) error {
		secret = strings.TrimSpace(secret)
		if secret == "" {
			return nil
		}
		h := sha256.Sum256([]byte(secret))
		if old, ok := k.keys[h]; ok && old.Scope != s {
			return fmt.Errorf("ingest: key %s is listed as both a server and a client key", KeyID(secret))
		}
		k.keys[h] = Key{ID: KeyID(secret), Scope: s}
		return nil
	}
	for _, s := range server {
		if err := add(s, ScopeServer); err != nil {
			return nil, err
		}
	}
	for _, s := range client {
		if err := add(s, ScopeClient); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Len returns the number of keys.
func (k *Keyring) Len() int { return len(k.keys) }

// Lookup returns the key whose secret is secret.
func (k *Keyring) Lookup(secret string) (Key, bool) {
	key, ok := k.keys[sha256.Sum256([]byte(secret))]
	return key, ok
}

// Authenticate returns the key of r's "Authorization: Bearer <key>" header.
func (k *Keyring) Authenticate(r *http.Request) (Key, error) {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return Key{}, ErrUnauthorized
	}
	key, ok := k.Lookup(strings.TrimSpace(h[len(prefix):]))
	if !ok {
		return Key{}, ErrUnauthorized
	}
	return key, nil
}
