package oauthtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jwt "github.com/golang-jwt/jwt/v5"

	"github.com/linetoken/linetoken/oauth"
)

// This file is the client suite of the first issue, run against this fake
// instead of a hand-written server: it drives all eight operations through
// the real oauth.Client. TestClientWireFormat mirrors oauth/wire_test.go
// TestWireFormat, reading what the client sent from the fake's request log.

func TestV21IssueVerifyRevoke(t *testing.T) {
	srv, ch, c := newChannel(t)
	ctx := context.Background()

	tok, err := c.IssueToken(ctx, time.Hour)
	if err != nil {
		t.Fatalf("IssueToken: %v", err)
	}
	if !isJWS(tok.AccessToken) {
		t.Errorf("v2.1 token is not JWS-shaped")
	}
	if tok.KeyID == "" || tok.TokenType != "Bearer" || tok.ExpiresIn != time.Hour {
		t.Errorf("token = %v, want a key ID, Bearer, 1h", tok)
	}
	info, err := c.VerifyToken(ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("VerifyToken: %v", err)
	}
	if info.ClientID != ch.ID || info.ExpiresIn != time.Hour || info.Scope == "" {
		t.Errorf("info = %+v, want client %s, 1h, a scope", info, ch.ID)
	}
	kids, err := c.ValidKeyIDs(ctx)
	if err != nil {
		t.Fatalf("ValidKeyIDs: %v", err)
	}
	if !slices.Equal(kids, []string{tok.KeyID}) {
		t.Errorf("kids = %v, want [%s]", kids, tok.KeyID)
	}
	if got, ok := srv.Lookup(tok.AccessToken); !ok || got.Kind != KindV21 || got.KeyID != tok.KeyID || got.ChannelID != ch.ID {
		t.Errorf("Lookup = %+v, %t", got, ok)
	}

	if err := c.RevokeToken(ctx, tok.AccessToken); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	_, err = c.VerifyToken(ctx, tok.AccessToken)
	ae := wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidToken)
	if ae.Code != "invalid_request" || ae.Description != "access_token invalid" {
		t.Errorf("revoked verify: %v", err)
	}
	if kids, _ := c.ValidKeyIDs(ctx); len(kids) != 0 {
		t.Errorf("kids after revoke = %v, want none", kids)
	}
	if n := srv.ActiveTokens(ch.ID); n != 0 {
		t.Errorf("ActiveTokens = %d, want 0", n)
	}
	st := srv.Stats()
	if st.Issued[KindV21] != 1 || st.Revoked[KindV21] != 1 || st.IssueRequests[KindV21] != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestV21VerifyReportsRemainingLifetime(t *testing.T) {
	srv, _, c := newChannel(t)
	ctx := context.Background()
	tok, err := c.IssueToken(ctx, 0) // 0: 30 days
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresIn != 30*24*time.Hour {
		t.Errorf("ExpiresIn = %v, want 720h", tok.ExpiresIn)
	}
	srv.Advance(10 * 24 * time.Hour)
	info, err := c.VerifyToken(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if want := 20 * 24 * time.Hour; info.ExpiresIn > want || info.ExpiresIn < want-2*time.Second {
		t.Errorf("ExpiresIn after 10 days = %v, want about %v", info.ExpiresIn, want)
	}
}

func TestV21TokenExpires(t *testing.T) {
	srv, _, c := newChannel(t)
	ctx := context.Background()
	tok, err := c.IssueToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv.Advance(time.Hour - 2*time.Second)
	if _, err := c.VerifyToken(ctx, tok.AccessToken); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	srv.Advance(2 * time.Second)
	_, err = c.VerifyToken(ctx, tok.AccessToken)
	ae := wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidToken)
	if ae.Code != "invalid_request" || ae.Description != "The access token expired" {
		t.Errorf("expired verify: %v", err)
	}
	if kids, err := c.ValidKeyIDs(ctx); err != nil || len(kids) != 0 {
		t.Errorf("kids = %v, %v; want none", kids, err)
	}
	if _, ok := srv.Lookup(tok.AccessToken); ok {
		t.Error("Lookup says an expired token is valid")
	}
}

