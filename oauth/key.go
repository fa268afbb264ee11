package oauth

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	jwt "github.com/golang-jwt/jwt/v5"
)

// JWT assertion rules (LINE guide "Issue channel access token v2.1").
const (
	// assertionAudience is the aud claim LINE requires, trailing slash included.
	assertionAudience = "https://api.line.me/"
	// assertionTTL is how far ahead exp is set: LINE rejects more than 30
	// minutes; 25 leaves room for our clock running ahead of LINE's.
	assertionTTL = 25 * time.Minute
	// MaxTokenLifetime is the longest v2.1 token lifetime LINE issues.
	MaxTokenLifetime = 30 * 24 * time.Hour
	// requiredKeyBits is the only RSA size LINE accepts.
	requiredKeyBits = 2048
	// assertionAlg is the only signing algorithm LINE accepts.
	assertionAlg = "RS256"
	// keyUseSig is the JWK "use" LINE's console requires.
	keyUseSig = "sig"
	// maxKeyInput caps what ParseAssertionKey reads: a 2048-bit private
	// JWK or PEM is under 4 KiB.
	maxKeyInput = 64 << 10
)

// ErrMissingKeyID: a key was given without the key ID (kid) the LINE
// Developers Console returned for it. It matches [ErrInvalidInput] too.
var ErrMissingKeyID = fmt.Errorf("%w: assertion key has no key ID", ErrInvalidInput)

// AssertionKey is the private half of an assertion signing key registered
// in the LINE Developers Console, with the key ID (kid) the console
// returned for it. It signs the JWT client assertions of v2.1 issue, the
// key-ID list and stateless-by-JWT issue.
//
// An AssertionKey never prints its private key: under every fmt verb,
// through log/slog and through encoding/json it shows only its key ID (and,
// when printed, its size).
type AssertionKey struct {
	// KeyID is the kid the LINE Developers Console returned when the public
	// key was registered.
	KeyID string
	// PrivateKey is the RSA-2048 private key.
	PrivateKey *rsa.PrivateKey
}

// ParseAssertionKey reads a private assertion key: a private JWK (as
// written by [GenerateAssertionKey] or the LINE guide's tools) or a PEM
// "RSA PRIVATE KEY" (PKCS#1) or "PRIVATE KEY" (PKCS#8) block. keyID is the
// kid the console returned; "" takes the JWK's own kid, and is an error
// naming the missing key ID when the input has none (always so for PEM).
// A non-empty keyID overrides a JWK's kid. Only RSA-2048 private keys are
// accepted. Errors match [ErrInvalidInput] and never quote the key.
func ParseAssertionKey(data []byte, keyID string) (*AssertionKey, error) {
	if len(data) > maxKeyInput {
		return nil, invalidInput("assertion key input is %d bytes; a 2048-bit private key is under %d", len(data), maxKeyInput)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, invalidInput("assertion key is empty")
	}
	var (
		priv *rsa.PrivateKey
		kid  string
		err  error
	)
	if data[0] == '{' {
		priv, kid, err = parseJWK(data)
	} else {
		priv, err = parsePEM(data)
	}
	if err != nil {
		return nil, err
	}
	if keyID != "" {
		kid = keyID
	}
	if kid == "" {
		return nil, fmt.Errorf("%w: pass the kid that the LINE Developers Console returned when the public key was registered (LINE_KEY_ID)", ErrMissingKeyID)
	}
	k := &AssertionKey{KeyID: kid, PrivateKey: priv}
	if err := k.validate(); err != nil {
		return nil, err
	}
	return k, nil
}

func parseJWK(data []byte) (*rsa.PrivateKey, string, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		return nil, "", invalidInput("assertion key is not a valid JWK: %s", scrubJOSE(err))
	}
	switch k := jwk.Key.(type) {
	case *rsa.PrivateKey:
		if jwk.Algorithm != "" && jwk.Algorithm != assertionAlg {
			return nil, "", invalidInput("assertion key JWK has alg %q; LINE requires %s", jwk.Algorithm, assertionAlg)
		}
		return k, jwk.KeyID, nil
	case *rsa.PublicKey:
		return nil, "", invalidInput("assertion key JWK is a public key; the private key (with \"d\") is needed to sign assertions")
	default:
		return nil, "", invalidInput("assertion key JWK is %s; LINE requires an RSA 2048-bit key", keyTypeName(jwk.Key))
	}
}

// scrubJOSE keeps go-jose's error text, which names fields, never values.
func scrubJOSE(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func parsePEM(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, invalidInput("assertion key is neither a JWK (JSON) nor PEM")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, invalidInput("assertion key PEM (PKCS#1) does not parse")
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, invalidInput("assertion key PEM (PKCS#8) does not parse")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, invalidInput("assertion key PEM holds %s; LINE requires an RSA 2048-bit key", keyTypeName(k))
		}
		return rk, nil
	case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
		return nil, invalidInput("assertion key PEM is a %s; the private key is needed to sign assertions", block.Type)
	case "ENCRYPTED PRIVATE KEY":
		return nil, invalidInput("assertion key PEM is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)")
	default:
		return nil, invalidInput("assertion key PEM block %q is not a private key", block.Type)
	}
}

func keyTypeName(k any) string {
	switch k.(type) {
	case nil:
		return "no key"
	case *rsa.PublicKey, *rsa.PrivateKey:
		return "RSA"
	}
	return fmt.Sprintf("a %T key", k)
}

