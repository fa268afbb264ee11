package agent_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// Proxy test settings.
const (
	// testAttemptTimeout is the proxy's attempt_timeout in tests: long
	// enough for a loaded machine's normal answer, short enough that a
	// slow fault costs little.
	testAttemptTimeout = 2 * time.Second
	// slowFault is a fault's delay past testAttemptTimeout.
	slowFault = testAttemptTimeout + 3*time.Second
	// pushBody is a valid push of one text message.
	pushBody = `{"to":"U4af4980629a7c1a7f2b3c4d5e6f7a8b9","messages":[{"type":"text","text":"hello"}]}`
	bearer   = "Bearer linetoken"
)

// startProxy runs an agent serving chans of srv with its proxy on,
// upstreams api = srv.URL() and data = srv.DataURL(), and a 1ms retry
// backoff. edit changes the config before validation.
func startProxy(t *testing.T, srv *oauthtest.Server, chans []agent.Channel, edit ...func(*agent.Config)) *running {
	t.Helper()
	cfg := newConfig(t, srv, chans, append([]func(*agent.Config){func(c *agent.Config) {
		c.Proxy = &agent.ProxyConfig{Listen: "127.0.0.1:0", APIURL: srv.URL(), DataURL: srv.DataURL(),
			AttemptTimeout: testAttemptTimeout}
	}}, edit...)...)
	return startAgent(t, srv, cfg, func(o *agent.Options) { o.SendBackoff = time.Millisecond })
}

// startProxyV21 is startProxy for one v2.1 channel of a new fake.
func startProxyV21(t *testing.T, edit ...func(*agent.Config)) (*oauthtest.Server, oauthtest.Channel, *running) {
	t.Helper()
	srv := newFake(t)
	ch := srv.NewChannel(t)
	return srv, ch, startProxy(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}, edit...)
}

// via sends a request to the proxy, failing t when it cannot.
func (r *running) via(method, path, body string, hdr ...string) reply {
	r.t.Helper()
	rep, err := r.tryAt(r.proxy, method, path, body, hdr...)
	if err != nil {
		r.t.Fatalf("proxy %s %s: %v", method, path, err)
	}
	return rep
}

// push sends pushBody through the proxy with the plain placeholder.
func (r *running) push(hdr ...string) reply {
	r.t.Helper()
	return r.via("POST", "/v2/bot/message/push", pushBody, append([]string{"Authorization", bearer, "Content-Type", "application/json"}, hdr...)...)
}

// upstreamRequests are the fake's logged requests for path.
func upstreamRequests(srv *oauthtest.Server, path string) []oauthtest.Request {
	var out []oauthtest.Request
	for _, q := range srv.Requests() {
		if q.Path == path {
			out = append(out, q)
		}
	}
	return out
}

func TestProxyForwards(t *testing.T) {
	srv, ch, r := startProxyV21(t)

	// A push with no retry key: the proxy adds one (a UUID), and the real
	// token; X-Linetoken-* and hop-by-hop headers stay behind.
	rep := r.push("X-Linetoken-Debug", "1", "Connection", "X-Hop", "X-Hop", "gone", "X-Custom", "kept")
	var out struct {
		SentMessages []oauthtest.SentMessage `json:"sentMessages"`
	}
	if rep.status != 200 || json.Unmarshal(rep.body, &out) != nil || len(out.SentMessages) != 1 {
		t.Fatalf("push: %d %s", rep.status, rep.body)
	}
	sends := srv.Sends()
	if len(sends) != 1 || sends[0].ChannelID != ch.ID || sends[0].Body == nil || string(sends[0].Body) != pushBody {
		t.Fatalf("the fake accepted %d sends: %v", len(sends), sends)
	}
	if _, err := uuid.Parse(sends[0].RetryKey); err != nil || len(sends[0].RetryKey) != 36 {
		t.Errorf("the proxy's retry key %q is not a UUID", sends[0].RetryKey)
	}
	if rep.header.Get("X-Line-Request-Id") != sends[0].RequestID || out.SentMessages[0].ID != sends[0].SentMessages[0].ID {
		t.Errorf("the answer is not LINE's: request ID %q (accepted %q)", rep.header.Get("X-Line-Request-Id"), sends[0].RequestID)
	}
	up := upstreamRequests(srv, "/v2/bot/message/push")
	if len(up) != 1 {
		t.Fatalf("%d pushes upstream, want 1", len(up))
	}
	h := up[0].Header
	tok := strings.TrimPrefix(h.Get("Authorization"), "Bearer ")
	if info, ok := srv.Lookup(tok); !ok || info.ChannelID != ch.ID {
		t.Error("upstream did not get the channel's valid token")
	}
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-linetoken-") || k == "X-Hop" || k == "Connection" {
			t.Errorf("header %s reached upstream", k)
		}
	}
	if h.Get("X-Custom") != "kept" {
		t.Error("an ordinary header did not pass")
	}

	// A client's own retry key passes unchanged; its repeat is LINE's 409,
	// passed through (no earlier attempt of that request was ambiguous).
	key := uuid.NewString()
	if rep := r.push("X-Line-Retry-Key", key); rep.status != 200 {
		t.Fatalf("push with a key: %d %s", rep.status, rep.body)
	}
	if got := srv.Sends()[1].RetryKey; got != key {
		t.Errorf("retry key upstream %q, want the client's %q", got, key)
	}
	if rep := r.push("X-Line-Retry-Key", key); rep.status != http.StatusConflict || rep.header.Get("X-Line-Accepted-Request-Id") != srv.Sends()[1].RequestID {
		t.Errorf("a client's reused key: %d %s, want LINE's 409 unchanged", rep.status, rep.body)
	}

	// GET /v2/bot/info; a data path goes to the data host (the fake's
	// api.line.me answers 404 there).
	if rep := r.via("GET", "/v2/bot/info", "", "Authorization", bearer); rep.status != 200 || !strings.Contains(string(rep.body), `"userId"`) {
		t.Errorf("bot info: %d %s", rep.status, rep.body)
	}
	const size = 3<<20 + 17
	rep = r.via("GET", "/v2/bot/message/"+oauthtest.ContentMessageID(size)+"/content", "", "Authorization", bearer)
	if rep.status != 200 || int64(len(rep.body)) != size {
		t.Fatalf("content: %d, %d bytes", rep.status, len(rep.body))
	}
	if err := oauthtest.VerifyContent(strings.NewReader(string(rep.body)), size); err != nil {
		t.Error(err)
	}
	// LINE's own errors pass unchanged.
	rep = r.via("POST", "/v2/bot/message/push", `{"to":"U1","messages":[]}`, "Authorization", bearer, "Content-Type", "application/json")
	if rep.status != 400 || !strings.Contains(string(rep.body), `"details"`) {
		t.Errorf("an invalid push: %d %s, want LINE's 400", rep.status, rep.body)
	}
	if got := r.metric("linetoken_proxy_requests_total", labels("channel", ch.ID, "kind", "v2.1", "code", "200")); got != 4 {
		t.Errorf("linetoken_proxy_requests_total{code=200} = %v, want 4", got)
	}
	// Every request of the channel is timed: 4 200s, a 409 and a 400.
	if got := r.metric("linetoken_proxy_request_duration_seconds", labels("channel", ch.ID, "kind", "v2.1")); got != 6 {
		t.Errorf("linetoken_proxy_request_duration_seconds count = %v, want 6", got)
	}
}