func TestV21LimitOf30(t *testing.T) {
	srv, ch, c := newChannel(t)
	ctx := context.Background()
	var toks []*oauth.Token
	for i := range 30 {
		lifetime := 2 * time.Hour
		if i == 0 {
			lifetime = time.Hour
		}
		tok, err := c.IssueToken(ctx, lifetime)
		if err != nil {
			t.Fatalf("issue %d: %v", i+1, err)
		}
		toks = append(toks, tok)
	}
	_, err := c.IssueToken(ctx, time.Hour)
	ae := wantAPIError(t, err, http.StatusBadRequest, oauth.ErrTokenLimitReached)
	if ae.Message != "The maximum number of access tokens has already been issued" || ae.Code != "" {
		t.Errorf("31st: %v", err)
	}
	if n := srv.ActiveTokens(ch.ID); n != 30 {
		t.Errorf("ActiveTokens = %d, want 30", n)
	}
	kids, err := c.ValidKeyIDs(ctx)
	if err != nil || len(kids) != 30 {
		t.Fatalf("kids = %d, %v; want 30", len(kids), err)
	}

	// Revoking one frees its slot.
	if err := c.RevokeToken(ctx, toks[5].AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, err := c.IssueToken(ctx, 2*time.Hour); err != nil {
		t.Fatalf("issue after revoke: %v", err)
	}
	if _, err := c.IssueToken(ctx, time.Hour); !errors.Is(err, oauth.ErrTokenLimitReached) {
		t.Fatalf("at the cap again: %v", err)
	}

	// An expired token frees its slot too: toks[0] lived 1h.
	srv.Advance(time.Hour)
	if n := srv.ActiveTokens(ch.ID); n != 29 {
		t.Errorf("ActiveTokens after 1h = %d, want 29", n)
	}
	if _, err := c.IssueToken(ctx, time.Hour); err != nil {
		t.Fatalf("issue after expiry: %v", err)
	}
	// Another channel has slots of its own.
	other := srv.NewChannel(t)
	if _, err := srv.Client(t, other.ID).IssueToken(ctx, time.Hour); err != nil {
		t.Fatalf("other channel: %v", err)
	}
}

func TestV21ExpiredTokensFreeAllSlots(t *testing.T) {
	srv, _, c := newChannel(t)
	ctx := context.Background()
	for range 30 {
		if _, err := c.IssueToken(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.IssueToken(ctx, time.Minute); !errors.Is(err, oauth.ErrTokenLimitReached) {
		t.Fatalf("31st: %v", err)
	}
	srv.Advance(time.Minute)
	for range 30 {
		if _, err := c.IssueToken(ctx, time.Minute); err != nil {
			t.Fatalf("after expiry: %v", err)
		}
	}
}

func TestV21ConcurrentIssueHonoursLimit(t *testing.T) {
	srv, _, c := newChannel(t)
	const callers = 100
	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		issued, limited int
		others          []error
	)
	for range callers {
		wg.Go(func() {
			_, err := c.IssueToken(context.Background(), time.Hour)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				issued++
			case errors.Is(err, oauth.ErrTokenLimitReached):
				limited++
			default:
				others = append(others, err)
			}
		})
	}
	wg.Wait()
	if issued != 30 || limited != callers-30 || len(others) != 0 {
		t.Fatalf("issued %d, limited %d, others %v; want 30, %d, none", issued, limited, others, callers-30)
	}
	if st := srv.Stats(); st.IssueRequests[KindV21] != callers || st.Issued[KindV21] != 30 {
		t.Errorf("stats = %+v", st)
	}
}

func TestV21RevokeNeedsChannelCredentials(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	ctx := context.Background()
	tok, err := srv.Client(t, ch.ID).IssueToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other := srv.NewChannel(t)
	for _, tc := range []struct {
		name, id, secret, desc string
	}{
		{"wrong secret", ch.ID, other.Secret, "invalid client_secret"},
		{"unknown channel", "1234567890", ch.Secret, "invalid client_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clientFor(t, srv, ch, func(cfg *oauth.Config) {
				cfg.ChannelID, cfg.ChannelSecret, cfg.Key = tc.id, tc.secret, nil
			})
			err := c.RevokeToken(ctx, tok.AccessToken)
			ae := wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidCredentials)
			if ae.Code != "invalid_client" || ae.Description != tc.desc {
				t.Errorf("got %v", err)
			}
			if _, ok := srv.Lookup(tok.AccessToken); !ok {
				t.Error("token revoked without the right credentials")
			}
		})
	}
	// Another channel's credentials do not revoke it either (200, no effect).
	if err := srv.Client(t, other.ID).RevokeToken(ctx, tok.AccessToken); err != nil {
		t.Fatalf("revoke by another channel: %v", err)
	}
	if _, ok := srv.Lookup(tok.AccessToken); !ok {
		t.Error("another channel revoked the token")
	}
}

func TestV21RevokeMalformedAndUnknown(t *testing.T) {
	_, ch, c := newChannel(t)
	ctx := context.Background()
	for _, tc := range []struct{ token, desc string }{
		{"opaque+token/=", "The access token not JWS"},
		{"a.b", "The access token not JWS"},
		{"YWJj.YWJj.YWJj", "The access token malformed"}, // base64url parts, not JSON
	} {
		err := c.RevokeToken(ctx, tc.token)
		ae := wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidToken)
		if ae.Code != "invalid_request" || ae.Description != tc.desc {
			t.Errorf("revoke %q: %v, want %q", tc.token, err, tc.desc)
		}
	}
	// Well-formed but unknown: 200.
	unknown := signJWT(t, map[string]any{"alg": "HS256"}, map[string]any{"sub": "x"}, ch.Key.PrivateKey)
	if err := c.RevokeToken(ctx, unknown); err != nil {
		t.Errorf("revoke unknown JWS: %v", err)
	}
}

