package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		r := cli(t, nil, "", args...)
		mustCode(t, r, exitOK)
		for _, want := range []string{"Commands:", "keygen", "issue", "verify", "revoke", "kids", "demo", "fake-server", "LINE_CHANNEL_SECRET", "Exit codes:"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%v: usage lacks %q:\n%s", args, want, r.stdout)
			}
		}
	}
	for _, args := range [][]string{{"help", "issue"}, {"issue", "-h"}, {"verify", "--help"}} {
		r := cli(t, nil, "", args...)
		mustCode(t, r, exitOK)
		if !strings.Contains(r.stdout, "Usage: linetoken "+strings.TrimPrefix(args[1], "-")) && !strings.Contains(r.stdout, "Usage: linetoken "+args[0]) {
			t.Errorf("%v: no command usage:\n%s", args, r)
		}
		if !strings.Contains(r.stdout, "-json") {
			t.Errorf("%v: flags not listed:\n%s", args, r)
		}
	}
	r := cli(t, nil, "")
	mustCode(t, r, exitUsage)
	if !strings.Contains(r.stderr, "Commands:") {
		t.Errorf("no usage on stderr:\n%s", r)
	}
}

// TestRun drives run itself, with the process environment.
func TestRun(t *testing.T) {
	t.Setenv(oauth.EnvChannelID, "")
	t.Setenv(oauth.EnvChannelSecret, "")
	t.Setenv(oauth.EnvPrivateKey, "")
	t.Setenv(oauth.EnvPrivateKeyFile, "")
	var out, errb strings.Builder
	code := run(context.Background(), []string{"issue", "--type", "short-lived"}, strings.NewReader(""), &out, &errb)
	if code != exitUsage || !strings.Contains(errb.String(), "LINE_CHANNEL_ID") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

func TestIssueHuman(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		typ  string
		kind oauthtest.Kind
		want []string
	}{
		{"v2.1", oauthtest.KindV21, []string{"key ID:", "expires in:   24h0m0s", "30 v2.1 slots"}},
		{"short-lived", oauthtest.KindShortLived, []string{"expires in:   30 days", "31st"}},
		{"stateless", oauthtest.KindStateless, []string{"expires in:   14m", "cannot be revoked"}},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			r := cli(t, f.env, "", "issue", "--type", tc.typ)
			mustCode(t, r, exitOK)
			var tok string
			for _, line := range strings.Split(r.stdout, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "access token: "); ok {
					tok = v
				}
			}
			info, ok := f.srv.Lookup(tok)
			if !ok || info.Kind != tc.kind || info.ChannelID != f.ch.ID {
				t.Fatalf("printed token is not a valid %v token of the channel (%+v, %t):\n%s", tc.kind, info, ok, r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, r)
				}
			}
			if r.stderr != "" {
				t.Errorf("stderr: %s", r.stderr)
			}
		})
	}
}