// TestProxyRefuses: every request the guard refuses gets the proxy's
// JSON error, and nothing reaches LINE.
func TestProxyRefuses(t *testing.T) {
	srv := newFake(t)
	a, b := srv.NewChannel(t), srv.NewChannel(t)
	keyA, keyB, keyAll := "kA_"+strings.Repeat("a", 20), "kB_"+strings.Repeat("d", 20), "kAll-"+strings.Repeat("b", 20)
	r := startProxy(t, srv, []agent.Channel{chanCfg(a, oauth.KindV21), chanCfg(a, oauth.KindShortLived), chanCfg(b, oauth.KindShortLived)},
		func(c *agent.Config) {
			c.Callers = []agent.Caller{{Name: "a-only", Key: agent.Secret(keyA), Channels: []string{a.ID}},
				{Name: "b-only", Key: agent.Secret(keyB), Channels: []string{b.ID}}, {Name: "all", Key: agent.Secret(keyAll)}}
		})
	tok := r.token(a.ID, "?kind=v2.1", agent.HeaderKey, keyAll).AccessToken
	// What a refused request would have sent: a Messaging API path, or
	// any path with an Authorization header (the agent's own token calls
	// carry none, and go on meanwhile).
	forwarded := func() int {
		n := 0
		for _, q := range srv.Requests() {
			if strings.HasPrefix(q.Path, "/v2/bot/") || q.Header.Get("Authorization") != "" {
				n++
			}
		}
		return n
	}
	before := forwarded()
	ph := "Bearer linetoken:" + b.ID + "/" + keyAll
	cases := []struct {
		name, method, path string
		hdr                []string
		status             int
		code               string
	}{
		{"no Authorization", "GET", "/v2/bot/info", nil, 401, "missing_placeholder"},
		{"a real-looking token", "GET", "/v2/bot/info", []string{"Authorization", "Bearer " + strings.Repeat("x", 40)}, 401, "missing_placeholder"},
		{"not Bearer", "GET", "/v2/bot/info", []string{"Authorization", "Basic linetoken"}, 401, "missing_placeholder"},
		{"bad grammar", "GET", "/v2/bot/info", []string{"Authorization", "Bearer linetoken:12ab"}, 401, "missing_placeholder"},
		{"bad kind", "GET", "/v2/bot/info", []string{"Authorization", "Bearer linetoken:" + a.ID + ":long-lived/" + keyAll}, 401, "missing_placeholder"},
		{"no caller key", "GET", "/v2/bot/info", []string{"Authorization", "Bearer linetoken:" + b.ID}, 401, "invalid_caller_key"},
		{"wrong caller key", "GET", "/v2/bot/info", []string{"Authorization", "Bearer linetoken:" + b.ID + "/nope-" + strings.Repeat("c", 20)}, 401, "invalid_caller_key"},
		{"two different keys", "GET", "/v2/bot/info", []string{"Authorization", ph, agent.HeaderKey, keyA}, 401, "invalid_caller_key"},
		{"unknown channel", "GET", "/v2/bot/info", []string{"Authorization", "Bearer linetoken:42/" + keyAll}, 404, "unknown_channel"},
		{"kind not served", "GET", "/v2/bot/info", []string{"Authorization", "Bearer linetoken:" + b.ID + ":v2.1/" + keyAll}, 404, "unknown_channel"},
		{"ambiguous kind", "GET", "/v2/bot/info", []string{"Authorization", "Bearer linetoken:" + a.ID + "/" + keyAll}, 400, "ambiguous_kind"},
		{"ambiguous channel", "GET", "/v2/bot/info", []string{"Authorization", "Bearer linetoken/" + keyAll}, 400, "ambiguous_channel"},
		{"a limited key's one channel, ambiguous kind", "GET", "/v2/bot/info", []string{"Authorization", "Bearer linetoken/" + keyA}, 400, "ambiguous_kind"},
		{"channel not allowed", "GET", "/v2/bot/info", []string{"Authorization", "Bearer linetoken:" + b.ID + "/" + keyA}, 403, "channel_not_allowed"},
		{"channel not allowed, unknown to the agent", "GET", "/v2/bot/info", []string{"Authorization", "Bearer linetoken:42/" + keyA}, 403, "channel_not_allowed"},
		{"foreign Host", "GET", "/v2/bot/info", []string{"Authorization", ph, "Host", "evil.example:7879"}, 403, "bad_host"},
		{"Origin", "GET", "/v2/bot/info", []string{"Authorization", ph, "Origin", "https://evil.example"}, 403, "bad_host"},
		{"Upgrade", "GET", "/v2/bot/info", []string{"Authorization", ph, "Connection", "Upgrade", "Upgrade", "websocket"}, 400, "upgrade_refused"},
		{"dot dot", "GET", "/v2/bot/../oauth/accessToken", []string{"Authorization", ph}, 400, "bad_path"},
		{"encoded dot dot", "GET", "/v2/bot/%2e%2e/info", []string{"Authorization", ph}, 400, "bad_path"},
		{"encoded slash", "GET", "/v2/bot/message%2Fpush", []string{"Authorization", ph}, 400, "bad_path"},
		{"token endpoint v2", "POST", "/v2/oauth/accessToken", []string{"Authorization", ph}, 403, "token_endpoint_refused"},
		{"token endpoint v2.1", "POST", "/oauth2/v2.1/token", []string{"Authorization", ph}, 403, "token_endpoint_refused"},
		{"token endpoint v3", "POST", "/oauth2/v3/token", []string{"Authorization", ph}, 403, "token_endpoint_refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := r.via(tc.method, tc.path, "", tc.hdr...)
			wantErr(t, rep, tc.status, tc.code)
			noToken(t, rep, tok)
		})
	}
	// Absolute form and CONNECT, written by hand (Go's client sends
	// neither to an origin server).
	for _, line := range []string{
		"GET http://api.line.me/v2/bot/info HTTP/1.1",
		"GET http://127.0.0.1:1/v2/bot/info HTTP/1.1",
		"CONNECT api.line.me:443 HTTP/1.1",
	} {
		status, body := rawRequest(t, r.proxy, line+"\r\nHost: 127.0.0.1\r\nAuthorization: "+ph+"\r\nConnection: close\r\n\r\n")
		if status != 400 || !strings.Contains(body, `"not_a_proxy"`) {
			t.Errorf("%s: %d %s, want 400 not_a_proxy", line, status, body)
		}
	}
	if after := forwarded(); after != before {
		t.Errorf("%d refused requests reached the fake", after-before)
	}
	// A key limited to one channel of one kind needs no channel ID.
	if rep := r.via("GET", "/v2/bot/info", "", "Authorization", "Bearer linetoken/"+keyB); rep.status != 200 || !strings.Contains(string(rep.body), oauthtest.BotFor(b.ID).UserID) {
		t.Errorf("plain linetoken/KEY for a key limited to channel b: %d %s, want b's bot", rep.status, rep.body)
	}
	if got := r.metric("linetoken_proxy_requests_total", labels("channel", "", "kind", "", "code", "401")); got != 8 {
		t.Errorf("refused 401s counted %v, want 8", got)
	}
}