func TestV21RevokeExpiredToken(t *testing.T) {
	// An expired token is left alone: 200, nothing revoked, and verify
	// still reports it expired (a revoked token would be "invalid").
	srv, ch, c := newChannel(t)
	ctx := context.Background()
	tok, err := c.IssueToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv.Advance(time.Hour)
	before := srv.Stats()
	if err := c.RevokeToken(ctx, tok.AccessToken); err != nil {
		t.Fatalf("revoke of an expired token: %v", err)
	}
	if req, _ := srv.LastRequest(); req.Path != "/oauth2/v2.1/revoke" || req.Status != http.StatusOK {
		t.Errorf("revoke answered %v, want 200", req)
	}
	after := srv.Stats()
	if after.Revoked[KindV21] != before.Revoked[KindV21] || after.Issued[KindV21] != before.Issued[KindV21] {
		t.Errorf("stats before %+v, after %+v: want no change", before, after)
	}
	_, err = c.VerifyToken(ctx, tok.AccessToken)
	ae := wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidToken)
	if ae.Description != "The access token expired" {
		t.Errorf("verify after revoking the expired token: %v, want \"The access token expired\"", err)
	}
	if n := srv.ActiveTokens(ch.ID); n != 0 {
		t.Errorf("ActiveTokens = %d, want 0", n)
	}
	if kids, err := c.ValidKeyIDs(ctx); err != nil || len(kids) != 0 {
		t.Errorf("kids = %v, %v; want none", kids, err)
	}
}

func TestV21VerifyNotJWSOrUnknown(t *testing.T) {
	srv, ch, c := newChannel(t)
	ctx := context.Background()
	short, err := c.IssueShortLivedToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ token, desc string }{
		{short.AccessToken, "The access token not JWS"},
		{"YWJj.YWJj.YWJj", "The access token malformed"},
		{signJWT(t, map[string]any{"alg": "HS256"}, map[string]any{"sub": "x"}, ch.Key.PrivateKey), "access_token invalid"},
	} {
		_, err := c.VerifyToken(ctx, tc.token)
		ae := wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidToken)
		if ae.Description != tc.desc {
			t.Errorf("verify: %v, want %q", err, tc.desc)
		}
		// The token arrives intact ('+', '/' and '=' of an opaque token included).
		if req, _ := srv.LastRequest(); req.Query.Get("access_token") != tc.token {
			t.Errorf("token arrived altered")
		}
	}
}

func TestKeyNotRegistered(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	ctx := context.Background()
	unknown := *ch.Key
	unknown.KeyID = "00000000-0000-4000-8000-000000000000"
	c := clientFor(t, srv, ch, func(cfg *oauth.Config) { cfg.Key = &unknown })
	check := func(name string, err error) {
		t.Helper()
		ae := wantAPIError(t, err, http.StatusNotFound, oauth.ErrKeyNotRegistered)
		if ae.Message != "Cannot find channel key that satisfies the conditions" {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err := c.IssueToken(ctx, time.Hour)
	check("IssueToken", err)
	_, err = c.ValidKeyIDs(ctx)
	check("ValidKeyIDs", err)
	_, err = c.IssueStatelessToken(ctx)
	check("IssueStatelessToken", err)

	// An unregistered key stops working.
	good := srv.Client(t, ch.ID)
	if _, err := good.IssueToken(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	srv.UnregisterKey(ch.KeyID)
	_, err = good.IssueToken(ctx, time.Hour)
	check("after UnregisterKey", err)
}

func TestKidOfAnotherChannel(t *testing.T) {
	srv := newServer(t)
	a, b := srv.NewChannel(t), srv.NewChannel(t)
	ctx := context.Background()
	// Channel b signs with a's key and kid: iss = sub = b, key owned by a.
	c := clientFor(t, srv, b, func(cfg *oauth.Config) { cfg.Key = a.Key })
	_, err := c.IssueToken(ctx, time.Hour)
	ae := wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidCredentials)
	if ae.Code != "invalid_client" || ae.Description != "iss and clientId of key do not match" {
		t.Errorf("IssueToken: %v", err)
	}
	_, err = c.ValidKeyIDs(ctx)
	ae = wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidCredentials)
	if ae.Code != "invalid_client" || ae.Description != "iss and clientId of key do not match" {
		t.Errorf("ValidKeyIDs: %v", err)
	}
	// The stateless endpoint answers its one documented 400.
	_, err = c.IssueStatelessToken(ctx)
	ae = wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidCredentials)
	if ae.Code != "invalid_request" || ae.Description != "Invalid 'client_credentials'." {
		t.Errorf("IssueStatelessToken: %v", err)
	}
	if srv.ActiveTokens(a.ID)+srv.ActiveTokens(b.ID) != 0 || srv.IssueCount(KindStateless) != 0 {
		t.Error("a token was issued")
	}
}