func TestIssueJSON(t *testing.T) {
	f := newFixture(t)
	v := f.issueJSON(t, "v2.1", "--lifetime", "1h")
	info, ok := f.srv.Lookup(v.AccessToken)
	if !ok || info.Kind != oauthtest.KindV21 || info.KeyID != v.KeyID || v.KeyID == "" {
		t.Fatalf("%+v: lookup %+v %t", v, info, ok)
	}
	if v.Type != "v2.1" || v.TokenType != "Bearer" || v.ExpiresIn != 3600 {
		t.Errorf("%+v", v)
	}
	exp, err := time.Parse(time.RFC3339, v.Expiry)
	if err != nil || exp.Sub(info.Expiry).Abs() > 2*time.Second {
		t.Errorf("expiry %q (%v), server says %v", v.Expiry, err, info.Expiry)
	}
	if v := f.issueJSON(t, "v2.1", "--lifetime", "2d"); v.ExpiresIn != 2*86400 {
		t.Errorf("--lifetime 2d: expires_in %d", v.ExpiresIn)
	}
	if v := f.issueJSON(t, "v2.1"); v.ExpiresIn != 86400 {
		t.Errorf("default lifetime: expires_in %d", v.ExpiresIn)
	}
	s := f.issueJSON(t, "short-lived")
	if info, ok := f.srv.Lookup(s.AccessToken); !ok || info.Kind != oauthtest.KindShortLived || s.KeyID != "" || s.ExpiresIn != 2592000 {
		t.Errorf("short-lived %+v: %+v %t", s, info, ok)
	}
	// Stateless: by JWT when a key is set, by secret without one.
	for _, env := range []map[string]string{f.env, without(f.env, oauth.EnvPrivateKeyFile, oauth.EnvKeyID)} {
		f.srv.ResetRequests()
		r := cli(t, env, "", "issue", "--type", "stateless", "--json")
		mustCode(t, r, exitOK)
		st := decodeJSON[issueResult](t, r)
		if info, ok := f.srv.Lookup(st.AccessToken); !ok || info.Kind != oauthtest.KindStateless || st.ExpiresIn < 899 {
			t.Errorf("stateless %+v: %+v %t", st, info, ok)
		}
		req, _ := f.srv.LastRequest()
		byKey := req.Form.Has("client_assertion")
		if want := env[oauth.EnvPrivateKeyFile] != ""; byKey != want {
			t.Errorf("stateless by assertion = %t, want %t", byKey, want)
		}
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	v21 := f.issueJSON(t, "v2.1").AccessToken
	short := f.issueJSON(t, "short-lived").AccessToken
	long := f.srv.LongLivedToken(f.ch.ID)
	for _, tc := range []struct {
		name, token, path, typ string
		minExpires             int64
	}{
		{"v2.1", v21, "/oauth2/v2.1/verify", "v2.1", 86000},
		{"short-lived", short, "/v2/oauth/verify", "short-lived", 2591000},
		{"long-lived", long, "/v2/oauth/verify", "short-lived", 3138000000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.srv.ResetRequests()
			r := cli(t, f.env, "", "verify", tc.token)
			mustCode(t, r, exitOK)
			if !strings.Contains(r.stdout, "Valid ("+tc.typ) || !strings.Contains(r.stdout, f.ch.ID) {
				t.Errorf("human output:\n%s", r)
			}
			r = cli(t, f.env, "", "verify", tc.token, "--json") // flags after the argument too
			mustCode(t, r, exitOK)
			v := decodeJSON[verifyResult](t, r)
			if v.ClientID != f.ch.ID || v.Type != tc.typ || v.ExpiresIn < tc.minExpires || v.Scope == "" {
				t.Errorf("%+v", v)
			}
			if _, err := time.Parse(time.RFC3339, v.Expiry); err != nil {
				t.Error(err)
			}
			if got := paths(f.srv); !slices.Equal(got, []string{tc.path, tc.path}) {
				t.Errorf("requests went to %v, want %s", got, tc.path)
			}
		})
	}
	t.Run("stdin", func(t *testing.T) {
		r := cli(t, f.env, v21+"\n", "verify", "-")
		mustCode(t, r, exitOK)
		mustCode(t, cli(t, f.env, "", "verify", "-"), exitUsage)
	})
	t.Run("type overrides the shape", func(t *testing.T) {
		f.srv.ResetRequests()
		r := cli(t, f.env, "", "verify", "--type", "short-lived", v21)
		mustCode(t, r, exitAPI) // LINE's v2 verify does not know v2.1 tokens
		if got := paths(f.srv); len(got) != 1 || got[0] != "/v2/oauth/verify" {
			t.Errorf("requests: %v", got)
		}
		f.srv.ResetRequests()
		mustCode(t, cli(t, f.env, "", "verify", "--type", "v2.1", short), exitAPI)
		if got := paths(f.srv); len(got) != 1 || got[0] != "/oauth2/v2.1/verify" {
			t.Errorf("requests: %v", got)
		}
	})
	t.Run("needs no credentials", func(t *testing.T) {
		env := map[string]string{oauth.EnvBaseURL: f.srv.URL(), oauth.EnvPrivateKey: "not a key"}
		mustCode(t, cli(t, env, "", "verify", v21), exitOK)
	})
}

