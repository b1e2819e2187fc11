package token

import (
	"errors"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	secret := []byte("s3cret")
	now := time.UnixMilli(1_000_000)
	good := Sign(secret, Claims{UID: 7, User: "alice", Exp: now.Add(time.Minute).UnixMilli()})
	tests := []struct {
		name string
		tok  string
		key  []byte
		want error
	}{
		{"valid", good, secret, nil},
		{"other secret", good, []byte("other"), ErrSignature},
		{"expired", Sign(secret, Claims{UID: 7, User: "alice", Exp: now.UnixMilli()}), secret, ErrExpired},
		{"no dot", "abc", secret, ErrMalformed},
		{"bad base64", "###.###", secret, ErrMalformed},
		{"tampered payload", "eyJ1aWQiOjgsInVzZXIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OTk5OX0" + good[len(good)-44:], secret, ErrSignature},
		{"empty claims", Sign(secret, Claims{Exp: now.Add(time.Minute).UnixMilli()}), secret, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Verify(tt.key, tt.tok, now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify(%q) error = %v, want %v", tt.tok, err, tt.want)
			}
			if tt.want == nil && (c.UID != 7 || c.User != "alice") {
				t.Fatalf("claims = %+v, want uid 7 alice", c)
			}
		})
	}
}