func TestAssertionSignedInThePast(t *testing.T) {
	// A client whose clock lags the server's signs assertions that have
	// already expired by the server's clock.
	srv := newServer(t)
	ch := srv.NewChannel(t)
	ctx := context.Background()
	c := clientFor(t, srv, ch, func(cfg *oauth.Config) {
		cfg.Clock = func() time.Time { return srv.Now().Add(-time.Hour) }
	})
	_, err := c.IssueToken(ctx, time.Hour)
	ae := wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidCredentials)
	if ae.Description != "iss and clientId of key do not match" {
		t.Errorf("IssueToken: %v", err)
	}
	_, err = c.ValidKeyIDs(ctx)
	ae = wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidCredentials)
	if ae.Description != "Invalid exp" {
		t.Errorf("ValidKeyIDs: %v", err)
	}
	_, err = c.IssueStatelessToken(ctx)
	ae = wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidCredentials)
	if ae.Code != "invalid_request" || ae.Description != "Invalid 'client_credentials'." {
		t.Errorf("IssueStatelessToken: %v", err)
	}
	// A client on real time against an advanced server: the same.
	srv.Advance(time.Hour)
	real := clientFor(t, srv, ch, func(cfg *oauth.Config) { cfg.Clock = nil })
	if _, err := real.IssueToken(ctx, time.Hour); !errors.Is(err, oauth.ErrInvalidCredentials) {
		t.Errorf("real-time client vs advanced server: %v", err)
	}
	// With the server's clock it works.
	if _, err := srv.Client(t, ch.ID).IssueToken(ctx, time.Hour); err != nil {
		t.Errorf("with srv.Now: %v", err)
	}
}

func TestShortLivedIssueVerifyRevoke(t *testing.T) {
	srv, ch, c := newChannel(t)
	ctx := context.Background()
	tok, err := c.IssueShortLivedToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresIn != 2592000*time.Second || tok.TokenType != "Bearer" || tok.KeyID != "" {
		t.Errorf("token = %v", tok)
	}
	if strings.Contains(tok.AccessToken, ".") || len(tok.AccessToken) != 172 {
		t.Errorf("short-lived token is not opaque (len %d)", len(tok.AccessToken))
	}
	info, err := c.VerifyShortLivedToken(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if info.ClientID != ch.ID || info.ExpiresIn != 2592000*time.Second {
		t.Errorf("info = %+v", info)
	}
	if err := c.RevokeShortLivedToken(ctx, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	_, err = c.VerifyShortLivedToken(ctx, tok.AccessToken)
	ae := wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidToken)
	if ae.Description != "access_token invalid" {
		t.Errorf("revoked: %v", err)
	}
	if st := srv.Stats(); st.Revoked[KindShortLived] != 1 || srv.IssueCount(KindShortLived) != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestShortLivedExpiresAfter30Days(t *testing.T) {
	srv, ch, c := newChannel(t)
	ctx := context.Background()
	tok, err := c.IssueShortLivedToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.Advance(30*24*time.Hour - time.Second)
	info, err := c.VerifyShortLivedToken(ctx, tok.AccessToken)
	if err != nil || info.ExpiresIn > time.Second {
		t.Fatalf("1s before expiry: %+v, %v", info, err)
	}
	srv.Advance(time.Second)
	_, err = c.VerifyShortLivedToken(ctx, tok.AccessToken)
	wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidToken)
	if n := srv.ActiveShortLivedTokens(ch.ID); n != 0 {
		t.Errorf("ActiveShortLivedTokens = %d", n)
	}
}

func TestShortLived31stRevokesOldest(t *testing.T) {
	srv, ch, c := newChannel(t)
	ctx := context.Background()
	var toks []*oauth.Token
	for i := range 31 {
		tok, err := c.IssueShortLivedToken(ctx)
		if err != nil {
			t.Fatalf("issue %d: %v", i+1, err)
		}
		toks = append(toks, tok)
		srv.Advance(time.Second) // a clear issue order
	}
	_, err := c.VerifyShortLivedToken(ctx, toks[0].AccessToken)
	wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidToken)
	for i, tok := range toks[1:] {
		if _, err := c.VerifyShortLivedToken(ctx, tok.AccessToken); err != nil {
			t.Errorf("token %d: %v", i+2, err)
		}
	}
	if n := srv.ActiveShortLivedTokens(ch.ID); n != 30 {
		t.Errorf("ActiveShortLivedTokens = %d, want 30", n)
	}
	// The 32nd revokes the (new) oldest.
	if _, err := c.IssueShortLivedToken(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifyShortLivedToken(ctx, toks[1].AccessToken); !errors.Is(err, oauth.ErrInvalidToken) {
		t.Errorf("second oldest after 32nd: %v", err)
	}
	if st := srv.Stats(); st.Revoked[KindShortLived] != 2 || st.Issued[KindShortLived] != 32 {
		t.Errorf("stats = %+v", st)
	}
}

func TestShortLivedBadCredentials(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	other := srv.NewChannel(t)
	for _, tc := range []struct{ name, id, secret, desc string }{
		{"unknown id", "9999999999", ch.Secret, "invalid client_id"},
		{"wrong secret", ch.ID, other.Secret, "invalid client_secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clientFor(t, srv, ch, func(cfg *oauth.Config) { cfg.ChannelID, cfg.ChannelSecret, cfg.Key = tc.id, tc.secret, nil })
			_, err := c.IssueShortLivedToken(context.Background())
			ae := wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidCredentials)
			if ae.Code != "invalid_client" || ae.Description != tc.desc {
				t.Errorf("got %v, want %q", err, tc.desc)
			}
		})
	}
	if n := srv.IssueCount(KindShortLived); n != 0 {
		t.Errorf("IssueCount = %d", n)
	}
}