func TestIsJWS(t *testing.T) {
	for tok, want := range map[string]bool{
		"eyJh.eyJz.c2ln":       true,
		"a-_b.c.d":             true,
		"a.b":                  false,
		"a.b.c.d":              false,
		"a..c":                 false,
		"ab+/=.c.d":            false,
		strings.Repeat("A", 9): false,
	} {
		if got := isJWS(tok); got != want {
			t.Errorf("isJWS(%q) = %t", tok, got)
		}
	}
}

func TestRevoke(t *testing.T) {
	f := newFixture(t)
	v21 := f.issueJSON(t, "v2.1").AccessToken
	short := f.issueJSON(t, "short-lived").AccessToken

	f.srv.ResetRequests()
	r := cli(t, f.env, "", "revoke", v21)
	mustCode(t, r, exitOK)
	if !strings.Contains(r.stdout, "Revoked (v2.1") {
		t.Errorf("human output:\n%s", r)
	}
	r = cli(t, f.env, "", "revoke", "--json", short)
	mustCode(t, r, exitOK)
	v := decodeJSON[struct {
		Type    string `json:"type"`
		Revoked bool   `json:"revoked"`
	}](t, r)
	if !v.Revoked || v.Type != "short-lived" {
		t.Errorf("%+v", v)
	}
	if got := paths(f.srv); !slices.Equal(got, []string{"/oauth2/v2.1/revoke", "/v2/oauth/revoke"}) {
		t.Errorf("requests: %v", got)
	}
	if f.srv.ActiveTokens(f.ch.ID) != 0 || f.srv.ActiveShortLivedTokens(f.ch.ID) != 0 {
		t.Error("tokens still active")
	}

	// Verifying a revoked token is an API error: exit 1.
	for _, tok := range []string{v21, short} {
		r := cli(t, f.env, "", "verify", tok)
		mustCode(t, r, exitAPI)
		if !strings.Contains(r.stderr, "access_token invalid") || r.stdout != "" {
			t.Errorf("%s", r)
		}
	}
	// A short-lived revoke needs no credentials; a v2.1 one needs the secret.
	short2 := f.issueJSON(t, "short-lived").AccessToken
	mustCode(t, cli(t, map[string]string{oauth.EnvBaseURL: f.srv.URL()}, "", "revoke", short2), exitOK)
	v21b := f.issueJSON(t, "v2.1").AccessToken
	r = cli(t, without(f.env, oauth.EnvChannelSecret), "", "revoke", v21b)
	mustCode(t, r, exitUsage)
	if !strings.Contains(r.stderr, "LINE_CHANNEL_SECRET") || !strings.Contains(r.stderr, "--channel-secret-file") {
		t.Errorf("%s", r)
	}
	// --channel-secret-file instead of the environment.
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte(f.ch.Secret+"\n"), 0o600)
	r = cli(t, without(f.env, oauth.EnvChannelSecret), "", "revoke", "--channel-secret-file", secretFile, v21b)
	mustCode(t, r, exitOK)
	// A malformed token: LINE refuses it, exit 1.
	mustCode(t, cli(t, f.env, "", "revoke", "--type", "v2.1", "not-a-jws"), exitAPI)
}

func TestKids(t *testing.T) {
	f := newFixture(t)
	r := cli(t, f.env, "", "kids", "--json")
	mustCode(t, r, exitOK)
	if strings.TrimSpace(r.stdout) != `{
  "kids": []
}` {
		t.Errorf("no tokens: %s", r)
	}
	a, b := f.issueJSON(t, "v2.1"), f.issueJSON(t, "v2.1")
	r = cli(t, f.env, "", "kids", "--json")
	mustCode(t, r, exitOK)
	v := decodeJSON[struct {
		Kids []string `json:"kids"`
	}](t, r)
	if !slices.Equal(v.Kids, []string{a.KeyID, b.KeyID}) {
		t.Errorf("kids %v, want %s %s", v.Kids, a.KeyID, b.KeyID)
	}
	r = cli(t, f.env, "", "kids")
	mustCode(t, r, exitOK)
	if !strings.Contains(r.stdout, "2 of 30") || !strings.Contains(r.stdout, a.KeyID) || !strings.Contains(r.stdout, b.KeyID) {
		t.Errorf("%s", r)
	}
	// kids needs the key.
	r = cli(t, without(f.env, oauth.EnvPrivateKeyFile), "", "kids")
	mustCode(t, r, exitUsage)
	if !strings.Contains(r.stderr, "LINE_PRIVATE_KEY_FILE") || !strings.Contains(r.stderr, "--private-key-file") {
		t.Errorf("%s", r)
	}
}

