package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
)

// An attempt token is what POST /v1/quests/{quest_id}/start answers and
// .../complete takes back: the server's start time of the attempt and a
// random attempt id, signed with HMAC-SHA256 over the quest, the user, the
// start and the id, with the secret every API instance shares. The server
// measures a quest's duration from it without keeping any state.
//
// Layout (base64url, no padding): version (1 byte) | start ms (8) |
// attempt id (16) | MAC (32).

const (
	tokenVersion = 1
	attemptLen   = 16
	tokenLen     = 1 + 8 + attemptLen + sha256.Size
)

var errBadToken = errors.New("attempt: not a token this API issued for this quest and user (tampered, foreign, or signed with another secret)")

// tokens signs and checks attempt tokens.
type tokens struct{ secret []byte }

// newSecret returns a random secret of 32 bytes.
func newSecret() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

func (t tokens) mac(questID, userID string, body []byte) []byte {
	m := hmac.New(sha256.New, t.secret)
	var n [8]byte
	for _, s := range []string{questID, userID} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		m.Write(n[:])
		m.Write([]byte(s))
	}
	m.Write(body)
	return m.Sum(nil)
}

// issue returns a new token for an attempt of userID at questID started at
// startMs, and the attempt id (hex).
func (t tokens) issue(questID, userID string, startMs int64) (token, attempt string) {
	b := make([]byte, 0, tokenLen)
	b = append(b, tokenVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(startMs))
	id := make([]byte, attemptLen)
	rand.Read(id)
	b = append(b, id...)
	b = append(b, t.mac(questID, userID, b)...)
	return base64.RawURLEncoding.EncodeToString(b), hex.EncodeToString(id)
}

// check verifies token for questID and userID and returns its start time
// and attempt id (hex).
func (t tokens) check(questID, userID, token string) (startMs int64, attempt string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != tokenLen || b[0] != tokenVersion {
		return 0, "", errBadToken
	}
	body, sum := b[:tokenLen-sha256.Size], b[tokenLen-sha256.Size:]
	if !hmac.Equal(sum, t.mac(questID, userID, body)) {
		return 0, "", errBadToken
	}
	return int64(binary.BigEndian.Uint64(body[1:9])), hex.EncodeToString(body[9:]), nil
}