func TestShortLivedRateLimit(t *testing.T) {
	srv := newServer(t, WithShortLivedRateLimit(3))
	ch := srv.NewChannel(t)
	c := srv.Client(t, ch.ID)
	ctx := context.Background()
	for i := range 3 {
		if _, err := c.IssueShortLivedToken(ctx); err != nil {
			t.Fatalf("issue %d: %v", i+1, err)
		}
	}
	_, err := c.IssueShortLivedToken(ctx)
	ae := wantAPIError(t, err, http.StatusTooManyRequests, oauth.ErrRateLimited)
	if ae.Message != "Too many requests" || !ae.Temporary() {
		t.Errorf("4th: %v", err)
	}
	// Other endpoints are not limited.
	if _, err := c.IssueStatelessToken(ctx); err != nil {
		t.Errorf("stateless: %v", err)
	}
	srv.Advance(time.Second)
	if _, err := c.IssueShortLivedToken(ctx); err != nil {
		t.Errorf("next second: %v", err)
	}
	if n := srv.IssueCount(KindShortLived); n != 4 {
		t.Errorf("IssueCount = %d, want 4", n)
	}
}

func TestStatelessBothForms(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		edit func(*oauth.Config)
		form []string
	}{
		{"by secret", func(cfg *oauth.Config) { cfg.Key = nil }, []string{"client_id", "client_secret", "grant_type"}},
		{"by JWT", func(cfg *oauth.Config) { cfg.ChannelSecret = "" }, []string{"client_assertion", "client_assertion_type", "grant_type"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clientFor(t, srv, ch, tc.edit)
			tok, err := c.IssueStatelessToken(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tok.ExpiresIn != 899*time.Second && tok.ExpiresIn != 900*time.Second {
				t.Errorf("ExpiresIn = %v, want 899s or 900s", tok.ExpiresIn)
			}
			if !isJWS(tok.AccessToken) || tok.TokenType != "Bearer" {
				t.Errorf("token = %v, want JWS-shaped Bearer", tok)
			}
			req, _ := srv.LastRequest()
			if got := sortedKeys(req.Form); !slices.Equal(got, tc.form) {
				t.Errorf("form fields = %v, want %v", got, tc.form)
			}
			info, ok := srv.Lookup(tok.AccessToken)
			if !ok || info.Kind != KindStateless || info.ChannelID != ch.ID {
				t.Fatalf("Lookup = %+v, %t", info, ok)
			}
			left := info.Expiry.Sub(srv.Now())
			if left > 900*time.Second || left < 898*time.Second {
				t.Errorf("stateless token lives %v more, want about 15 minutes", left)
			}
			srv.Advance(left - time.Second)
			if _, ok := srv.Lookup(tok.AccessToken); !ok {
				t.Error("stateless token invalid 1s before expiry")
			}
			srv.Advance(time.Second)
			if _, ok := srv.Lookup(tok.AccessToken); ok {
				t.Error("stateless token valid after 15 minutes")
			}
		})
	}
	if n := srv.IssueCount(KindStateless); n != 2 {
		t.Errorf("IssueCount = %d", n)
	}
}

func TestStatelessBadCredentials(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	other := srv.NewChannel(t)
	for _, tc := range []struct{ name, id, secret string }{
		{"unknown id", "9999999999", ch.Secret},
		{"wrong secret", ch.ID, other.Secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clientFor(t, srv, ch, func(cfg *oauth.Config) { cfg.ChannelID, cfg.ChannelSecret, cfg.Key = tc.id, tc.secret, nil })
			_, err := c.IssueStatelessToken(context.Background())
			ae := wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidCredentials)
			if ae.Code != "invalid_request" || ae.Description != "Invalid 'client_credentials'." {
				t.Errorf("got %v", err)
			}
		})
	}
}