func TestTokenLimit(t *testing.T) {
	f := newFixture(t)
	c := f.srv.Client(t, f.ch.ID)
	for i := 0; i < 30; i++ {
		if _, err := c.IssueToken(context.Background(), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"issue"}, {"issue", "--json"}} {
		r := cli(t, f.env, "", args...)
		mustCode(t, r, exitAPI)
		if r.stdout != "" || !strings.Contains(r.stderr, "The maximum number of access tokens has already been issued") ||
			!strings.Contains(r.stderr, "hint: the channel has 30 active v2.1 tokens") {
			t.Errorf("%v: %s", args, r)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"no channel ID", without(f.env, oauth.EnvChannelID), []string{"issue"}, []string{"LINE_CHANNEL_ID", "--channel-id"}},
		{"no channel ID short-lived", without(f.env, oauth.EnvChannelID), []string{"issue", "--type", "short-lived"}, []string{"LINE_CHANNEL_ID"}},
		{"no secret", without(f.env, oauth.EnvChannelSecret), []string{"issue", "--type", "short-lived"}, []string{"LINE_CHANNEL_SECRET", "--channel-secret-file"}},
		{"no credentials", without(f.env, oauth.EnvChannelSecret, oauth.EnvPrivateKeyFile), []string{"issue", "--type", "stateless"}, []string{"no credentials", "LINE_CHANNEL_SECRET", "LINE_PRIVATE_KEY_FILE"}},
		{"no key ID", without(f.env, oauth.EnvKeyID), []string{"issue"}, []string{"LINE_KEY_ID", "--key-id"}},
		{"key set twice", with(f.env, oauth.EnvPrivateKey, string(f.ch.PrivateJWK)), []string{"issue"}, []string{"only one of LINE_PRIVATE_KEY and LINE_PRIVATE_KEY_FILE"}},
		{"unreadable key file", with(f.env, oauth.EnvPrivateKeyFile, "/nonexistent/key"), []string{"kids"}, []string{"LINE_PRIVATE_KEY_FILE: cannot read"}},
		{"bad channel ID", with(f.env, oauth.EnvChannelID, "abc"), []string{"issue"}, []string{"digits", "LINE_CHANNEL_ID"}},
		{"bad base URL", with(f.env, oauth.EnvBaseURL, "http://example.com"), []string{"issue"}, []string{"loopback", "LINE_API_BASE_URL"}},
		{"bad type", f.env, []string{"issue", "--type", "v3"}, []string{"--type must be v2.1, short-lived or stateless"}},
		{"bad verify type", f.env, []string{"verify", "--type", "x", "a.b.c"}, []string{"--type must be"}},
		{"lifetime for short-lived", f.env, []string{"issue", "--type", "short-lived", "--lifetime", "1h"}, []string{"v2.1 tokens only"}},
		{"lifetime too long", f.env, []string{"issue", "--lifetime", "31d"}, []string{"720h"}},
		{"lifetime not a duration", f.env, []string{"issue", "--lifetime", "soon"}, []string{"not a duration"}},
		{"unknown flag", f.env, []string{"issue", "--bogus"}, []string{"flag provided but not defined: -bogus"}},
		{"unknown command", f.env, []string{"frobnicate"}, []string{`unknown command "frobnicate"`}},
		{"verify without token", f.env, []string{"verify"}, []string{"one TOKEN argument"}},
		{"verify two tokens", f.env, []string{"verify", "a", "b"}, []string{"one TOKEN argument (got 2)"}},
		{"secret as a flag", f.env, []string{"issue", "--channel-secret", "x"}, []string{"not accepted", "LINE_CHANNEL_SECRET", "--channel-secret-file"}},
		{"key as a flag", f.env, []string{"kids", "-private-key=x"}, []string{"not accepted", "LINE_PRIVATE_KEY"}},
		{"issue argument", f.env, []string{"issue", "extra"}, []string{"no arguments"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, tc.env, "", tc.args...)
			mustCode(t, r, exitUsage)
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q: %s", w, r)
				}
			}
			if r.stdout != "" && tc.name != "unknown command" {
				t.Errorf("stdout: %q", r.stdout)
			}
		})
	}
	if f.srv.Stats().Requests != 0 {
		t.Errorf("usage errors sent %d requests", f.srv.Stats().Requests)
	}
}

