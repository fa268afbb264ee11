package agent_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// TestProxyTokenEndpointSpellings: a token endpoint spelled with an empty
// segment or a path parameter, which a server in front of LINE may
// normalise to the token endpoint (nginx merges slashes; servlet
// containers drop ";..."), is refused like the plain spelling, and
// nothing reaches the fake.
func TestProxyTokenEndpointSpellings(t *testing.T) {
	srv, _, r := startProxyV21(t)
	const mark = "X-Review-Mark"
	for _, path := range []string{
		"//oauth2/v2.1/token",
		"/v2//oauth/accessToken",
		"//v2/oauth/revoke",
		"/oauth2;x/v2.1/token",
		"/v2/oauth;x/accessToken",
		"/OAuth2/v3/token",
	} {
		rep := r.via("POST", path, "grant_type=client_credentials", "Authorization", bearer,
			"Content-Type", "application/x-www-form-urlencoded", mark, "1")
		if rep.status != http.StatusForbidden || !strings.Contains(string(rep.body), `"token_endpoint_refused"`) {
			t.Errorf("%s: %d %s, want 403 token_endpoint_refused", path, rep.status, rep.body)
		}
	}
	for _, q := range srv.Requests() {
		if q.Header.Get(mark) != "" {
			t.Errorf("%s %s reached the fake", q.Method, q.Path)
		}
	}
	// Ordinary paths with the same words further in still pass.
	if rep := r.via("GET", "/v2/bot/info", "", "Authorization", bearer); rep.status != 200 {
		t.Errorf("bot info: %d %s", rep.status, rep.body)
	}
}

// TestProxyHugeRetryAfter: a Retry-After too large for a time.Duration is
// still beyond max_elapsed: LINE's answer passes after one attempt, not
// retried at once as if it had said nothing.
func TestProxyHugeRetryAfter(t *testing.T) {
	srv, ch, r := startProxyV21(t)
	for _, huge := range []string{
		"10000000000",              // seconds: 1e19 ns overflows an int64
		"100000000000000000000000", // more than any integer type holds
	} {
		key := uuid.NewString()
		srv.InjectFault(1, oauthtest.Fault{RetryKey: key, Status: 503, Body: `{"message":"later"}`, Header: http.Header{"Retry-After": {huge}}})
		rep := r.push("X-Line-Retry-Key", key)
		if rep.status != http.StatusServiceUnavailable || srv.SendAttempts(ch.ID, key) != 1 || rep.header.Get("Retry-After") != huge {
			t.Errorf("push after 503 Retry-After: %s: %d after %d attempts, want LINE's 503 after 1", huge, rep.status, srv.SendAttempts(ch.ID, key))
		}
	}
}

// TestProxyConfigNamesKey: a negative duration set through the Go API is
// reported under its own key.
func TestProxyConfigNamesKey(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	for _, tc := range []struct {
		p    agent.ProxyConfig
		want string
	}{
		{agent.ProxyConfig{SendRetry: agent.SendRetry{MaxElapsed: -time.Second}}, "proxy.send_retry.max_elapsed"},
		{agent.ProxyConfig{AttemptTimeout: -time.Second}, "proxy.attempt_timeout"},
	} {
		cfg := &agent.Config{Listen: "127.0.0.1:0", BaseURL: srv.URL(), Channels: []agent.Channel{chanCfg(ch, oauth.KindV21)}, Proxy: &tc.p}
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want+":") {
			t.Errorf("%+v: %v, want a problem with %s", tc.p, err, tc.want)
		}
		other := "proxy.attempt_timeout"
		if tc.want == other {
			other = "proxy.send_retry.max_elapsed"
		}
		if err != nil && strings.Contains(err.Error(), other) {
			t.Errorf("%+v: %v names %s too", tc.p, err, other)
		}
	}
}

// TestProxySectionWithoutKeys: a proxy: section with no keys (all of them
// commented out) turns the proxy on with every default, as proxy: {}
// does; without the section it stays off.
func TestProxySectionWithoutKeys(t *testing.T) {
	base := "channels:\n  - id: \"1234567890\"\n    kind: short-lived\n    secret_env: LT_SECRET\n"
	getenv := func(string) string { return "s3cr3t" }
	for _, tc := range []struct {
		yaml string
		on   bool
	}{
		{"proxy:\n  # listen: 127.0.0.1:7879\n", true},
		{"proxy: {}\n", true},
		{"", false},
	} {
		cfg, err := agent.ParseConfig("agent.yaml", []byte(base+tc.yaml), getenv)
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if on := cfg.Proxy != nil; on != tc.on {
			t.Errorf("%q: proxy on %v, want %v", tc.yaml, on, tc.on)
			continue
		}
		if tc.on && (cfg.Proxy.Listen != agent.DefaultProxyListen || cfg.Proxy.SendRetry.Attempts != agent.DefaultSendAttempts) {
			t.Errorf("%q: %+v, want the defaults", tc.yaml, *cfg.Proxy)
		}
	}
}