func TestStatelessNotRevocable(t *testing.T) {
	srv, _, c := newChannel(t)
	ctx := context.Background()
	tok, err := c.IssueStatelessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeToken(ctx, tok.AccessToken); err != nil {
		t.Errorf("v2.1 revoke of a stateless token: %v", err)
	}
	if err := c.RevokeShortLivedToken(ctx, tok.AccessToken); err != nil {
		t.Errorf("v2 revoke of a stateless token: %v", err)
	}
	if _, ok := srv.Lookup(tok.AccessToken); !ok {
		t.Error("stateless token revoked")
	}
	// v2.1 verify knows v2.1 tokens only.
	_, err = c.VerifyToken(ctx, tok.AccessToken)
	wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidToken)
	// No limit on the number.
	for range 40 {
		if _, err := c.IssueStatelessToken(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLongLivedToken(t *testing.T) {
	srv, ch, c := newChannel(t)
	ctx := context.Background()
	tok := srv.LongLivedToken(ch.ID)
	if tok == "" || tok != srv.LongLivedToken(ch.ID) {
		t.Fatal("LongLivedToken not stable")
	}
	info, err := c.VerifyShortLivedToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3138007490 * time.Second; info.ExpiresIn > want || info.ExpiresIn < want-5*time.Second || info.ClientID != ch.ID {
		t.Errorf("info = %+v, want expires_in about 3138007490s", info)
	}
	srv.Advance(10 * 365 * 24 * time.Hour)
	if _, err := c.VerifyShortLivedToken(ctx, tok); err != nil {
		t.Fatalf("after 10 years: %v", err)
	}
	if err := c.RevokeShortLivedToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifyShortLivedToken(ctx, tok); !errors.Is(err, oauth.ErrInvalidToken) {
		t.Fatalf("revoked: %v", err)
	}
	reissued := srv.LongLivedToken(ch.ID)
	if reissued == tok {
		t.Fatal("a revoked long-lived token was not reissued")
	}
	if _, err := c.VerifyShortLivedToken(ctx, reissued); err != nil {
		t.Fatalf("reissued: %v", err)
	}
	if srv.LongLivedToken("1111111111") != "" {
		t.Error("unknown channel has a long-lived token")
	}
}

func TestV2VerifyAndRevokeErrors(t *testing.T) {
	_, _, c := newChannel(t)
	ctx := context.Background()
	v21, err := c.IssueToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, token, desc string }{
		{"malformed", "not a token!", "access_token in invalid format"},
		{"too long", strings.Repeat("A", 3000), "access_token in invalid format"},
		{"unknown", "W1TeHCgfH2Liwa+unknown/token=", "access_token invalid"},
		{"v2.1 token", v21.AccessToken, "access_token invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.VerifyShortLivedToken(ctx, tc.token)
			ae := wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidToken)
			if ae.Code != "invalid_request" || ae.Description != tc.desc {
				t.Errorf("verify: %v, want %q", err, tc.desc)
			}
		})
	}
	if err := c.RevokeShortLivedToken(ctx, "W1TeHCgfH2Liwa+unknown/token="); err != nil {
		t.Errorf("revoke unknown: %v", err)
	}
	err = c.RevokeShortLivedToken(ctx, "not a token!")
	ae := wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidToken)
	if ae.Code != "invalid_request" || ae.Description != "" || ae.Message != "" {
		t.Errorf("revoke malformed: %v, want bare invalid_request", err)
	}
	// v2 revoke leaves v2.1 tokens alone.
	if err := c.RevokeShortLivedToken(ctx, v21.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifyToken(ctx, v21.AccessToken); err != nil {
		t.Errorf("v2.1 token after v2 revoke: %v", err)
	}
}

func TestErrorsCarryRequestID(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	_, err := srv.Client(t, ch.ID).VerifyShortLivedToken(context.Background(), "unknown")
	ae := wantAPIError(t, err, http.StatusBadRequest, oauth.ErrInvalidToken)
	if !requestIDs.MatchString(ae.RequestID) {
		t.Errorf("RequestID = %q, want 32 hex digits", ae.RequestID)
	}
}

func TestClientRequestsAreLogged(t *testing.T) {
	srv, ch, c := newChannel(t)
	ctx := context.Background()
	tok, err := c.IssueShortLivedToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifyToken(ctx, "a.b.c"); err == nil {
		t.Fatal("verify of a.b.c succeeded")
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("logged %d requests, want 2", len(reqs))
	}
	issue, verify := reqs[0], reqs[1]
	if issue.Method != "POST" || issue.Path != "/v2/oauth/accessToken" ||
		issue.ContentType != "application/x-www-form-urlencoded" || issue.Status != 200 || issue.Fault {
		t.Errorf("issue = %v", issue)
	}
	if issue.Form.Get("client_id") != ch.ID || issue.Form.Get("client_secret") != ch.Secret ||
		issue.Form.Get("grant_type") != "client_credentials" || len(issue.Form) != 3 || len(issue.Query) != 0 {
		t.Errorf("issue form fields = %v", sortedKeys(issue.Form))
	}
	if !strings.HasPrefix(issue.Header.Get("User-Agent"), "linetoken/") {
		t.Errorf("User-Agent = %q", issue.Header.Get("User-Agent"))
	}
	if verify.Method != "GET" || verify.Path != "/oauth2/v2.1/verify" || verify.Query.Get("access_token") != "a.b.c" ||
		verify.Form != nil || verify.Status != 400 {
		t.Errorf("verify = %v", verify)
	}
	// Printing a request never shows a secret.
	for _, s := range []string{issue.String(), fmt.Sprintf("%#v", issue), fmt.Sprintf("%+v", verify)} {
		if strings.Contains(s, ch.Secret) || strings.Contains(s, "a.b.c") || !strings.Contains(s, "REDACTED") {
			t.Errorf("printed request leaks or hides nothing: %s", s)
		}
	}
	_ = tok
	srv.ResetRequests()
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("after reset: %d", n)
	}
}

