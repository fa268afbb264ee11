package oauthtest

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	jwt "github.com/golang-jwt/jwt/v5"
)

// The JWS-shaped tokens this server mints (v2.1 and stateless) are HS256
// JWTs under a per-server key, with these claims.
const (
	tokenIssuer        = "oauthtest"
	kindClaimV21       = "v2.1"
	kindClaimStateless = "stateless"
	mintedAlg          = "HS256"
	// maxOpaqueTokenLen is the longest string the v2 endpoints treat as a
	// well-formed token: LINE's are 172 characters.
	maxOpaqueTokenLen = 2048
)

type mintedClaims struct {
	jwt.RegisteredClaims
	// Kind tells a v2.1 token from a stateless one.
	Kind string `json:"ctk"`
}

// mint signs a JWS-shaped token for channelID.
func (s *Server) mint(kind, channelID, id string, iat, exp time.Time) string {
	c := mintedClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Subject:   channelID,
			ID:        id,
			IssuedAt:  jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Kind: kind,
	}
	v, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.tokenKey)
	if err != nil {
		panic("oauthtest: signing a token: " + err.Error()) // HS256 with a []byte key cannot fail
	}
	return v
}

// parseMinted checks that v is a token this server minted (signature
// only; expiry is the caller's business).
func (s *Server) parseMinted(v string) (*mintedClaims, bool) {
	var c mintedClaims
	_, err := jwt.ParseWithClaims(v, &c, func(*jwt.Token) (any, error) { return s.tokenKey, nil },
		jwt.WithValidMethods([]string{mintedAlg}), jwt.WithoutClaimsValidation())
	if err != nil || c.ExpiresAt == nil {
		return nil, false
	}
	return &c, true
}

// jwsProblem returns "" for a token in JWS compact form (three non-empty
// base64url parts, header and payload JSON objects), else LINE's
// description of what is wrong with it.
func jwsProblem(v string) string {
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return descNotJWS
	}
	for _, p := range parts {
		if p == "" || !isBase64URL(p) {
			return descNotJWS
		}
	}
	for _, p := range parts[:2] {
		raw, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			return descMalformed
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return descMalformed
		}
	}
	return ""
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// opaqueWellFormed reports whether the v2 endpoints take v for a token at
// all: base64 (standard or URL alphabet), dots and padding only, at most
// maxOpaqueTokenLen long. A JWS-shaped token is well formed (and unknown).
func opaqueWellFormed(v string) bool {
	if v == "" || len(v) > maxOpaqueTokenLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '+' || c == '/' || c == '=' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// expiresIn is the remaining lifetime in whole seconds, rounded up so a
// valid token never reports 0.
func expiresIn(expiry, now time.Time) int64 {
	d := expiry.Sub(now)
	secs := int64(d / time.Second)
	if d%time.Second != 0 {
		secs++
	}
	return secs
}
