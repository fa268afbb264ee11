package oauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	jwt "github.com/golang-jwt/jwt/v5"

	"github.com/linetoken/linetoken/oauth"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// checkAssertion verifies a JWT assertion independently of the code that
// made it: RS256 signature with the public key, header and every claim.
func checkAssertion(t *testing.T, assertion string, key *oauth.AssertionKey, lifetime time.Duration, now time.Time) {
	t.Helper()
	if assertion == "" {
		t.Fatal("no assertion sent")
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithAudience("https://api.line.me/"), jwt.WithIssuer(testChannelID), jwt.WithSubject(testChannelID),
		jwt.WithExpirationRequired())
	claims := jwt.MapClaims{}
	tok, err := parser.ParseWithClaims(assertion, claims, func(tok *jwt.Token) (any, error) {
		return &key.PrivateKey.PublicKey, nil
	})
	if err != nil {
		t.Fatalf("assertion does not verify: %v", err)
	}
	if tok.Header["typ"] != "JWT" || tok.Header["alg"] != "RS256" || tok.Header["kid"] != key.KeyID {
		t.Errorf("header = %v, want typ JWT, alg RS256, kid %q", tok.Header, key.KeyID)
	}
	// Claims must be exactly these, numbers as JSON numbers.
	parts := strings.Split(assertion, ".")
	raw, err := jwt.NewParser().DecodeSegment(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"aud", "exp", "iss", "sub"}
	if lifetime > 0 {
		want = append(want, "token_exp")
	}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	if len(got) != len(want) {
		t.Errorf("claims = %v, want exactly %v", m, want)
	}
	if aud, ok := m["aud"].(string); !ok || aud != "https://api.line.me/" {
		t.Errorf("aud = %#v, want the string https://api.line.me/", m["aud"])
	}
	exp, ok := m["exp"].(float64)
	if !ok {
		t.Fatalf("exp = %#v, want a JSON number", m["exp"])
	}
	ahead := time.Unix(int64(exp), 0).Sub(now)
	if ahead <= 20*time.Minute || ahead >= 30*time.Minute {
		t.Errorf("exp is %v ahead, want a little under 30 minutes", ahead)
	}
	if lifetime > 0 {
		te, ok := m["token_exp"].(float64)
		if !ok || int64(te) != int64(lifetime/time.Second) {
			t.Errorf("token_exp = %#v, want the number %d", m["token_exp"], int64(lifetime/time.Second))
		}
	}
}