func TestNetworkFailure(t *testing.T) {
	f := newFixture(t)
	env := with(f.env, oauth.EnvBaseURL, closedPortURL(t))
	for _, args := range [][]string{
		{"issue"}, {"issue", "--type", "short-lived", "--json"}, {"kids"}, {"verify", "a.b.c"}, {"revoke", "abc="},
	} {
		r := cli(t, env, "", args...)
		mustCode(t, r, exitFailure)
		if !strings.Contains(r.stderr, "connection refused") || r.stdout != "" {
			t.Errorf("%v: %s", args, r)
		}
		// The hint names what decides where requests go.
		for _, w := range []string{"hint: LINE's API was not reached", "LINE_API_BASE_URL", "--base-url", "HTTPS_PROXY", "NO_PROXY"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%v: stderr lacks %q: %s", args, w, r)
			}
		}
	}
	// Not for a local failure, nor for an interrupted command.
	r := cli(t, nil, "", "keygen", "--out", filepath.Join(t.TempDir(), "missing", "k.jwk"))
	mustCode(t, r, exitFailure)
	if strings.Contains(r.stderr, "hint:") {
		t.Errorf("keygen's local failure has a network hint: %s", r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb strings.Builder
	code := runEnv(ctx, []string{"issue", "--type", "short-lived"}, func(k string) string { return f.env[k] }, strings.NewReader(""), &out, &errb)
	if code != exitFailure || strings.Contains(errb.String(), "hint:") {
		t.Errorf("interrupted: exit %d, stderr %q", code, errb.String())
	}
}

// TestSettingsPrecedence: a flag wins over its variable, whichever of the
// two is wrong.
func TestSettingsPrecedence(t *testing.T) {
	f := newFixture(t)
	const otherID = "1234567890" // a well-formed ID of no channel
	t.Run("channel-id", func(t *testing.T) {
		f.srv.ResetRequests()
		r := cli(t, with(f.env, oauth.EnvChannelID, otherID), "", "issue", "--type", "short-lived", "--channel-id", f.ch.ID)
		mustCode(t, r, exitOK)
		if req, _ := f.srv.LastRequest(); req.Form.Get("client_id") != f.ch.ID {
			t.Errorf("client_id %q, want the flag's %s", req.Form.Get("client_id"), f.ch.ID)
		}
		// The other way round: the wrong flag is used, and LINE refuses it.
		r = cli(t, f.env, "", "issue", "--type", "short-lived", "--channel-id", otherID)
		mustCode(t, r, exitAPI)
		if req, _ := f.srv.LastRequest(); req.Form.Get("client_id") != otherID {
			t.Errorf("client_id %q, want the flag's %s", req.Form.Get("client_id"), otherID)
		}
	})
	t.Run("base-url", func(t *testing.T) {
		closed := closedPortURL(t)
		for _, args := range [][]string{{"issue", "--type", "short-lived"}, {"verify", f.srv.LongLivedToken(f.ch.ID)}, {"kids"}} {
			r := cli(t, with(f.env, oauth.EnvBaseURL, closed), "", append(args, "--base-url", f.srv.URL())...)
			mustCode(t, r, exitOK)
			r = cli(t, f.env, "", append(args, "--base-url", closed)...)
			mustCode(t, r, exitFailure)
		}
	})
}

// TestJWKKeyFromEnvironment: LINE_PRIVATE_KEY holding the key as a JWK
// (how users commonly keep it), for every command that signs.
func TestJWKKeyFromEnvironment(t *testing.T) {
	f := newFixture(t)
	env := with(without(f.env, oauth.EnvPrivateKeyFile), oauth.EnvPrivateKey, string(f.ch.PrivateJWK))
	r := cli(t, env, "", "issue", "--type", "v2.1", "--json")
	mustCode(t, r, exitOK)
	if info, ok := f.srv.Lookup(decodeJSON[issueResult](t, r).AccessToken); !ok || info.Kind != oauthtest.KindV21 {
		t.Errorf("not a v2.1 token of the fake: %+v %t", info, ok)
	}
	mustCode(t, cli(t, env, "", "kids"), exitOK)
	f.srv.ResetRequests()
	mustCode(t, cli(t, without(env, oauth.EnvChannelSecret), "", "issue", "--type", "stateless"), exitOK)
	if req, _ := f.srv.LastRequest(); !req.Form.Has("client_assertion") {
		t.Error("stateless issue did not use the key")
	}
}

// TestStatelessToken: LINE cannot revoke a stateless token (it answers
// success) nor verify one, and its tokens do not tell v2.1 and stateless
// apart, so revoke and verify say what that means for a JWS-shaped token.
func TestStatelessToken(t *testing.T) {
	f := newFixture(t)
	st := f.issueJSON(t, "stateless").AccessToken
	if !isJWS(st) {
		t.Fatal("a stateless token is not JWS-shaped: revoke and verify could tell it apart")
	}

	r := cli(t, f.env, "", "revoke", st)
	mustCode(t, r, exitOK)
	for _, w := range []string{"If this is a stateless token, it is NOT revoked", "cannot be revoked", "15 minutes"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("revoke output lacks %q:\n%s", w, r)
		}
	}
	if _, ok := f.srv.Lookup(st); !ok {
		t.Error("the fake revoked a stateless token") // then the output above would be wrong
	}
	// An opaque token's revoke says nothing about stateless ones.
	r = cli(t, f.env, "", "revoke", f.issueJSON(t, "short-lived").AccessToken)
	mustCode(t, r, exitOK)
	if strings.Contains(r.stdout, "stateless") {
		t.Errorf("short-lived revoke mentions stateless tokens:\n%s", r)
	}
	r = cli(t, nil, "", "revoke", "-h")
	mustCode(t, r, exitOK)
	for _, w := range []string{"Stateless tokens cannot be revoked", "15", "minutes after it was issued", `"revoked" means LINE accepted the`} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("revoke help lacks %q:\n%s", w, r.stdout)
		}
	}

	// verify: no --type can help a stateless token; the hint says so.
	r = cli(t, f.env, "", "verify", st)
	mustCode(t, r, exitAPI)
	for _, w := range []string{"hint: LINE's v2.1 endpoint refused the token", "If it is a stateless token: LINE has no endpoint that verifies those (no --type helps)", "15 minutes"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("verify hint lacks %q:\n%s", w, r)
		}
	}
	if strings.Contains(r.stderr, "try --type") {
		t.Errorf("verify suggests --type for a JWS-shaped token at its own endpoint:\n%s", r)
	}
	r = cli(t, nil, "", "verify", "-h")
	if !strings.Contains(r.stdout, "LINE has no endpoint that verifies a stateless token") {
		t.Errorf("verify help:\n%s", r.stdout)
	}
	// --type is suggested where it helps: a token sent to the wrong family.
	r = cli(t, f.env, "", "verify", "--type", "short-lived", st)
	mustCode(t, r, exitAPI)
	if !strings.Contains(r.stderr, "This token is JWS-shaped (v2.1 or stateless): try --type auto") {
		t.Errorf("%s", r)
	}
	r = cli(t, f.env, "", "verify", "--type", "v2.1", "not-a-jws")
	mustCode(t, r, exitAPI)
	if !strings.Contains(r.stderr, "not JWS-shaped") || !strings.Contains(r.stderr, "try --type auto") {
		t.Errorf("%s", r)
	}
	r = cli(t, f.env, "", "verify", "opaque-unknown")
	mustCode(t, r, exitAPI)
	if strings.Contains(r.stderr, "--type") || strings.Contains(r.stderr, "stateless") {
		t.Errorf("an opaque token's hint: %s", r)
	}
}

