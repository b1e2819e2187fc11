// Package token signs and verifies the session tokens that nodes issue at
// login and that any gateway accepts on resume: an HMAC-SHA256 over the
// claims, with an expiry, under a secret every member of a cluster shares.
package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Errors of Verify.
var (
	// ErrMalformed: the token is not one this package wrote.
	ErrMalformed = errors.New("token: malformed")
	// ErrSignature: the token was not signed with this cluster's secret.
	ErrSignature = errors.New("token: bad signature")
	// ErrExpired: the token's expiry has passed; log in again.
	ErrExpired = errors.New("token: expired")
)

// Claims are what a token vouches for.
type Claims struct {
	UID  uint64 `json:"uid"`
	User string `json:"user"`
	// Exp is the expiry in ms since the Unix epoch.
	Exp int64 `json:"exp"`
}

var enc = base64.RawURLEncoding

// Sign returns a token for c under secret.
func Sign(secret []byte, c Claims) string {
	body, _ := json.Marshal(c)
	payload := enc.EncodeToString(body)
	return payload + "." + enc.EncodeToString(mac(secret, payload))
}

// Verify checks a token's signature and expiry at now.
func Verify(secret []byte, tok string, now time.Time) (Claims, error) {
	payload, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return Claims{}, ErrMalformed
	}
	got, err := enc.DecodeString(sig)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	if !hmac.Equal(got, mac(secret, payload)) {
		return Claims{}, ErrSignature
	}
	body, err := enc.DecodeString(payload)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	var c Claims
	if err := json.Unmarshal(body, &c); err != nil || c.UID == 0 || c.User == "" {
		return Claims{}, ErrMalformed
	}
	if now.UnixMilli() >= c.Exp {
		return Claims{}, ErrExpired
	}
	return c, nil
}

func mac(secret []byte, payload string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(payload))
	return h.Sum(nil)
}