// noToken fails t if the real token shows anywhere in rep.
func noToken(t *testing.T, rep reply, tok string) {
	t.Helper()
	if strings.Contains(string(rep.body), tok) || strings.Contains(fmt.Sprint(rep.header), tok) {
		t.Errorf("the real token reached the client")
	}
}

// rawRequest writes req on a new connection to base and reads the answer.
func rawRequest(t *testing.T, base, req string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitLimit))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestProxyHealsRevokedToken: the fake revokes the current token in the
// middle of a stream of requests; clients see only 200s, and there is
// one refresh.
func TestProxyHealsRevokedToken(t *testing.T) {
	srv, ch, r := startProxyV21(t)
	t1 := r.token(ch.ID, "").AccessToken
	issued := srv.IssueCount(oauthtest.KindV21)

	const clients, each = 8, 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	revoke := make(chan struct{})
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				if i == 0 && j == each/2 {
					close(revoke)
				}
				var rep reply
				var err error
				if j%2 == 0 {
					rep, err = r.tryAt(r.proxy, "GET", "/v2/bot/info", "", "Authorization", bearer)
				} else {
					rep, err = r.tryAt(r.proxy, "POST", "/v2/bot/message/push", pushBody, "Authorization", bearer, "Content-Type", "application/json")
				}
				mu.Lock()
				if err != nil {
					codes[-1]++
				} else {
					codes[rep.status]++
				}
				mu.Unlock()
			}
		}()
	}
	<-revoke
	if err := srv.Client(t, ch.ID).RevokeToken(t.Context(), t1); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if codes[200] != clients*each {
		t.Errorf("answers %v, want %d 200s", codes, clients*each)
	}
	if got := srv.IssueCount(oauthtest.KindV21) - issued; got != 1 {
		t.Errorf("%d issues after the revocation, want 1", got)
	}
	if got := r.metric("linetoken_proxy_token_heals_total", labels("channel", ch.ID, "kind", "v2.1")); got != 1 {
		t.Errorf("linetoken_proxy_token_heals_total = %v, want 1", got)
	}
}

