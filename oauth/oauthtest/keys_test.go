package oauthtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/linetoken/linetoken/oauth"
)

func TestRegisterKey(t *testing.T) {
	srv := newServer(t)
	srv.AddChannel("1234567890", "0123456789abcdef0123456789abcdef")
	privJWK, pubJWK, err := oauth.GenerateAssertionKey()
	if err != nil {
		t.Fatal(err)
	}
	var pubMap map[string]any
	if err := json.Unmarshal(pubJWK, &pubMap); err != nil {
		t.Fatal(err)
	}
	edited := func(edit func(m map[string]any)) []byte {
		m := map[string]any{}
		for k, v := range pubMap {
			m[k] = v
		}
		edit(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	small, _ := jose.JSONWebKey{Key: &rsa1024.PublicKey, Algorithm: "RS256", Use: "sig"}.MarshalJSON()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecJWK, _ := jose.JSONWebKey{Key: &ec.PublicKey, Algorithm: "ES256", Use: "sig"}.MarshalJSON()
	ecAsRS256, _ := jose.JSONWebKey{Key: &ec.PublicKey, Algorithm: "RS256", Use: "sig"}.MarshalJSON()

	for _, tc := range []struct {
		name string
		jwk  []byte
		want string // "" = accepted; else a text of the error
	}{
		{"console public JWK", pubJWK, ""},
		{"key_ops verify instead of use", edited(func(m map[string]any) { delete(m, "use"); m["key_ops"] = []string{"verify"} }), ""},
		{"use and key_ops", edited(func(m map[string]any) { m["key_ops"] = []string{"verify"} }), ""},
		{"with kid", edited(func(m map[string]any) { m["kid"] = "mine" }), "kid"},
		{"private JWK", privJWK, `private member "d"`},
		{"private JWK without kid", edited(func(m map[string]any) { m["p"] = "AQAB" }), `private member "p"`},
		{"RSA-1024", small, "RSA-1024"},
		{"EC P-256", ecJWK, "kty"},
		{"EC claiming RS256", ecAsRS256, "kty"},
		{"no alg", edited(func(m map[string]any) { delete(m, "alg") }), "alg"},
		{"alg RS512", edited(func(m map[string]any) { m["alg"] = "RS512" }), "alg"},
		{"use enc", edited(func(m map[string]any) { m["use"] = "enc" }), "use"},
		{"no use nor key_ops", edited(func(m map[string]any) { delete(m, "use") }), "use"},
		{"key_ops sign", edited(func(m map[string]any) { m["key_ops"] = []string{"sign"} }), "key_ops"},
		{"x5c member", edited(func(m map[string]any) { m["x5c"] = []string{} }), "x5c"},
		{"not JSON", []byte("-----BEGIN PUBLIC KEY-----"), "JSON"},
		{"bad modulus", edited(func(m map[string]any) { m["n"] = "!!" }), "parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kid, err := srv.RegisterKey("1234567890", tc.jwk)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(kid) {
					t.Errorf("kid %q is not a UUID", kid)
				}
				return
			}
			if !errors.Is(err, ErrInvalidJWK) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidJWK about %q", err, tc.want)
			}
			if kid != "" {
				t.Errorf("kid %q returned with an error", kid)
			}
		})
	}
	if _, err := srv.RegisterKey("9999999999", pubJWK); !errors.Is(err, ErrUnknownChannel) {
		t.Errorf("unknown channel: %v", err)
	}
}

func TestRegisteredKeyIssues(t *testing.T) {
	// AddChannel + RegisterKey by hand, as a user without NewChannel would.
	srv := newServer(t)
	srv.AddChannel("1573163733", "s3cret")
	privJWK, pubJWK, err := oauth.GenerateAssertionKey()
	if err != nil {
		t.Fatal(err)
	}
	kid, err := srv.RegisterKey("1573163733", pubJWK)
	if err != nil {
		t.Fatal(err)
	}
	key, err := oauth.ParseAssertionKey(privJWK, kid)
	if err != nil {
		t.Fatal(err)
	}
	c, err := oauth.NewClient(oauth.Config{BaseURL: srv.URL(), ChannelID: "1573163733", ChannelSecret: "s3cret", Key: key, Clock: srv.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.IssueToken(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	// A second key for the same channel works too, with its own kid.
	_, pub2, _ := oauth.GenerateAssertionKey()
	kid2, err := srv.RegisterKey("1573163733", pub2)
	if err != nil || kid2 == kid {
		t.Fatalf("second key: %q, %v", kid2, err)
	}
	// AddChannel again replaces the secret.
	srv.AddChannel("1573163733", "new")
	if _, err := c.IssueShortLivedToken(t.Context()); !errors.Is(err, oauth.ErrInvalidCredentials) {
		t.Errorf("old secret after AddChannel: %v", err)
	}
}

func TestAddChannelPanicsOnBadInput(t *testing.T) {
	srv := newServer(t)
	for _, tc := range []struct{ id, secret string }{{"abc", "s"}, {"", "s"}, {"123", ""}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AddChannel(%q, %q) did not panic", tc.id, tc.secret)
				}
			}()
			srv.AddChannel(tc.id, tc.secret)
		}()
	}
}

func TestNewChannelAndConfig(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	if !regexp.MustCompile(`^[1-9][0-9]{9}$`).MatchString(ch.ID) {
		t.Errorf("ID %q, want 10 digits", ch.ID)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(ch.Secret) {
		t.Errorf("secret is not 32 hex digits")
	}
	if ch.Key == nil || ch.Key.KeyID != ch.KeyID || !strings.Contains(string(ch.PrivateJWK), `"d"`) {
		t.Errorf("key not filled in")
	}
	if k, err := oauth.ParseAssertionKey(ch.PrivateJWK, ch.KeyID); err != nil || !k.PrivateKey.Equal(ch.Key.PrivateKey) {
		t.Errorf("PrivateJWK does not parse to Key: %v", err)
	}
	cfg := srv.Config(ch.ID)
	if cfg.BaseURL != srv.URL() || cfg.ChannelID != ch.ID || cfg.ChannelSecret != ch.Secret || cfg.Key != ch.Key || cfg.Clock == nil {
		t.Errorf("Config = %v", cfg)
	}
	js, err := json.Marshal(map[string]any{"ch": ch, "list": []Channel{ch}, "nested": struct{ C Channel }{ch}})
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "nested", struct{ C Channel }{ch})
	for _, s := range []string{ch.String(), fmt.Sprintf("%#v", ch), fmt.Sprintf("%+v", ch), string(js), logged.String()} {
		if strings.Contains(s, ch.Secret) || strings.Contains(s, `"d"`) {
			t.Errorf("Channel prints a secret: %s", s)
		}
	}
	if srv.NewChannel(t).ID == ch.ID {
		t.Error("two channels share an ID")
	}
}

func TestClockAdvance(t *testing.T) {
	srv := newServer(t)
	before := srv.Now()
	srv.Advance(48 * 3600e9)
	if d := srv.Now().Sub(before); d < 48*3600e9 || d > 48*3600e9+5e9 {
		t.Errorf("Now moved %v, want 48h", d)
	}
}
