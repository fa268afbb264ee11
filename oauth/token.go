package oauth

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// redacted stands in for a secret in printed and logged values.
const redacted = "REDACTED"

// Token is an issued channel access token.
//
// A Token never prints its access token: under every fmt verb, %#v
// included, and through log/slog it shows REDACTED in its place. Read
// AccessToken explicitly to use it.
type Token struct {
	// AccessToken is the channel access token itself: a secret.
	AccessToken string
	// TokenType is "Bearer".
	TokenType string
	// KeyID identifies a v2.1 token (for [Client.ValidKeyIDs]); "" for
	// other kinds.
	KeyID string
	// ExpiresIn is the lifetime LINE reported.
	ExpiresIn time.Duration
	// Expiry is when the token expires: the time the response arrived
	// (by [Config.Clock]) plus ExpiresIn.
	Expiry time.Time
}

// Valid reports whether t holds a token that has not expired at now.
func (t *Token) Valid(now time.Time) bool {
	return t != nil && t.AccessToken != "" && now.Before(t.Expiry)
}

// String describes t without its access token.
func (t Token) String() string {
	return fmt.Sprintf("oauth.Token{AccessToken: %s, TokenType: %q, KeyID: %q, ExpiresIn: %v, Expiry: %s}",
		secretMark(t.AccessToken), t.TokenType, t.KeyID, t.ExpiresIn, t.Expiry.Format(time.RFC3339))
}

// Format prints [Token.String] under every verb, %#v included.
func (t Token) Format(f fmt.State, _ rune) { writeString(f, t.String()) }

// LogValue keeps the access token out of log/slog output.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("access_token", secretMark(t.AccessToken)),
		slog.String("token_type", t.TokenType),
		slog.String("key_id", t.KeyID),
		slog.Duration("expires_in", t.ExpiresIn),
		slog.Time("expiry", t.Expiry),
	)
}

// MarshalJSON encodes t for display, with its access token REDACTED, so
// that encoding/json and log handlers never expose it. Stores persist
// tokens through [StoreEntry.MarshalBinary].
func (t Token) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		AccessToken string    `json:"access_token"`
		TokenType   string    `json:"token_type,omitempty"`
		KeyID       string    `json:"key_id,omitempty"`
		ExpiresIn   float64   `json:"expires_in"`
		Expiry      time.Time `json:"expiry"`
	}{secretMark(t.AccessToken), t.TokenType, t.KeyID, t.ExpiresIn.Seconds(), t.Expiry})
}

// TokenInfo is what a verify endpoint reports about a token.
type TokenInfo struct {
	// ClientID is the channel ID the token was issued for.
	ClientID string
	// Scope lists the token's permissions, space-separated ("" when LINE
	// sends none).
	Scope string
	// ExpiresIn is the remaining lifetime LINE reported (about 99 years for
	// a long-lived token).
	ExpiresIn time.Duration
	// Expiry is the time the response arrived plus ExpiresIn.
	Expiry time.Time
}

// secretMark shows whether a secret is set without showing it.
func secretMark(s string) string {
	if s == "" {
		return `""`
	}
	return redacted
}

func writeString(w io.Writer, s string) { _, _ = io.WriteString(w, s) }