// TestClientWireFormat mirrors oauth/wire_test.go TestWireFormat against
// the fake: for every operation (stateless in both forms) it reads from
// the fake's request log what the real client sent, and checks the method,
// path and Content-Type, the exact set of form or query fields (each sent
// once) and their values, no body on a GET and no query on a POST, no
// Authorization header, linetoken's User-Agent, and for the JWT forms an
// assertion with exactly LINE's header and claims.
func TestClientWireFormat(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	ctx := context.Background()
	c := srv.Client(t, ch.ID)
	bySecret := clientFor(t, srv, ch, func(cfg *oauth.Config) { cfg.Key = nil })
	v21, err := c.IssueToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	short, err := c.IssueShortLivedToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const (
		jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
		formType  = "application/x-www-form-urlencoded"
	)
	jwtForm := []string{"grant_type", "client_assertion_type", "client_assertion"}
	jwtValues := map[string]string{"grant_type": "client_credentials", "client_assertion_type": jwtBearer}
	secretForm := []string{"grant_type", "client_id", "client_secret"}
	secretValues := map[string]string{"grant_type": "client_credentials", "client_id": ch.ID, "client_secret": ch.Secret}
	ops := []struct {
		name         string
		call         func() error
		method, path string
		fields       []string // exact form fields of a POST, query fields of a GET
		values       map[string]string
		assertion    bool  // client_assertion holds a JWT to check
		tokenExp     int64 // its token_exp claim; 0: none
	}{
		{
			name: "IssueToken", call: func() error { _, err := c.IssueToken(ctx, 0); return err },
			method: http.MethodPost, path: "/oauth2/v2.1/token",
			fields: jwtForm, values: jwtValues, assertion: true, tokenExp: 2592000,
		},
		{
			name: "VerifyToken", call: func() error { _, err := c.VerifyToken(ctx, v21.AccessToken); return err },
			method: http.MethodGet, path: "/oauth2/v2.1/verify",
			fields: []string{"access_token"}, values: map[string]string{"access_token": v21.AccessToken},
		},
		{
			name: "RevokeToken", call: func() error { return c.RevokeToken(ctx, v21.AccessToken) },
			method: http.MethodPost, path: "/oauth2/v2.1/revoke",
			fields: []string{"client_id", "client_secret", "access_token"},
			values: map[string]string{"client_id": ch.ID, "client_secret": ch.Secret, "access_token": v21.AccessToken},
		},
		{
			name: "ValidKeyIDs", call: func() error { _, err := c.ValidKeyIDs(ctx); return err },
			method: http.MethodGet, path: "/oauth2/v2.1/tokens/kid",
			fields: []string{"client_assertion_type", "client_assertion"},
			values: map[string]string{"client_assertion_type": jwtBearer}, assertion: true,
		},
		{
			name: "IssueShortLivedToken", call: func() error { _, err := c.IssueShortLivedToken(ctx); return err },
			method: http.MethodPost, path: "/v2/oauth/accessToken",
			fields: secretForm, values: secretValues,
		},
		{
			name: "VerifyShortLivedToken", call: func() error { _, err := c.VerifyShortLivedToken(ctx, short.AccessToken); return err },
			method: http.MethodPost, path: "/v2/oauth/verify",
			fields: []string{"access_token"}, values: map[string]string{"access_token": short.AccessToken},
		},
		{
			name: "RevokeShortLivedToken", call: func() error { return c.RevokeShortLivedToken(ctx, short.AccessToken) },
			method: http.MethodPost, path: "/v2/oauth/revoke",
			fields: []string{"access_token"}, values: map[string]string{"access_token": short.AccessToken},
		},
		{
			name: "IssueStatelessToken/jwt", call: func() error { _, err := c.IssueStatelessToken(ctx); return err },
			method: http.MethodPost, path: "/oauth2/v3/token",
			fields: jwtForm, values: jwtValues, assertion: true,
		},
		{
			name: "IssueStatelessToken/secret", call: func() error { _, err := bySecret.IssueStatelessToken(ctx); return err },
			method: http.MethodPost, path: "/oauth2/v3/token",
			fields: secretForm, values: secretValues,
		},
	}
	for _, tc := range ops {
		t.Run(tc.name, func(t *testing.T) {
			srv.ResetRequests()
			if err := tc.call(); err != nil {
				t.Fatalf("call: %v", err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("sent %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tc.method || r.Path != tc.path {
				t.Errorf("request = %s %s, want %s %s", r.Method, r.Path, tc.method, tc.path)
			}
			if r.Status != http.StatusOK || r.Fault {
				t.Errorf("answered %d (fault %t), want 200", r.Status, r.Fault)
			}
			if _, sent := r.Header["Authorization"]; sent {
				t.Errorf("Authorization header sent: token endpoints take none")
			}
			if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, "linetoken/") {
				t.Errorf("User-Agent = %q, want linetoken's", ua)
			}
			fields := r.Form
			if tc.method == http.MethodGet {
				if r.Form != nil || r.ContentType != "" {
					t.Errorf("GET carries a body (form %v) or content type %q", sortedKeys(r.Form), r.ContentType)
				}
				fields = r.Query
			} else {
				if r.ContentType != formType {
					t.Errorf("Content-Type = %q, want %s", r.ContentType, formType)
				}
				if len(r.Query) != 0 {
					t.Errorf("POST carries query fields %v", sortedKeys(r.Query))
				}
			}
			want := slices.Sorted(slices.Values(tc.fields))
			if got := sortedKeys(fields); !slices.Equal(got, want) {
				t.Errorf("fields = %v, want exactly %v", got, want)
			}
			for k, vs := range fields {
				if len(vs) != 1 {
					t.Errorf("field %s sent %d times", k, len(vs))
				}
			}
			for k, v := range tc.values {
				if got := fields.Get(k); got != v {
					t.Errorf("field %s = %q, want %q", k, got, v)
				}
			}
			if tc.assertion {
				checkClientAssertion(t, fields.Get("client_assertion"), ch, tc.tokenExp, r.Time)
			}
		})
	}
}

// checkClientAssertion checks a client assertion as LINE defines it: an
// RS256 signature by the channel's key; header exactly alg RS256, typ JWT
// and the key's kid; claims exactly iss = sub = the channel, aud
// "https://api.line.me/" and exp a JSON integer in (now, now+30min], plus
// token_exp = tokenExp when tokenExp > 0.
func checkClientAssertion(t *testing.T, raw string, ch Channel, tokenExp int64, now time.Time) {
	t.Helper()
	if _, err := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation()).
		Parse(raw, func(*jwt.Token) (any, error) { return &ch.Key.PrivateKey.PublicKey, nil }); err != nil {
		t.Fatalf("assertion does not verify: %v", err)
	}
	parts := strings.Split(raw, ".")
	decode := func(seg string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil {
			t.Fatalf("segment is not base64url: %v", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("segment is not a JSON object: %v", err)
		}
		return m
	}
	hdr, claims := decode(parts[0]), decode(parts[1])
	if len(hdr) != 3 || hdr["alg"] != "RS256" || hdr["typ"] != "JWT" || hdr["kid"] != ch.KeyID {
		t.Errorf("header = %v, want exactly alg RS256, typ JWT, kid %s", hdr, ch.KeyID)
	}
	want := []string{"aud", "exp", "iss", "sub"}
	if tokenExp > 0 {
		want = append(want, "token_exp")
	}
	if got := sortedKeys(claims); !slices.Equal(got, want) {
		t.Errorf("claims = %v, want exactly %v", got, want)
	}
	if claims["iss"] != ch.ID || claims["sub"] != ch.ID || claims["aud"] != "https://api.line.me/" {
		t.Errorf("claims = %v, want iss = sub = %s, aud https://api.line.me/", claims, ch.ID)
	}
	integer := func(name string) int64 {
		n, isNum := claims[name].(json.Number)
		v, err := n.Int64()
		if !isNum || err != nil {
			t.Fatalf("%s = %#v, want a JSON integer", name, claims[name])
		}
		return v
	}
	if exp := integer("exp"); exp <= now.Unix() || exp > now.Add(30*time.Minute).Unix() {
		t.Errorf("exp = %d, want in (%d, %d]", exp, now.Unix(), now.Add(30*time.Minute).Unix())
	}
	if tokenExp > 0 {
		if got := integer("token_exp"); got != tokenExp {
			t.Errorf("token_exp = %d, want %d", got, tokenExp)
		}
	}
}

func TestConcurrentMixedCallers(t *testing.T) {
	srv := newServer(t)
	chans := []Channel{srv.NewChannel(t), srv.NewChannel(t)}
	ctx := context.Background()
	const callers = 300
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		ch := chans[i%len(chans)]
		wg.Go(func() {
			c, err := oauth.NewClient(srv.Config(ch.ID))
			if err != nil {
				errs <- err
				return
			}
			switch i % 3 {
			case 0:
				tok, err := c.IssueShortLivedToken(ctx)
				if err == nil {
					_, err = c.VerifyShortLivedToken(ctx, srv.LongLivedToken(ch.ID))
					_ = tok
				}
				errs <- err
			case 1:
				cfg := srv.Config(ch.ID)
				cfg.Key = nil
				c, _ := oauth.NewClient(cfg)
				_, err := c.IssueStatelessToken(ctx)
				errs <- err
			case 2:
				_, err := c.ValidKeyIDs(ctx)
				if err == nil {
					srv.Stats()
					srv.Requests()
				}
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	st := srv.Stats()
	if st.Requests != callers+callers/3 || st.Issued[KindShortLived] != callers/3 || st.Issued[KindStateless] != callers/3 {
		t.Errorf("stats = %+v", st)
	}
	for _, ch := range chans {
		if n := srv.ActiveShortLivedTokens(ch.ID); n != 30 {
			t.Errorf("channel %s holds %d short-lived tokens, want 30", ch.ID, n)
		}
	}
}