// TestProxyKeyWithNoChannels: a caller key limited to no channel at all
// (channels: []) gets 403 channel_not_allowed from the plain
// "linetoken/KEY" placeholder, as with a channel ID and on the token API,
// not an ambiguous_kind listing no kinds; nothing reaches the fake.
func TestProxyKeyWithNoChannels(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	key := "kNone_" + strings.Repeat("n", 20)
	r := startProxy(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}, func(c *agent.Config) {
		c.Callers = []agent.Caller{{Name: "none", Key: agent.Secret(key), Channels: []string{}}}
	})
	before := len(upstreamRequests(srv, "/v2/bot/info"))
	for _, ph := range []string{"linetoken/" + key, "linetoken:" + ch.ID + "/" + key} {
		wantErr(t, r.via("GET", "/v2/bot/info", "", "Authorization", "Bearer "+ph), http.StatusForbidden, "channel_not_allowed")
	}
	if n := len(upstreamRequests(srv, "/v2/bot/info")) - before; n != 0 {
		t.Errorf("%d refused requests reached the fake", n)
	}
}

// TestProxyReplayBudgetUnknownLength: a body of unknown length (chunked)
// reserves max_replay_body+1 bytes of the replay budget only while it is
// read; once kept, it holds what it is. So a small chunked push in flight
// does not keep another push within the budget from being retried.
func TestProxyReplayBudgetUnknownLength(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	const limit = 4096
	cfg := newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}, func(c *agent.Config) {
		c.Proxy = &agent.ProxyConfig{Listen: "127.0.0.1:0", APIURL: srv.URL(), DataURL: srv.DataURL(), MaxReplayBody: limit}
	})
	a, err := agent.New(cfg, agent.Options{Clock: srv.Now, SendBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	agent.SetReplayBudget(a, limit+1) // one unknown length's reservation, while it is read
	ps := httptest.NewServer(a.ProxyHandler())
	t.Cleanup(ps.Close)
	send := func(ctx context.Context, body io.Reader, key string) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", ps.URL+"/v2/bot/message/push", body)
		req.Header.Set("Authorization", bearer)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Line-Retry-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// A chunked push held at the fake (its answer delayed until cancelled).
	held := uuid.NewString()
	srv.InjectFault(1, oauthtest.Fault{RetryKey: held, Delay: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := send(ctx, struct{ io.Reader }{strings.NewReader(pushBody)}, held)
		done <- err
	}()
	defer func() { cancel(); <-done }()
	testkit.Eventually(t, waitLimit, "the chunked push at the fake", func() bool { return srv.SendAttempts(ch.ID, held) == 1 })
	// Meanwhile a push within the budget is kept, so its 500 is retried.
	key := uuid.NewString()
	srv.InjectFault(1, oauthtest.Fault{RetryKey: key, Status: 500, Body: `{"message":"Internal Server Error"}`})
	if code, err := send(t.Context(), strings.NewReader(pushBody), key); err != nil || code != 200 || srv.SendAttempts(ch.ID, key) != 2 {
		t.Errorf("a push beside a small chunked one in flight, after a 500: %d %v after %d attempts, want 200 after 2", code, err, srv.SendAttempts(ch.ID, key))
	}
}

// TestProxy401ElsewhereClientLeaves: a client that leaves while the
// agent asks LINE's verify endpoint about a 401 outside the Messaging API
// has not shown the token bad: the token is kept, not dropped.
func TestProxy401ElsewhereClientLeaves(t *testing.T) {
	srv, ch, r := startProxyV21(t)
	old := r.token(ch.ID, "").AccessToken
	issued := srv.IssueCount(oauthtest.KindV21)
	const path = "/v2/profile"
	srv.InjectFault(1, oauthtest.Fault{Path: path, Status: http.StatusUnauthorized, Body: `{"message":"invalid token"}`})
	srv.InjectFault(1, oauthtest.Fault{Path: "/oauth2/v2.1/verify", Delay: time.Hour}) // until the agent gives up
	faulted := srv.Stats().Faulted
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", r.proxy+path, nil)
		req.Header.Set("Authorization", bearer)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	testkit.Eventually(t, waitLimit, "the 401 and the verify at the fake", func() bool { return srv.Stats().Faulted == faulted+2 })
	cancel()
	<-done
	// LINE's 401 is what the request ends with, the client gone or not.
	ended := labels("channel", ch.ID, "kind", "v2.1", "code", "401")
	testkit.Eventually(t, waitLimit, "the request's end counted", func() bool {
		return r.metric("linetoken_proxy_requests_total", ended) == 1
	})
	if got := r.metric("linetoken_token_invalidations_total", labels("channel", ch.ID, "kind", "v2.1")); got != 0 {
		t.Errorf("%v tokens dropped after the client left during the verify, want 0", got)
	}
	if srv.IssueCount(oauthtest.KindV21) != issued || r.token(ch.ID, "").AccessToken != old {
		t.Error("the token was replaced after the client left during the verify")
	}
}