// TestProxyAtMostOnce: 1,000 pushes while the fake injects every fault a
// retry key exists for, at most attempts-1 per send: each is delivered
// exactly once and every client gets 200 with the accepted send's answer.
func TestProxyAtMostOnce(t *testing.T) {
	srv, ch, r := startProxyV21(t)
	faults := []oauthtest.Fault{
		{AfterAccept: true, Status: 500, Body: `{"message":"Internal Server Error"}`}, // accepted, then 500
		{AfterAccept: true, Drop: true},                                               // accepted, then the connection drops
		{Status: 500, Body: `{"message":"Internal Server Error"}`},                    // 500 before accepting
		{AfterAccept: true, Delay: slowFault},                                         // accepted, slower than attempt_timeout
	}
	const sends = 1000
	attempts := agent.DefaultSendAttempts
	// Each key's first n attempts fault (n from 0 to attempts-1), with
	// faults picked by key and attempt, so every kind follows every other.
	srv.FaultSends(func(key string, n int) (oauthtest.Fault, bool) {
		h := fnv.New32a()
		_, _ = io.WriteString(h, key)
		sum := int(h.Sum32())
		if n > sum%attempts {
			return oauthtest.Fault{}, false
		}
		return faults[(sum/attempts+n)%len(faults)], true
	})
	type result struct {
		status int
		reqID  string
		body   string
		err    error
	}
	results := make([]result, sends)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range sends {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			body := fmt.Sprintf(`{"to":"U4af4980629a7c1a7f2b3c4d5e6f7a8b9","messages":[{"type":"text","text":"n=%d"}]}`, i)
			rep, err := r.tryAt(r.proxy, "POST", "/v2/bot/message/push", body, "Authorization", bearer, "Content-Type", "application/json")
			results[i] = result{rep.status, rep.header.Get("X-Line-Request-Id"), string(rep.body), err}
		}()
	}
	wg.Wait()
	byBody := map[string]oauthtest.Send{}
	for _, s := range srv.Sends() {
		if _, dup := byBody[string(s.Body)]; dup {
			t.Errorf("delivered twice: %s", s.Body)
		}
		byBody[string(s.Body)] = s
	}
	if len(byBody) != sends {
		t.Errorf("the fake accepted %d distinct sends, want %d", len(byBody), sends)
	}
	bad := 0
	for i, res := range results {
		body := fmt.Sprintf(`{"to":"U4af4980629a7c1a7f2b3c4d5e6f7a8b9","messages":[{"type":"text","text":"n=%d"}]}`, i)
		s, ok := byBody[body]
		var got struct {
			SentMessages []oauthtest.SentMessage `json:"sentMessages"`
		}
		switch {
		case res.err != nil || res.status != 200:
			bad++
			if bad <= 5 {
				t.Errorf("send %d: %d %s %v", i, res.status, res.body, res.err)
			}
		case !ok || res.reqID != s.RequestID || json.Unmarshal([]byte(res.body), &got) != nil ||
			len(got.SentMessages) != 1 || got.SentMessages[0].ID != s.SentMessages[0].ID:
			bad++
			if bad <= 5 {
				t.Errorf("send %d: the answer %s (request ID %q) is not the accepted send's (%q)", i, res.body, res.reqID, s.RequestID)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d sends went wrong", bad, sends)
	}
	st := srv.Stats()
	if st.Faulted < sends {
		t.Errorf("only %d faults applied; the test must fault most sends", st.Faulted)
	}
	if got := r.metric("linetoken_proxy_accepted_conflicts_total", labels("channel", ch.ID, "kind", "v2.1")); got == 0 {
		t.Error("no 409 was translated: the accepted-then-fault cases did not happen")
	}
	t.Logf("%d sends, %d faults, %v translated 409s", sends, st.Faulted,
		r.metric("linetoken_proxy_accepted_conflicts_total", labels("channel", ch.ID, "kind", "v2.1")))
}

// TestProxyRetryRules: what is retried, and what is not.
func TestProxyRetryRules(t *testing.T) {
	srv, ch, r := startProxyV21(t, func(c *agent.Config) {
		c.Proxy.SendRetry.MaxElapsed = 20 * time.Second
	})
	r.token(ch.ID, "")
	count := func(path string) int { return len(upstreamRequests(srv, path)) }
	internal := `{"message":"Internal Server Error"}`

	// A reply is never retried.
	srv.InjectFault(1, oauthtest.Fault{Path: "/v2/bot/message/reply", Status: 500, Body: internal})
	rep := r.via("POST", "/v2/bot/message/reply", `{"replyToken":"x","messages":[{"type":"text","text":"hi"}]}`, "Authorization", bearer, "Content-Type", "application/json")
	if rep.status != 500 || count("/v2/bot/message/reply") != 1 {
		t.Errorf("reply: %d after %d attempts, want the 500 after 1", rep.status, count("/v2/bot/message/reply"))
	}
	if len(upstreamRequests(srv, "/v2/bot/message/reply")[0].Header.Values("X-Line-Retry-Key")) != 0 {
		t.Error("a reply got a retry key")
	}
	// A GET is retried on a 5xx and on a dropped connection.
	srv.InjectFault(1, oauthtest.Fault{Path: "/v2/bot/info", Status: 503, Body: `{"message":"unavailable"}`})
	srv.InjectFault(1, oauthtest.Fault{Path: "/v2/bot/info", Drop: true})
	if rep := r.via("GET", "/v2/bot/info", "", "Authorization", bearer); rep.status != 200 || count("/v2/bot/info") != 3 {
		t.Errorf("GET after a 503 and a drop: %d after %d attempts, want 200 after 3", rep.status, count("/v2/bot/info"))
	}
	// Other 4xx are not retried (429 included).
	srv.InjectFault(1, oauthtest.Fault{Path: "/v2/bot/message/push", Status: 429, Body: `{"message":"Too Many Requests"}`})
	if rep := r.push(); rep.status != 429 || count("/v2/bot/message/push") != 1 {
		t.Errorf("push after a 429: %d after %d attempts, want the 429 after 1", rep.status, count("/v2/bot/message/push"))
	}
	// A send is retried at most attempts times; the last answer passes.
	key := uuid.NewString()
	srv.InjectFault(agent.DefaultSendAttempts+1, oauthtest.Fault{RetryKey: key, Status: 500, Body: internal})
	if rep := r.push("X-Line-Retry-Key", key); rep.status != 500 || srv.SendAttempts(ch.ID, key) != agent.DefaultSendAttempts {
		t.Errorf("push failing every time: %d after %d attempts, want 500 after %d", rep.status, srv.SendAttempts(ch.ID, key), agent.DefaultSendAttempts)
	}
	srv.ClearFaults()
	// Retry-After is honoured: the retry waits at least that long.
	key = uuid.NewString()
	srv.InjectFault(1, oauthtest.Fault{RetryKey: key, Status: 503, Body: `{}`, Header: http.Header{"Retry-After": {"1"}}})
	start := time.Now()
	if rep := r.push("X-Line-Retry-Key", key); rep.status != 200 || time.Since(start) < time.Second {
		t.Errorf("push after 503 Retry-After: 1: %d after %v, want 200 after at least 1s", rep.status, time.Since(start))
	}
	// A Retry-After beyond max_elapsed: no retry, LINE's answer passes.
	key = uuid.NewString()
	srv.InjectFault(1, oauthtest.Fault{RetryKey: key, Status: 503, Body: `{"message":"later"}`, Header: http.Header{"Retry-After": {"3600"}}})
	if rep := r.push("X-Line-Retry-Key", key); rep.status != 503 || srv.SendAttempts(ch.ID, key) != 1 || rep.header.Get("Retry-After") != "3600" {
		t.Errorf("push after 503 Retry-After: 3600: %d after %d attempts, want LINE's 503 after 1", rep.status, srv.SendAttempts(ch.ID, key))
	}
	// A 409 after an ambiguous attempt is the send's own success status:
	// 202 for narrowcast, with the accepted request's ID.
	key = uuid.NewString()
	srv.InjectFault(1, oauthtest.Fault{RetryKey: key, AfterAccept: true, Status: 500, Body: internal})
	rep = r.via("POST", "/v2/bot/message/narrowcast", `{"messages":[{"type":"text","text":"all"}]}`,
		"Authorization", bearer, "Content-Type", "application/json", "X-Line-Retry-Key", key)
	var accepted oauthtest.Send
	for _, s := range srv.Sends() {
		if s.RetryKey == key {
			accepted = s
		}
	}
	if rep.status != http.StatusAccepted || rep.header.Get("X-Line-Request-Id") != accepted.RequestID ||
		rep.header.Get("X-Line-Accepted-Request-Id") != accepted.RequestID || accepted.RequestID == "" {
		t.Errorf("narrowcast accepted then 500: %d (request ID %q, accepted %q), want 202 with the accepted request's ID",
			rep.status, rep.header.Get("X-Line-Request-Id"), accepted.RequestID)
	}
}

// TestProxyStreams: a 64 MiB download through the proxy allocates less
// than 8 MiB in all (the fake and the client included, all streaming);
// an upload larger than max_replay_body streams and is never sent twice.
func TestProxyStreams(t *testing.T) {
	srv, ch, r := startProxyV21(t)
	r.token(ch.ID, "")
	const size = 64 << 20
	get := func() {
		req, _ := http.NewRequest("GET", r.proxy+"/v2/bot/message/"+oauthtest.ContentMessageID(size)+"/content", nil)
		req.Header.Set("Authorization", bearer)
		resp, err := r.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := oauthtest.VerifyContent(resp.Body, size); err != nil || resp.StatusCode != 200 {
			t.Fatalf("download: %d %v", resp.StatusCode, err)
		}
	}
	get() // warm: connections, buffers
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	get()
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc >= 8<<20 {
		t.Errorf("a 64 MiB download allocated %d bytes in all, want < 8 MiB", alloc)
	} else {
		t.Logf("a 64 MiB download allocated %d KiB in all", alloc>>10)
	}

	// An upload of 3 MiB (max_replay_body is 1 MiB) with a revoked token:
	// streamed once, so the 401 passes through, unreplayed.
	body := strings.Repeat("x", 3<<20)
	if rep := r.via("POST", "/v2/bot/richmenu/richmenu-1/content", body, "Authorization", bearer, "Content-Type", "image/png"); rep.status != 200 {
		t.Fatalf("upload: %d %s", rep.status, rep.body)
	}
	if up := srv.Uploads(); len(up) != 1 || up[0].Bytes != int64(len(body)) {
		t.Fatalf("uploads %v", up)
	}
	tok := r.token(ch.ID, "").AccessToken
	if err := srv.Client(t, ch.ID).RevokeToken(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	rep := r.via("POST", "/v2/bot/richmenu/richmenu-1/content", body, "Authorization", bearer, "Content-Type", "image/png")
	if rep.status != 401 || len(upstreamRequests(srv, "/v2/bot/richmenu/richmenu-1/content")) != 2 {
		t.Errorf("a large upload with a revoked token: %d after %d uploads in all, want the 401 unreplayed",
			rep.status, len(upstreamRequests(srv, "/v2/bot/richmenu/richmenu-1/content")))
	}
	// The next request has the new token.
	testkit.Eventually(t, waitLimit, "a new token after the 401", func() bool { return r.token(ch.ID, "").AccessToken != tok })
	if rep := r.push(); rep.status != 200 {
		t.Errorf("push after the heal: %d %s", rep.status, rep.body)
	}
}

// TestProxyUnreachable: when LINE cannot be reached, 502 upstream_unreachable.
func TestProxyUnreachable(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	r := startProxy(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}, func(c *agent.Config) {
		c.Proxy.APIURL, c.Proxy.DataURL = dead, dead
	})
	tok := r.token(ch.ID, "").AccessToken
	rep := r.push()
	wantErr(t, rep, http.StatusBadGateway, "upstream_unreachable")
	noToken(t, rep, tok)
	// The answer gives the send's retry key, so it can be sent again
	// safely: the proxy's own, or the client's.
	if k := rep.header.Get("X-Line-Retry-Key"); uuid.Validate(k) != nil || len(k) != 36 {
		t.Errorf("the 502 of a send carries retry key %q, want the proxy's UUID", k)
	}
	key := uuid.NewString()
	if rep := r.push("X-Line-Retry-Key", key); rep.header.Get("X-Line-Retry-Key") != key {
		t.Errorf("the 502 of a send with its own key carries %q, want %q", rep.header.Get("X-Line-Retry-Key"), key)
	}
	if rep := r.via("GET", "/v2/bot/info", "", "Authorization", bearer); rep.status != http.StatusBadGateway || rep.header.Get("X-Line-Retry-Key") != "" {
		t.Errorf("a GET's 502: %d with retry key %q, want none", rep.status, rep.header.Get("X-Line-Retry-Key"))
	}
	if got := r.metric("linetoken_proxy_retries_total", labels("channel", ch.ID, "kind", "v2.1", "reason", "connection")); got != float64(3*(agent.DefaultSendAttempts-1)) {
		t.Errorf("connection retries %v, want %d", got, 3*(agent.DefaultSendAttempts-1))
	}
}

func TestProxyConfig(t *testing.T) {
	t.Setenv("LT_SECRET", "s3cr3t")
	base := "channels:\n  - id: \"1234567890\"\n    kind: short-lived\n    secret_env: LT_SECRET\n"
	cfg, err := agent.ParseConfig("agent.yaml", []byte(base+"proxy:\n  max_replay_body: 512KiB\n  send_retry: {attempts: 3}\n"), func(k string) string {
		if k == "LT_SECRET" {
			return "s3cr3t"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Proxy
	if p.Listen != agent.DefaultProxyListen || p.APIURL != agent.DefaultAPIURL || p.DataURL != agent.DefaultDataURL ||
		p.MaxReplayBody != 512<<10 || p.SendRetry.Attempts != 3 || p.SendRetry.MaxElapsed != agent.DefaultSendMaxElapsed ||
		p.AttemptTimeout != agent.DefaultAttemptTimeout {
		t.Errorf("parsed %+v", *p)
	}
	getenv := func(string) string { return "s3cr3t" }
	for _, tc := range []struct{ yaml, want string }{
		{"proxy:\n  api_url: http://api.line.me\n", "agent.yaml:6: proxy.api_url: must be an https:// URL"},
		{"proxy:\n  data_url: https://u:p@api-data.line.me\n", "agent.yaml:6: proxy.data_url: must be an https:// URL"},
		{"proxy:\n  listen: 0.0.0.0:7879\n", "agent.yaml:6: proxy.listen: a non-loopback address"},
		{"proxy:\n  listen: 127.0.0.1:7878\n", "agent.yaml:6: proxy.listen: is the token API's listen address"},
		{"proxy:\n  max_replay_body: lots\n", "agent.yaml:6: proxy.max_replay_body: must be a size"},
		{"proxy:\n  max_replay_body: 1GiB\n", "agent.yaml:6: proxy.max_replay_body: must be from 0"},
		{"proxy:\n  attempt_timeout: soon\n", "agent.yaml:6: proxy.attempt_timeout: must be a positive duration"},
		{"proxy:\n  send_retry:\n    attempts: 0\n", "agent.yaml:7: proxy.send_retry.attempts: must be from 1"},
		{"proxy:\n  send_retry:\n    attempts: 11\n", "agent.yaml:7: proxy.send_retry.attempts: must be from 1"},
		{"proxy:\n  retries: 3\n", "agent.yaml:6:"},
	} {
		_, err := agent.ParseConfig("agent.yaml", []byte(base+tc.yaml), getenv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// TestProxyTLS: with tls set, the proxy's listener speaks TLS with the
// same certificate as the token API's.
func TestProxyTLS(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	certFile, keyFile, pool := selfSignedCert(t)
	r := startProxy(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}, func(c *agent.Config) {
		c.TLS = &agent.TLSConfig{CertFile: certFile, KeyFile: keyFile}
	})
	if rep, err := r.tryAt(r.proxy, "GET", "/v2/bot/info", "", "Authorization", bearer); err == nil && rep.status == 200 {
		t.Error("a plain HTTP request to the TLS proxy was forwarded")
	}
	r.http.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	rep, err := r.tryAt(strings.Replace(r.proxy, "http://", "https://", 1), "GET", "/v2/bot/info", "", "Authorization", bearer)
	if err != nil || rep.status != 200 {
		t.Errorf("bot info over TLS: %v %d %s", err, rep.status, rep.body)
	}
}

// TestProxySecond401Passes: LINE answers 401, the proxy drops the token
// and sends again once with a new one; a second 401 reaches the client
// unchanged, after exactly two attempts and one new token.
func TestProxySecond401Passes(t *testing.T) {
	srv, ch, r := startProxyV21(t)
	old := r.token(ch.ID, "").AccessToken
	issued := srv.IssueCount(oauthtest.KindV21)
	const refused = `{"message":"Authentication failed. Confirm that the access token in the authorization header is valid."}`
	srv.InjectFault(2, oauthtest.Fault{Path: "/v2/bot/info", Status: http.StatusUnauthorized, Body: refused})
	rep := r.via("GET", "/v2/bot/info", "", "Authorization", bearer)
	if rep.status != http.StatusUnauthorized || string(rep.body) != refused {
		t.Errorf("after two 401s: %d %s, want LINE's second 401 unchanged", rep.status, rep.body)
	}
	up := upstreamRequests(srv, "/v2/bot/info")
	if len(up) != 2 || up[0].Header.Get("Authorization") != "Bearer "+old || up[1].Header.Get("Authorization") == "Bearer "+old {
		t.Errorf("%d attempts upstream; want 2, the second with a new token", len(up))
	}
	if got := srv.IssueCount(oauthtest.KindV21) - issued; got != 1 {
		t.Errorf("%d tokens issued, want 1", got)
	}
	// A 401 within 30 s of that drop drops nothing: it passes at once.
	srv.InjectFault(1, oauthtest.Fault{Path: "/v2/bot/info", Status: http.StatusUnauthorized, Body: refused})
	if rep := r.via("GET", "/v2/bot/info", "", "Authorization", bearer); rep.status != http.StatusUnauthorized || len(upstreamRequests(srv, "/v2/bot/info")) != 3 {
		t.Errorf("a 401 within 30 s of a drop: %d after %d attempts in all, want the 401 after 3", rep.status, len(upstreamRequests(srv, "/v2/bot/info")))
	}
	if got := srv.IssueCount(oauthtest.KindV21) - issued; got != 1 {
		t.Errorf("%d tokens issued after the second drop attempt, want still 1", got)
	}
}

// TestProxyNonLoopbackNeedsTLS: a non-loopback proxy.listen with callers
// still needs tls or insecure_plaintext.
func TestProxyNonLoopbackNeedsTLS(t *testing.T) {
	getenv := func(string) string { return "0123456789abcdef0123456789" }
	yaml := "channels:\n  - id: \"1234567890\"\n    kind: short-lived\n    secret_env: S\n" +
		"callers:\n  - name: bot\n    key_env: K\nproxy:\n  listen: 10.0.0.1:7879\n"
	_, err := agent.ParseConfig("agent.yaml", []byte(yaml), getenv)
	if err == nil || !strings.Contains(err.Error(), "agent.yaml:9: proxy.listen: a non-loopback address needs tls") {
		t.Errorf("got %v", err)
	}
	if _, err := agent.ParseConfig("agent.yaml", []byte(yaml+"insecure_plaintext: true\n"), getenv); err != nil {
		t.Errorf("with insecure_plaintext: %v", err)
	}
}

// TestProxy401OutsideTheMessagingAPI: a 401 on a path outside the
// Messaging API may not be about the channel token (a LINE Login path
// takes a user's): LINE's verify decides. The token LINE says is valid is
// kept and the 401 passes; one LINE refuses is dropped and the request
// healed.
func TestProxy401OutsideTheMessagingAPI(t *testing.T) {
	srv, ch, r := startProxyV21(t)
	old := r.token(ch.ID, "").AccessToken
	issued := srv.IssueCount(oauthtest.KindV21)
	const path = "/v2/profile"
	srv.InjectFault(1, oauthtest.Fault{Path: path, Status: http.StatusUnauthorized, Body: `{"message":"invalid token"}`})
	if rep := r.via("GET", path, "", "Authorization", bearer); rep.status != http.StatusUnauthorized {
		t.Errorf("a 401 outside the Messaging API: %d %s, want it passed", rep.status, rep.body)
	}
	if got := srv.IssueCount(oauthtest.KindV21) - issued; got != 0 || r.token(ch.ID, "").AccessToken != old {
		t.Errorf("a token LINE's verify accepts was dropped (%d issues)", got)
	}
	// Revoked: verify refuses it, so it is dropped and the request sent
	// again with a new token.
	if err := srv.Client(t, ch.ID).RevokeToken(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	srv.Advance(10 * time.Second) // past the 5 s between two verifies
	srv.InjectFault(1, oauthtest.Fault{Path: path, Status: http.StatusUnauthorized, Body: `{"message":"invalid token"}`})
	rep := r.via("GET", path, "", "Authorization", bearer)
	up := upstreamRequests(srv, path)
	if len(up) != 3 || up[2].Header.Get("Authorization") == "Bearer "+old || srv.IssueCount(oauthtest.KindV21)-issued != 1 {
		t.Errorf("a revoked token's 401 outside the Messaging API: %d after %d attempts in all, %d issues; want a retry with a new token",
			rep.status, len(up), srv.IssueCount(oauthtest.KindV21)-issued)
	}
}

// TestProxyReplayBudget: bodies kept for replay are capped across requests
// in flight; past the cap a body streams once, unkept, so a 500 reaches
// the client unretried (never sent twice), and the metric counts it.
func TestProxyReplayBudget(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	cfg := newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}, func(c *agent.Config) {
		c.Proxy = &agent.ProxyConfig{Listen: "127.0.0.1:0", APIURL: srv.URL(), DataURL: srv.DataURL()}
	})
	a, err := agent.New(cfg, agent.Options{Clock: srv.Now, SendBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	// Each budget gets a server of its own, started after the budget is
	// set (no handler of the old one reads it again).
	var ps *httptest.Server
	budget := func(n int) {
		if ps != nil {
			ps.Close()
		}
		agent.SetReplayBudget(a, int64(n))
		ps = httptest.NewServer(a.ProxyHandler())
	}
	t.Cleanup(func() { ps.Close() })
	budget(len(pushBody) - 1)
	send := func(key string) *http.Response {
		req, _ := http.NewRequest("POST", ps.URL+"/v2/bot/message/push", strings.NewReader(pushBody))
		req.Header.Set("Authorization", bearer)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Line-Retry-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	key := uuid.NewString()
	srv.InjectFault(1, oauthtest.Fault{RetryKey: key, Status: 500, Body: `{"message":"Internal Server Error"}`})
	if resp := send(key); resp.StatusCode != 500 || srv.SendAttempts(ch.ID, key) != 1 {
		t.Errorf("a push past the replay budget after a 500: %d after %d attempts, want the 500 after 1", resp.StatusCode, srv.SendAttempts(ch.ID, key))
	}
	if resp := send(uuid.NewString()); resp.StatusCode != 200 {
		t.Errorf("a streamed push: %d, want 200", resp.StatusCode)
	}
	ms := httptest.NewServer(a) // the token API, for /metrics
	t.Cleanup(ms.Close)
	m := &running{t: t, a: a, base: ms.URL, http: ms.Client()}
	if got := m.metric("linetoken_proxy_unreplayable_total", labels("channel", ch.ID, "kind", "v2.1")); got != 2 {
		t.Errorf("linetoken_proxy_unreplayable_total %v, want 2", got)
	}
	// Within the budget, the same fault is retried, again and again: each
	// request gives back what it kept.
	budget(len(pushBody))
	for range 3 {
		key = uuid.NewString()
		srv.InjectFault(1, oauthtest.Fault{RetryKey: key, Status: 500, Body: `{"message":"Internal Server Error"}`})
		if resp := send(key); resp.StatusCode != 200 || srv.SendAttempts(ch.ID, key) != 2 {
			t.Errorf("a push within the budget after a 500: %d after %d attempts, want 200 after 2", resp.StatusCode, srv.SendAttempts(ch.ID, key))
		}
	}
	if got := m.metric("linetoken_proxy_unreplayable_total", labels("channel", ch.ID, "kind", "v2.1")); got != 2 {
		t.Errorf("linetoken_proxy_unreplayable_total %v after pushes within the budget, want still 2", got)
	}
}

// TestProxy401ElsewhereUnverifiable: outside the Messaging API, a 401 drops
// the token only when LINE's verify refuses it: not when verify cannot be
// answered (LINE down), and never for a stateless token (which cannot be
// verified).
func TestProxy401ElsewhereUnverifiable(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	r := startProxy(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21), chanCfg(ch, oauth.KindStateless)})
	const path = "/v2/profile"
	unauthorized := oauthtest.Fault{Path: path, Status: http.StatusUnauthorized, Body: `{"message":"invalid token"}`}
	// Both kinds hold their token before anything is counted: a keeper
	// still issuing its first would look like a drop.
	r.token(ch.ID, "?kind=v2.1")
	r.token(ch.ID, "?kind=stateless")
	for _, kind := range []string{"v2.1", "stateless"} {
		old := r.token(ch.ID, "?kind="+kind).AccessToken
		issued := srv.Stats().Issued
		srv.InjectFault(1, unauthorized)
		if kind == "v2.1" {
			srv.InjectFault(1, oauthtest.Fault{Path: "/oauth2/v2.1/verify", Status: 503, Body: `{"message":"unavailable"}`})
		}
		if rep := r.via("GET", path, "", "Authorization", "Bearer linetoken:"+ch.ID+":"+kind); rep.status != http.StatusUnauthorized {
			t.Errorf("%s: %d %s, want the 401 passed", kind, rep.status, rep.body)
		}
		if got := r.token(ch.ID, "?kind="+kind).AccessToken; got != old || srv.Stats().Issued[oauthtest.KindStateless] != issued[oauthtest.KindStateless] ||
			srv.Stats().Issued[oauthtest.KindV21] != issued[oauthtest.KindV21] {
			t.Errorf("%s: the token was dropped on an unverified 401", kind)
		}
		if n := srv.PendingFaults(); n != 0 {
			t.Errorf("%s: %d faults never applied (the 401, or the verify LINE could not answer)", kind, n)
		}
		srv.Advance(10 * time.Second) // past the 5 s between two verifies
	}
}
