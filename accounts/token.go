package accounts

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// TokenPrefix starts every API token, so a leaked one is easy to grep for.
const TokenPrefix = "lv_"

// NewToken returns a fresh random token (256 bits) and the hash we store.
func NewToken() (token string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken is how tokens and session ids are kept: SHA-256 of the string.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
