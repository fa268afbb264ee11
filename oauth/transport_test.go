package oauth_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

// messagingAPI stands in for LINE's Messaging API: it accepts only the
// token it is told is valid and records what it saw.
type messagingAPI struct {
	*httptest.Server
	valid    atomic.Pointer[string]
	calls    atomic.Int32
	lastAuth atomic.Pointer[string]
	lastBody atomic.Pointer[string]
}

func newMessagingAPI(t *testing.T) *messagingAPI {
	m := &messagingAPI{}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.calls.Add(1)
		auth := r.Header.Get("Authorization")
		body, _ := io.ReadAll(r.Body)
		b := string(body)
		m.lastAuth.Store(&auth)
		m.lastBody.Store(&b)
		if v := m.valid.Load(); v == nil || auth != "Bearer "+*v {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"message":"Authentication failed"}`)
			return
		}
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(m.Close)
	return m
}

func TestTransport(t *testing.T) {
	is := newIssuer(t)
	clk := newFakeClock()
	ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindShortLived})
	api := newMessagingAPI(t)
	ctx := context.Background()
	hc := &http.Client{Transport: &oauth.Transport{Source: ts}}

	tok, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	api.valid.Store(&tok.AccessToken)

	// Sets the bearer token, overwriting one already there.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, api.URL+"/v2/bot/message/push", strings.NewReader(`{"to":"U1"}`))
	req.Header.Set("Authorization", "Bearer placeholder-from-the-sdk")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || *api.lastAuth.Load() != "Bearer "+tok.AccessToken {
		t.Fatalf("status %d with %q", resp.StatusCode, *api.lastAuth.Load())
	}
	if req.Header.Get("Authorization") != "Bearer placeholder-from-the-sdk" {
		t.Error("the caller's request was modified")
	}

	// A 401 (token revoked elsewhere): invalidate, get a new one, replay the body once.
	next := "issued-token-2"
	api.valid.Store(&next)
	before := api.calls.Load()
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, api.URL+"/v2/bot/message/push", strings.NewReader(`{"to":"U2"}`))
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || api.calls.Load()-before != 2 || *api.lastBody.Load() != `{"to":"U2"}` || is.issues.Load() != 2 {
		t.Errorf("after 401: status %d, %d calls, body %q, %d issues; want 200 after one replay with the same body and one new token",
			resp.StatusCode, api.calls.Load()-before, *api.lastBody.Load(), is.issues.Load())
	}

	// A body that cannot be replayed: the 401 is returned as it is.
	none := "nobody-valid"
	api.valid.Store(&none)
	before = api.calls.Load()
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, api.URL+"/x", io.NopCloser(strings.NewReader("stream")))
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || api.calls.Load()-before != 1 {
		t.Errorf("unreplayable body: status %d after %d calls, want the 401 after 1", resp.StatusCode, api.calls.Load()-before)
	}

	// Still 401 after the retry: returned, not looped.
	before = api.calls.Load()
	resp, err = hc.Get(api.URL + "/y")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || api.calls.Load()-before != 2 {
		t.Errorf("persistent 401: status %d after %d calls, want 401 after exactly 2", resp.StatusCode, api.calls.Load()-before)
	}
}

// TestTransportInvalidateHook: with Transport.Invalidate set, a 401 calls
// it (not Source.Invalidate) with the refused token, and the request is
// sent again only if the hook made Source give another token.
func TestTransportInvalidateHook(t *testing.T) {
	is := newIssuer(t)
	ts := newSource(t, clientFor(t, is.URL, newFakeClock()), oauth.TokenSourceOptions{Kind: oauth.KindShortLived})
	api := newMessagingAPI(t)
	ctx := context.Background()
	tok, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var reported []string
	drop := false
	hc := &http.Client{Transport: &oauth.Transport{Source: ts, Invalidate: func(_ context.Context, accessToken string) {
		reported = append(reported, accessToken)
		if drop {
			ts.Invalidate(accessToken)
		}
	}}}
	none := "nobody-valid"
	api.valid.Store(&none)
	resp, err := hc.Get(api.URL + "/v2/bot/info")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || api.calls.Load() != 1 || len(reported) != 1 || reported[0] != tok.AccessToken || is.issues.Load() != 1 {
		t.Fatalf("hook keeps the token: status %d, %d calls, %d reports (the refused token: %v), %d issues; want the 401 after 1 call, 1 report of the token, no new issue",
			resp.StatusCode, api.calls.Load(), len(reported), len(reported) == 1 && reported[0] == tok.AccessToken, is.issues.Load())
	}
	drop = true
	next := "issued-token-2"
	api.valid.Store(&next)
	resp, err = hc.Get(api.URL + "/v2/bot/info")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || api.calls.Load() != 3 || len(reported) != 2 || is.issues.Load() != 2 {
		t.Errorf("hook drops the token: status %d, %d calls, %d reports, %d issues; want 200 after a retry with a new token",
			resp.StatusCode, api.calls.Load(), len(reported), is.issues.Load())
	}
}

func TestTransportWithoutToken(t *testing.T) {
	is := newIssuer(t)
	is.fail.Store(400)
	ts := newSource(t, clientFor(t, is.URL, newFakeClock()), oauth.TokenSourceOptions{Kind: oauth.KindStateless})
	api := newMessagingAPI(t)
	_, err := (&http.Client{Transport: &oauth.Transport{Source: ts}}).Get(api.URL)
	var ae *oauth.APIError
	if !errors.As(err, &ae) || api.calls.Load() != 0 {
		t.Errorf("err = %v with %d calls; want the token error and no request sent", err, api.calls.Load())
	}
}

func TestMiddleware(t *testing.T) {
	is := newIssuer(t)
	ts := newSource(t, clientFor(t, is.URL, newFakeClock()), oauth.TokenSourceOptions{Kind: oauth.KindShortLived})
	h := oauth.Middleware(ts)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := oauth.TokenFromContext(r.Context())
		if !ok {
			http.Error(w, "no token", 500)
			return
		}
		_, _ = io.WriteString(w, tok.AccessToken)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/webhook", nil))
	if rec.Code != 200 || rec.Body.String() != "issued-token-1" {
		t.Errorf("got %d %q", rec.Code, rec.Body.String())
	}
	if _, ok := oauth.TokenFromContext(context.Background()); ok {
		t.Error("TokenFromContext found a token in an empty context")
	}

	is2 := newIssuer(t)
	is2.fail.Store(500)
	failing := newSource(t, clientFor(t, is2.URL, newFakeClock()), oauth.TokenSourceOptions{Kind: oauth.KindShortLived})
	called := false
	h = oauth.Middleware(failing)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/webhook", nil))
	if rec.Code != 503 || called || !strings.Contains(rec.Body.String(), "no LINE channel access token") || strings.Contains(rec.Body.String(), testSecret) {
		t.Errorf("failing source: %d %q (handler called %t); want a clear 503", rec.Code, rec.Body.String(), called)
	}
}

func TestOAuth2TokenSource(t *testing.T) {
	is := newIssuer(t)
	clk := newFakeClock()
	ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindStateless})
	o, err := oauth.OAuth2TokenSource(ts).Token()
	if err != nil {
		t.Fatal(err)
	}
	if o.AccessToken != "issued-token-1" || o.TokenType != "Bearer" || !o.Expiry.Equal(clk.Now().Add(900*time.Second)) || !o.Valid() == o.Expiry.After(time.Now()) {
		t.Errorf("oauth2 token = %+v", o)
	}
}

func TestConfigFromEnv(t *testing.T) {
	priv, _, err := oauth.GenerateAssertionKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.jwk")
	if err := os.WriteFile(keyFile, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	set := func(kv map[string]string) {
		for _, k := range []string{oauth.EnvChannelID, oauth.EnvChannelSecret, oauth.EnvPrivateKey, oauth.EnvPrivateKeyFile, oauth.EnvKeyID, oauth.EnvBaseURL} {
			t.Setenv(k, kv[k])
		}
	}
	t.Run("nothing set names every missing variable", func(t *testing.T) {
		set(nil)
		_, err := oauth.ConfigFromEnv()
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{"LINE_CHANNEL_ID", "LINE_CHANNEL_SECRET", "LINE_PRIVATE_KEY"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
	})
	t.Run("secret only", func(t *testing.T) {
		set(map[string]string{oauth.EnvChannelID: "123", oauth.EnvChannelSecret: testSecret, oauth.EnvBaseURL: "http://127.0.0.1:9"})
		cfg, err := oauth.ConfigFromEnv()
		if err != nil || cfg.ChannelID != "123" || cfg.ChannelSecret != testSecret || cfg.Key != nil || cfg.BaseURL != "http://127.0.0.1:9" {
			t.Errorf("cfg = %v, %v", cfg, err)
		}
	})
	t.Run("key file without key ID", func(t *testing.T) {
		set(map[string]string{oauth.EnvChannelID: "123", oauth.EnvPrivateKeyFile: keyFile})
		_, err := oauth.ConfigFromEnv()
		if err == nil || !strings.Contains(err.Error(), "LINE_KEY_ID") {
			t.Errorf("error = %v, want one naming LINE_KEY_ID", err)
		}
	})
	t.Run("key text with key ID", func(t *testing.T) {
		set(map[string]string{oauth.EnvChannelID: "123", oauth.EnvPrivateKey: string(priv), oauth.EnvKeyID: "kid-9"})
		cfg, err := oauth.ConfigFromEnv()
		if err != nil || cfg.Key == nil || cfg.Key.KeyID != "kid-9" {
			t.Errorf("cfg = %v, %v", cfg, err)
		}
	})
	t.Run("both key settings", func(t *testing.T) {
		set(map[string]string{oauth.EnvChannelID: "123", oauth.EnvPrivateKey: string(priv), oauth.EnvPrivateKeyFile: keyFile, oauth.EnvKeyID: "k"})
		if _, err := oauth.ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "only one") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("unreadable key file, bad channel", func(t *testing.T) {
		set(map[string]string{oauth.EnvChannelID: "abc", oauth.EnvChannelSecret: "s", oauth.EnvPrivateKeyFile: filepath.Join(keyFile, "nope"), oauth.EnvKeyID: "k"})
		_, err := oauth.ConfigFromEnv()
		if err == nil || !strings.Contains(err.Error(), "LINE_PRIVATE_KEY_FILE") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("lookup function", func(t *testing.T) {
		env := map[string]string{oauth.EnvChannelID: "77", oauth.EnvChannelSecret: testSecret}
		cfg, err := oauth.ConfigFromLookup(func(k string) string { return env[k] })
		if err != nil || cfg.ChannelID != "77" || cfg.ChannelSecret != testSecret {
			t.Errorf("cfg = %v, %v", cfg, err)
		}
	})
	t.Run("no secret in errors", func(t *testing.T) {
		set(map[string]string{oauth.EnvChannelSecret: testSecret, oauth.EnvPrivateKey: "{\"kty\":\"RSA\",\"d\":\"" + testSecret + "\"}"})
		_, err := oauth.ConfigFromEnv()
		if err == nil || strings.Contains(err.Error(), testSecret) {
			t.Errorf("error = %v", err)
		}
	})
}