// validate checks that k can sign assertions LINE accepts.
func (k *AssertionKey) validate() error {
	if k == nil || k.PrivateKey == nil {
		return invalidInput("assertion key has no private key")
	}
	if k.KeyID == "" {
		return invalidInput("assertion key has no key ID (the kid the LINE Developers Console returned)")
	}
	if bits := k.PrivateKey.N.BitLen(); bits != requiredKeyBits {
		return invalidInput("assertion key is RSA-%d; LINE requires RSA-%d", bits, requiredKeyBits)
	}
	if err := k.PrivateKey.Validate(); err != nil {
		return invalidInput("assertion key is not a valid RSA private key")
	}
	return nil
}

// GenerateAssertionKey makes a new RSA-2048 assertion signing key. It
// returns the private key as a JWK to keep secret (load it with
// [ParseAssertionKey] and the kid the console returns) and the public key
// as the JWK the LINE Developers Console accepts: kty RSA, alg RS256, use
// sig, n, e and no kid.
func GenerateAssertionKey() (privateJWK, publicJWK []byte, err error) {
	priv, err := rsa.GenerateKey(rand.Reader, requiredKeyBits)
	if err != nil {
		return nil, nil, fmt.Errorf("oauth: generating RSA key: %w", err)
	}
	privateJWK, err = jose.JSONWebKey{Key: priv, Algorithm: assertionAlg, Use: keyUseSig}.MarshalJSON()
	if err != nil {
		return nil, nil, fmt.Errorf("oauth: encoding private JWK: %w", err)
	}
	publicJWK, err = jose.JSONWebKey{Key: &priv.PublicKey, Algorithm: assertionAlg, Use: keyUseSig}.MarshalJSON()
	if err != nil {
		return nil, nil, fmt.Errorf("oauth: encoding public JWK: %w", err)
	}
	return privateJWK, publicJWK, nil
}

// PublicJWK returns the public half of k as the JWK the LINE Developers
// Console accepts (kty RSA, alg RS256, use sig, n, e, no kid).
func (k *AssertionKey) PublicJWK() ([]byte, error) {
	if k == nil || k.PrivateKey == nil {
		return nil, invalidInput("assertion key has no private key")
	}
	return jose.JSONWebKey{Key: &k.PrivateKey.PublicKey, Algorithm: assertionAlg, Use: keyUseSig}.MarshalJSON()
}

// SignAssertion returns a JWT client assertion for channelID, signed RS256
// with kid k.KeyID: iss = sub = channelID, aud "https://api.line.me/", exp
// 25 minutes from now (LINE allows at most 30; the margin absorbs clock
// skew) and, when tokenLifetime > 0, token_exp = tokenLifetime in whole
// seconds (at most 30 days). tokenLifetime 0 omits token_exp, as the key-ID
// list and stateless issue want. The assertion is a secret: it
// authenticates as the channel until it expires.
func (k *AssertionKey) SignAssertion(channelID string, tokenLifetime time.Duration) (string, error) {
	return k.signAssertion(channelID, tokenLifetime, time.Now())
}

func (k *AssertionKey) signAssertion(channelID string, tokenLifetime time.Duration, now time.Time) (string, error) {
	if err := k.validate(); err != nil {
		return "", err
	}
	if err := validChannelID(channelID); err != nil {
		return "", err
	}
	claims := jwt.MapClaims{
		"iss": channelID,
		"sub": channelID,
		"aud": assertionAudience,
		"exp": now.Add(assertionTTL).Unix(),
	}
	if tokenLifetime != 0 {
		secs, err := lifetimeSeconds(tokenLifetime)
		if err != nil {
			return "", err
		}
		claims["token_exp"] = secs
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = k.KeyID
	s, err := t.SignedString(k.PrivateKey)
	if err != nil {
		return "", errors.New("oauth: signing assertion failed")
	}
	return s, nil
}

// lifetimeSeconds checks a requested v2.1 lifetime and returns it in whole
// seconds.
func lifetimeSeconds(d time.Duration) (int64, error) {
	if d < time.Second {
		return 0, invalidInput("token lifetime %v is below 1s", d)
	}
	if d > MaxTokenLifetime {
		return 0, invalidInput("token lifetime %v exceeds LINE's maximum of 30 days", d)
	}
	return int64(d / time.Second), nil
}

// String shows the key ID and size, never key material.
func (k AssertionKey) String() string {
	bits := 0
	if k.PrivateKey != nil && k.PrivateKey.N != nil {
		bits = k.PrivateKey.N.BitLen()
	}
	return fmt.Sprintf("oauth.AssertionKey{KeyID: %q, PrivateKey: RSA-%d REDACTED}", k.KeyID, bits)
}

// Format prints [AssertionKey.String] under every verb, %#v included.
func (k AssertionKey) Format(f fmt.State, _ rune) { writeString(f, k.String()) }

// LogValue keeps the private key out of log/slog output.
func (k AssertionKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key_id", k.KeyID), slog.String("private_key", redacted))
}

// MarshalJSON encodes k for display as LogValue does, its private key
// REDACTED, so that encoding/json and JSON log handlers never expose it.
// Persist a key as the private JWK [GenerateAssertionKey] wrote.
func (k AssertionKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		KeyID      string `json:"key_id"`
		PrivateKey string `json:"private_key"`
	}{k.KeyID, redacted})
}