func TestSignAssertion(t *testing.T) {
	key := mustKey(t)
	a, err := key.SignAssertion(testChannelID, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	checkAssertion(t, a, key, 48*time.Hour, time.Now())
	a, err = key.SignAssertion(testChannelID, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkAssertion(t, a, key, 0, time.Now())

	for _, tc := range []struct {
		channel  string
		lifetime time.Duration
	}{
		{"", time.Hour}, {"not-numeric", time.Hour}, {testChannelID, 31 * 24 * time.Hour}, {testChannelID, -time.Hour},
	} {
		if _, err := key.SignAssertion(tc.channel, tc.lifetime); !errors.Is(err, oauth.ErrInvalidInput) {
			t.Errorf("SignAssertion(%q, %v) error = %v, want ErrInvalidInput", tc.channel, tc.lifetime, err)
		}
	}
}

func TestGenerateAssertionKeyRoundTrip(t *testing.T) {
	priv, pub, err := oauth.GenerateAssertionKey()
	if err != nil {
		t.Fatal(err)
	}
	// The public JWK is what the console accepts: kty, alg, use, n, e, no kid.
	var m map[string]any
	if err := json.Unmarshal(pub, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"kty": "RSA", "alg": "RS256", "use": "sig"} {
		if m[k] != want {
			t.Errorf("public JWK %s = %v, want %s", k, m[k], want)
		}
	}
	for _, k := range []string{"n", "e"} {
		if s, _ := m[k].(string); s == "" {
			t.Errorf("public JWK lacks %s", k)
		}
	}
	for _, k := range []string{"kid", "d", "p", "q", "dp", "dq", "qi"} {
		if _, ok := m[k]; ok {
			t.Errorf("public JWK has %q", k)
		}
	}
	if len(m) != 5 {
		t.Errorf("public JWK members = %v, want exactly kty alg use n e", m)
	}
	// The private JWK has no kid: loading it without one names what is missing.
	if _, err := oauth.ParseAssertionKey(priv, ""); err == nil || !strings.Contains(err.Error(), "key ID") {
		t.Errorf("ParseAssertionKey(no kid) error = %v, want one naming the missing key ID", err)
	}
	k, err := oauth.ParseAssertionKey(priv, "console-kid")
	if err != nil {
		t.Fatal(err)
	}
	if k.KeyID != "console-kid" || k.PrivateKey.N.BitLen() != 2048 {
		t.Errorf("key = %v", k)
	}
	// The public JWK matches the private key: an assertion signed with the
	// private key verifies with the parsed public JWK.
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(pub); err != nil {
		t.Fatal(err)
	}
	pk, ok := jwk.Key.(*rsa.PublicKey)
	if !ok || !pk.Equal(&k.PrivateKey.PublicKey) {
		t.Fatal("public JWK does not match the private key")
	}
	again, err := k.PublicJWK()
	if err != nil || string(again) != string(pub) {
		t.Errorf("PublicJWK() = %s, %v; want %s", again, err, pub)
	}
	// A private JWK with its own kid loads without one given.
	withKid, err := jose.JSONWebKey{Key: k.PrivateKey, KeyID: "own-kid", Algorithm: "RS256", Use: "sig"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := oauth.ParseAssertionKey(withKid, "")
	if err != nil || k2.KeyID != "own-kid" {
		t.Errorf("ParseAssertionKey(JWK with kid) = %v, %v", k2, err)
	}
}

func TestParseAssertionKeyPEM(t *testing.T) {
	rk := mustKey(t).PrivateKey
	pkcs8, err := x509.MarshalPKCS8PrivateKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"PKCS1": {Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)},
		"PKCS8": {Type: "PRIVATE KEY", Bytes: pkcs8},
	} {
		data := pem.EncodeToMemory(block)
		k, err := oauth.ParseAssertionKey(append([]byte("\n  "), data...), "pem-kid")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !k.PrivateKey.Equal(rk) || k.KeyID != "pem-kid" {
			t.Errorf("%s: parsed a different key", name)
		}
		if _, err := oauth.ParseAssertionKey(data, ""); err == nil || !strings.Contains(err.Error(), "key ID") {
			t.Errorf("%s without kid: error = %v, want one naming the key ID", name, err)
		}
	}
}

func TestParseAssertionKeyRejects(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	pubDER, _ := x509.MarshalPKIXPublicKey(&mustKey(t).PrivateKey.PublicKey)
	jwkOf := func(k any, alg string) []byte {
		b, err := jose.JSONWebKey{Key: k, Algorithm: alg}.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string]struct {
		data []byte
		want string
	}{
		"empty":         {nil, "empty"},
		"garbage":       {[]byte("not a key"), "neither"},
		"bad JSON":      {[]byte("{\"kty\":"), "not a valid JWK"},
		"RSA-1024 PEM":  {pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}), "RSA-1024"},
		"RSA-1024 JWK":  {jwkOf(small, "RS256"), "RSA-1024"},
		"EC PEM":        {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), "RSA 2048"},
		"EC JWK":        {jwkOf(ec, "ES256"), "RSA 2048"},
		"public PEM":    {pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), "private key is needed"},
		"public JWK":    {jwkOf(&mustKey(t).PrivateKey.PublicKey, "RS256"), "public key"},
		"wrong alg JWK": {jwkOf(mustKey(t).PrivateKey, "RS512"), "RS256"},
		"encrypted PEM": {pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2}}), "encrypted"},
		"corrupt PKCS1": {pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "does not parse"},
		"huge input":    {make([]byte, 1<<20), "bytes"},
		"certificate":   {pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), "private key is needed"},
		"unknown block": {pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: []byte{1}}), "not a private key"},
	}
	for name, tc := range cases {
		_, err := oauth.ParseAssertionKey(tc.data, "kid")
		if !errors.Is(err, oauth.ErrInvalidInput) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want ErrInvalidInput mentioning %q", name, err, tc.want)
		}
	}
}