func TestMalformedResponse(t *testing.T) {
	f := newFixture(t)
	f.srv.InjectFault(1, oauthtest.Fault{Status: 200, Body: `{"nonsense":true}`})
	r := cli(t, f.env, "", "issue", "--type", "short-lived")
	mustCode(t, r, exitAPI)
	if !strings.Contains(r.stderr, "malformed") {
		t.Errorf("%s", r)
	}
}

func TestKeygen(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "k.jwk")
	r := cli(t, nil, "", "keygen", "--out", out)
	mustCode(t, r, exitOK)
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	data, _ := os.ReadFile(out)
	if _, err := oauth.ParseAssertionKey(data, "kid"); err != nil {
		t.Fatalf("written key does not parse: %v", err)
	}
	for _, w := range []string{"LINE_PRIVATE_KEY_FILE=" + out, "LINE_KEY_ID=", "Assertion Signing Key"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, r)
		}
	}
	// The printed public JWK registers with the fake; issue then works.
	var pub string
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(line, "{") {
			pub = line
		}
	}
	kid, err := f.srv.RegisterKey(f.ch.ID, []byte(pub))
	if err != nil {
		t.Fatalf("RegisterKey(%q): %v", pub, err)
	}
	env := with(f.env, oauth.EnvPrivateKeyFile, out, oauth.EnvKeyID, kid)
	v := decodeJSON[issueResult](t, cli(t, env, "", "issue", "--json"))
	if info, ok := f.srv.Lookup(v.AccessToken); !ok || info.Kind != oauthtest.KindV21 {
		t.Errorf("issue with the new key: %+v %t", info, ok)
	}
	// --key-id and --private-key-file flags win over the environment.
	env2 := with(f.env, oauth.EnvKeyID, "wrong")
	mustCode(t, cli(t, env2, "", "issue", "--private-key-file", out, "--key-id", kid), exitOK)

	// No overwrite without --force.
	r = cli(t, nil, "", "keygen", "--out", out)
	mustCode(t, r, exitUsage)
	if !strings.Contains(r.stderr, "--force") {
		t.Errorf("%s", r)
	}
	if again, _ := os.ReadFile(out); string(again) != string(data) {
		t.Error("the key file was changed")
	}
	// --force replaces it, still 0600 even over a looser file.
	os.Chmod(out, 0o644)
	r = cli(t, nil, "", "keygen", "--out", out, "--force", "--json")
	mustCode(t, r, exitOK)
	j := decodeJSON[struct {
		PrivateKeyFile string          `json:"private_key_file"`
		PublicJWK      json.RawMessage `json:"public_jwk"`
	}](t, r)
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 || j.PrivateKeyFile != out {
		t.Errorf("mode %v, file %q", st.Mode(), j.PrivateKeyFile)
	}
	if _, err := f.srv.RegisterKey(f.ch.ID, j.PublicJWK); err != nil {
		t.Errorf("--json public_jwk: %v", err)
	}
	// An unwritable place is a local failure, named by the flag, not the
	// path: --out may be anything pasted there (TestNoSecretPrinted).
	r = cli(t, nil, "", "keygen", "--out", filepath.Join(dir, "missing", "k.jwk"))
	mustCode(t, r, exitFailure)
	if !strings.Contains(r.stderr, "--out: cannot write the private key file: no such file or directory") || strings.Contains(r.stderr, dir) {
		t.Errorf("%s", r)
	}
	r = cli(t, nil, "", "keygen", "--out", out)
	if !strings.Contains(r.stderr, "--out: the file already exists") || strings.Contains(r.stderr, dir) {
		t.Errorf("%s", r)
	}
	// A plain file name is shown.
	t.Chdir(dir)
	mustCode(t, cli(t, nil, "", "keygen", "--out", "plain.jwk"), exitOK)
	if r := cli(t, nil, "", "keygen", "--out", "plain.jwk"); !strings.Contains(r.stderr, "--out plain.jwk: the file already exists") {
		t.Errorf("%s", r)
	}
}

func TestPEMKeyFromEnvironment(t *testing.T) {
	f := newFixture(t)
	env := with(without(f.env, oauth.EnvPrivateKeyFile), oauth.EnvPrivateKey, string(pemOf(f.ch.Key)))
	mustCode(t, cli(t, env, "", "kids"), exitOK)
	mustCode(t, cli(t, env, "", "issue"), exitOK)
}
