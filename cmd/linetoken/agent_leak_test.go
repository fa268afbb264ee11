package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/linetoken/linetoken/internal/testredis"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// tokenRecorder is LINE's API for the agents of the leak audit: the fake,
// behind a handler that keeps every access token the fake answers, so
// that tokens no caller was shown are looked for too.
type tokenRecorder struct {
	srv    *oauthtest.Server
	mu     sync.Mutex
	tokens map[string]bool
}

// teeWriter keeps a copy of what is written to an answer.
type teeWriter struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	return w.ResponseWriter.Write(b)
}

func (rc *tokenRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tw := &teeWriter{ResponseWriter: w}
	rc.srv.ServeHTTP(tw, r)
	var v struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(tw.buf.Bytes(), &v) == nil && v.AccessToken != "" {
		rc.mu.Lock()
		rc.tokens[v.AccessToken] = true
		rc.mu.Unlock()
	}
}

// leakScan collects what the agents showed: forbidden texts may hold no
// secret and no access token (stdout, stderr, metrics, error and health
// bodies); tokenOK texts (token answers, sink files) may hold the token
// they carry, and no secret.
type leakScan struct {
	forbidden, tokenOK map[string]string
}

func (s *leakScan) add(forbidden bool, where string, b []byte) {
	m := s.tokenOK
	if forbidden {
		m = s.forbidden
	}
	where = fmt.Sprintf("%s #%d", where, len(s.forbidden)+len(s.tokenOK))
	m[where] = string(b)
}

// jwtShaped matches a JWS (a v2.1 token, an assertion) anywhere.
var jwtShaped = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)

// TestAgentNoSecretPrinted is the leak audit of `linetoken agent`, run as
// a process. It plants a channel secret, a private key, two caller keys and
// a Redis password (redis-server with requirepass), runs the agent with
// the multi-channel config in both log formats at debug level (the access
// log included), and drives every route and error code, an invalidation
// with its rotation, an invalidation refused by the 30 s limit and one
// LINE answers valid; then token_unavailable for each cause (500s, HTML
// 502s, 429 with Retry-After, LINE unreachable, Redis unreachable), and
// runs that exit 1 and 2 with secrets in the wrong places. The channel
// secret, the private key's members, every assertion sent to LINE, the
// caller keys and the Redis password (each whole and by halves) appear in
// nothing the agents printed or answered and in no sink; an access token
// appears only in token answers and sink files: every token the fake
// handed out is looked for in stdout, stderr, /metrics, /readyz and error
// bodies. TESTING.md's CLI leak audit command runs it (see
// TestLeakAuditCommandRunsTheAudit).
func TestAgentNoSecretPrinted(t *testing.T) {
	w := newAgentWorld(t)
	rec := &tokenRecorder{srv: w.srv, tokens: map[string]bool{}}
	front := httptest.NewServer(rec)
	defer front.Close()
	w.baseURL = front.URL
	env := with(w.env, oauth.EnvBaseURL, front.URL)
	scan := &leakScan{forbidden: map[string]string{}, tokenOK: map[string]string{}}

	r := testredis.Start(t)
	pw := "rpw-" + rand.Text()
	if err := r.Client(t).ConfigSet(context.Background(), "requirepass", pw).Err(); err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: pw})
	defer rc.Close()
	pwFile := w.file(t, "redis-password", pw+"\n")

	for _, format := range []string{"text", "json"} {
		if err := rc.FlushAll(context.Background()).Err(); err != nil { // each run issues its own tokens
			t.Fatal(err)
		}
		leakMainRun(t, w, format, fmt.Sprintf("log_format: %s\nstore:\n  redis: redis://%s/0\n  password_file: %s\n", format, r.Addr(), pwFile), scan)
	}

	// token_unavailable, each cause, one channel from the environment.
	for i, c := range []struct {
		name, cause, retryAfter string
		fault                   func()
		env                     map[string]string
		args                    []string
	}{
		{name: "LINE 500s", cause: "line_unreachable", fault: func() { w.srv.FailNext(1000, 500, `{"message":"Internal Server Error"}`) }},
		{name: "LINE HTML 502s", cause: "line_unreachable", fault: func() { w.srv.HTMLNext(1000, 502) }},
		{name: "LINE 429s", cause: "line_refused", retryAfter: "7", fault: func() {
			w.srv.InjectFault(1000, oauthtest.Fault{Status: 429, Body: `{"message":"Too many requests"}`, Header: http.Header{"Retry-After": {"7"}}})
		}},
		{name: "LINE unreachable", cause: "line_unreachable", env: with(env, oauth.EnvBaseURL, closedPortURL(t))},
		{name: "Redis unreachable", cause: "store_unavailable", env: with(env, envRedisPassword, pw),
			args: []string{"--redis", "redis://" + strings.TrimPrefix(closedPortURL(t), "http://") + "/0"}},
	} {
		format := []string{"text", "json"}[i%2]
		if c.fault != nil {
			c.fault()
		}
		e := c.env
		if e == nil {
			e = env
		}
		p := startAgent(t, 1, e, append([]string{"--listen", "127.0.0.1:0", "--log-level", "debug", "--log-format", format}, c.args...)...)
		resp, b := p.do(p.client, p.base, req{path: tokenPath(w.ch.ID, ""), header: v1("")})
		var ae apiErrorBody
		_ = json.Unmarshal(b, &ae)
		if resp.StatusCode != http.StatusServiceUnavailable || ae.Error != "token_unavailable" || ae.Cause != c.cause ||
			resp.Header.Get("Retry-After") == "" || c.retryAfter != "" && resp.Header.Get("Retry-After") != c.retryAfter {
			t.Errorf("%s: %d %s, Retry-After %q: want 503 token_unavailable, cause %s, Retry-After %q",
				c.name, resp.StatusCode, b, resp.Header.Get("Retry-After"), c.cause, c.retryAfter)
		}
		scan.add(true, c.name+": token_unavailable", b)
		_, rb := p.get(p.client, p.base, "/readyz", nil)
		scan.add(true, c.name+": readyz", rb)
		_, mb := p.get(p.client, p.base, "/metrics", nil)
		scan.add(true, c.name+": metrics", mb)
		if code, _ := p.stop(syscall.SIGTERM); code != exitOK {
			t.Errorf("%s: exit %d after SIGTERM, want 0\n%s", c.name, code, p.output())
		}
		w.srv.ClearFaults()
		scan.add(true, c.name+": stdout", []byte(p.stdout.String()))
		scan.add(true, c.name+": stderr", []byte(p.stderr.String()))
	}

	// Runs that exit, with secrets in the wrong places.
	jwk := string(w.ch.PrivateJWK)
	channel := fmt.Sprintf("channels:\n  - id: \"%s\"\n    key_id: %s\n", w.ch.ID, w.ch.KeyID)
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		code int
	}{
		{"key ID unregistered", with(env, oauth.EnvKeyID, "unregistered"), nil, exitAPI},
		{"wrong secret, short-lived", with(env, oauth.EnvChannelSecret, strings.Repeat("0", 32)), []string{"--type", "short-lived"}, exitAPI},
		{"private key in the key file variable", with(env, oauth.EnvPrivateKeyFile, jwk), nil, exitUsage},
		{"password inside --redis", env, []string{"--redis", "redis://:" + pw + "@" + r.Addr() + "/0"}, exitUsage},
		{"inline secret", nil, []string{"--config", w.file(t, "x1.yaml", channel+"    secret: "+w.ch.Secret+"\n    private_key_file: "+w.keyFile+"\n")}, exitUsage},
		{"inline private key", nil, []string{"--config", w.file(t, "x2.yaml", channel+"    secret_file: "+w.secretFile+"\n    private_key: '"+jwk+"'\n")}, exitUsage},
		{"secret as the secret file's path", nil, []string{"--config", w.file(t, "x3.yaml", channel+"    secret_file: "+w.ch.Secret+"\n    private_key_file: "+w.keyFile+"\n")}, exitUsage},
		{"key as the key file's path", nil, []string{"--config", w.file(t, "x4.yaml", channel+"    secret_file: "+w.secretFile+"\n    private_key_file: '"+jwk+"'\n")}, exitUsage},
		{"inline caller key", nil, []string{"--config", w.file(t, "x5.yaml", "callers:\n  - name: bot\n    key: "+w.allKey+"\n"+channel+"    secret_file: "+w.secretFile+"\n    private_key_file: "+w.keyFile+"\n")}, exitUsage},
		{"inline Redis password", nil, []string{"--config", w.file(t, "x6.yaml", "store:\n  redis: redis://"+r.Addr()+"/0\n  password: "+pw+"\n"+channel+"    secret_file: "+w.secretFile+"\n    private_key_file: "+w.keyFile+"\n")}, exitUsage},
		{"Redis password in the URL", nil, []string{"--config", w.file(t, "x7.yaml", "store:\n  redis: redis://:"+pw+"@"+r.Addr()+"/0\n"+channel+"    secret_file: "+w.secretFile+"\n    private_key_file: "+w.keyFile+"\n")}, exitUsage},
		{"caller key as its file's path", nil, []string{"--config", w.file(t, "x8.yaml", "callers:\n  - name: bot\n    key_file: "+w.allKey+"\n"+channel+"    secret_file: "+w.secretFile+"\n    private_key_file: "+w.keyFile+"\n")}, exitUsage},
	} {
		args := c.args
		if c.env != nil {
			args = append([]string{"--listen", "127.0.0.1:0", "--log-level", "debug"}, args...)
		}
		res := runAgentToExit(t, c.env, args...)
		if res.code != c.code {
			t.Errorf("%s: exit %d, want %d", c.name, res.code, c.code)
		}
		scan.add(true, c.name+": output", []byte(res.stdout+res.stderr))
	}

	secrets, tokens, assertions := leakNeedles(t, w, rec, map[string]string{"Redis password": pw})
	// A vacuous pass is impossible: what was to be seen was seen.
	if assertions < 4 || len(tokens) < 8 || len(scan.forbidden) < 40 || len(scan.tokenOK) < 10 {
		t.Errorf("too little checked: %d assertions, %d tokens, %d forbidden texts, %d token texts",
			assertions, len(tokens), len(scan.forbidden), len(scan.tokenOK))
	}
	scan.check(t, secrets, tokens)
}

// leakNeedles is what the agents of w must never show: w's channel
// secrets, private key (whole and its members), caller keys, extra, and
// every assertion sent to LINE (whole and its signature), each long one
// also by halves; and every access token the fake handed out (to rec's
// answers), was asked about, or was sent as a Bearer token. assertions
// counts the assertions.
func leakNeedles(t *testing.T, w *agentWorld, rec *tokenRecorder, extra map[string]string) (secrets map[string]string, tokens map[string]bool, assertions int) {
	t.Helper()
	secrets = map[string]string{
		"channel secret": w.ch.Secret, "channel two's secret": w.twoSecret, "private JWK": string(w.ch.PrivateJWK),
		"caller key all-bot": w.allKey, "caller key second-bot": w.secondKey,
	}
	for name, v := range extra {
		secrets[name] = v
	}
	for name, v := range privateMembers(t, w.ch.PrivateJWK) {
		secrets[name] = v
	}
	for name, v := range secrets {
		if len(v) >= 16 {
			secrets[name+", first half"] = v[:len(v)/2]
			secrets[name+", second half"] = v[len(v)/2:]
		}
	}
	seen, tokens := map[string]bool{}, map[string]bool{}
	for _, rq := range w.srv.Requests() {
		for _, vals := range []map[string][]string{rq.Form, rq.Query} { // POST forms, GET queries
			for _, a := range vals["client_assertion"] {
				seen[a] = true
			}
			for _, tok := range vals["access_token"] {
				tokens[tok] = true
			}
		}
		if tok, ok := strings.CutPrefix(rq.Header.Get("Authorization"), "Bearer "); ok {
			tokens[tok] = true
		}
	}
	i := 0
	for a := range seen {
		secrets[fmt.Sprint("assertion ", i)] = a
		secrets[fmt.Sprint("assertion signature ", i)] = a[strings.LastIndexByte(a, '.')+1:]
		i++
	}
	rec.mu.Lock()
	for tok := range rec.tokens {
		tokens[tok] = true
	}
	rec.mu.Unlock()
	return secrets, tokens, len(seen)
}

// check fails t for an access token (or anything JWT-shaped) in a
// forbidden text, and for a secret in any text.
func (s *leakScan) check(t *testing.T, secrets map[string]string, tokens map[string]bool) {
	t.Helper()
	for where, text := range s.forbidden {
		for tok := range tokens {
			if strings.Contains(text, tok) {
				t.Errorf("an access token appears in %s", where)
			}
		}
		if jwtShaped.MatchString(text) {
			t.Errorf("something JWT-shaped appears in %s", where)
		}
	}
	for _, m := range []map[string]string{s.forbidden, s.tokenOK} {
		for where, text := range m {
			for name, v := range secrets {
				if strings.Contains(text, v) {
					t.Errorf("the %s appears in %s", name, where)
				}
			}
		}
	}
	t.Logf("%d forbidden texts and %d token texts checked for %d secrets and %d access tokens",
		len(s.forbidden), len(s.tokenOK), len(secrets), len(tokens))
}

// leakMainRun runs the multi-channel agent with top added to its config
// (log format, store) and sinks for channel one, drives every route and
// error, an invalidation and its rotation, an invalidation refused by the
// limit and one LINE answers valid, and adds what it saw to scan.
func leakMainRun(t *testing.T, w *agentWorld, format, top string, scan *leakScan) {
	t.Helper()
	sinkDir := t.TempDir()
	raw, js := filepath.Join(sinkDir, "one.token"), filepath.Join(sinkDir, "one.json")
	p := startAgent(t, 1, nil, "--config", w.config(t, top, fmt.Sprintf("      - path: %s\n      - path: %s\n        format: json\n", raw, js)))
	p.waitReady()
	for _, c := range w.apiCases(p.addrs[0]) {
		b := p.check(p.client, p.base, c)
		scan.add(c.code != http.StatusOK || !strings.Contains(c.req.path, "/token"), format+": "+c.name, b)
	}
	tokenBody := func(kind, key string) tokenAnswer {
		t.Helper()
		_, b := p.get(p.client, p.base, tokenPath(w.ch.ID, kind), v1(key))
		scan.add(false, format+": token "+kind, b)
		return checkTokenJSON(t, b, w.ch.ID, kind, w.srv)
	}
	tok := tokenBody("v2.1", w.allKey)
	short := tokenBody("short-lived", w.allKey)

	// Requests that carry the current token where it does not belong: the
	// answers must not echo it.
	tb, _ := json.Marshal(map[string]string{"access_token": tok.AccessToken})
	for i, rq := range []req{
		{method: "POST", path: "/v1/channels/" + w.ch.ID + "/token/invalidate", header: v1(w.allKey), body: string(tb)},                  // ambiguous
		{method: "POST", path: "/v1/channels/" + w.ch.ID + "/token/invalidate?kind=v2.1", header: v1(w.secondKey), body: string(tb)},     // not allowed
		{method: "POST", path: "/v1/channels/" + w.ch.ID + "/token/invalidate?kind=v2.1", header: v1(tok.AccessToken), body: string(tb)}, // a token as the key
		{method: "POST", path: "/v1/channels/999/token/invalidate", header: v1(w.allKey), body: string(tb)},
		{method: "POST", path: "/v1/channels/" + w.ch.ID + "/token/invalidate?kind=v2.1", header: v1(w.allKey), body: string(tb) + strings.Repeat(" ", 5000)},
		{path: "/v1/channels/" + w.ch.ID + "/token?kind=" + tok.AccessToken, header: v1(w.allKey)},
		{path: "/v1/" + tok.AccessToken, header: v1(w.allKey)},
	} {
		resp, b := p.do(p.client, p.base, rq)
		if resp.StatusCode < 400 {
			t.Errorf("%s: misplaced-token request %d answered %d", format, i, resp.StatusCode)
		}
		scan.add(true, fmt.Sprintf("%s: misplaced-token request %d", format, i), b)
	}

	// An invalidation LINE confirms (the token revoked), its rotation, then
	// one refused by the 30 s limit, and one of a token LINE says is valid.
	rotateByInvalidation(t, p, w, tok.AccessToken, raw)
	tok2 := tokenBody("v2.1", w.allKey)
	invalidate(t, p, w.ch.ID, "v2.1", w.allKey, tok2.AccessToken)
	invalidate(t, p, w.ch.ID, "short-lived", w.allKey, short.AccessToken)
	if again := tokenBody("v2.1", w.allKey); again.AccessToken != tok2.AccessToken {
		t.Errorf("%s: a second invalidation within 30 s rotated the token", format)
	}
	for _, path := range []string{raw, js} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		scan.add(false, format+": sink "+filepath.Base(path), b)
	}
	for _, path := range []string{"/metrics", "/readyz", "/healthz"} {
		_, b := p.get(p.client, p.base, path, nil)
		scan.add(true, format+": "+path, b)
	}
	if code, _ := p.stop(syscall.SIGTERM); code != exitOK {
		t.Errorf("%s: exit %d after SIGTERM\n%s", format, code, p.output())
	}
	stderr := p.stderr.String()
	level := map[string]string{"text": "level=DEBUG", "json": `"level":"DEBUG"`}[format]
	for _, want := range []string{level, "all-bot", "second-bot", "agent: token dropped", "agent: invalidation ignored", "says it is valid"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("%s: stderr lacks %q: the audit did not see what it drives", format, want)
		}
	}
	scan.add(true, format+": stdout", []byte(p.stdout.String()))
	scan.add(true, format+": stderr", []byte(stderr))
}

// TestAgentProxyNoSecretPrinted is the leak audit of the agent's LINE API
// endpoint, run as a process: the multi-channel config with caller keys
// and the proxy, at debug level (the proxy's access log), in both log
// formats. Through the proxy go pushes (the caller key in the placeholder
// and in X-Linetoken-Key), a push whose first attempt the fake accepts
// then answers 500 (retried, its 409 answered as success), a GET retried
// after a 503, a 401 healed after the fake revoked the current token,
// LINE's own 400, and refused requests that carry secrets where they do
// not belong: the real token as the Bearer token, as a caller key and in
// X-Linetoken-Key, wrong and foreign caller keys, the channel secret in a
// form to LINE's token endpoint. No access token appears in any answer
// the clients got (bodies and headers), nor in stdout or stderr; no
// secret, caller key or assertion appears anywhere.
func TestAgentProxyNoSecretPrinted(t *testing.T) {
	w := newAgentWorld(t)
	rec := &tokenRecorder{srv: w.srv, tokens: map[string]bool{}}
	front := httptest.NewServer(rec) // plays both LINE hosts: the proxy's upstream is base_url
	defer front.Close()
	w.baseURL = front.URL
	scan := &leakScan{forbidden: map[string]string{}, tokenOK: map[string]string{}}
	for _, format := range []string{"text", "json"} {
		leakProxyRun(t, w, format, scan)
	}
	secrets, tokens, assertions := leakNeedles(t, w, rec, nil)
	if assertions < 2 || len(tokens) < 4 || len(scan.forbidden) < 40 {
		t.Errorf("too little checked: %d assertions, %d tokens, %d forbidden texts", assertions, len(tokens), len(scan.forbidden))
	}
	scan.check(t, secrets, tokens)
}

// leakProxyRun runs the multi-channel agent with its proxy in format,
// drives what TestAgentProxyNoSecretPrinted lists through it, and adds
// every answer and the agent's output to scan.
func leakProxyRun(t *testing.T, w *agentWorld, format string, scan *leakScan) {
	t.Helper()
	p := startAgent(t, 1, nil, "--config", w.config(t, "log_format: "+format+"\nproxy:\n  listen: 127.0.0.1:0\n", ""))
	proxy := p.proxyBase()
	p.waitReady()
	one := "linetoken:" + w.ch.ID + ":v2.1"
	send := func(what string, r req) (*http.Response, []byte) {
		t.Helper()
		resp, b := p.do(p.client, proxy, r)
		var hdr bytes.Buffer
		_ = resp.Header.Write(&hdr)
		scan.add(true, format+": "+what, append(hdr.Bytes(), b...))
		return resp, b
	}
	// lastToken is the token the proxy last sent to the fake.
	lastToken := func() string {
		t.Helper()
		rs := w.srv.Requests()
		for i := len(rs) - 1; i >= 0; i-- {
			if tok, ok := strings.CutPrefix(rs[i].Header.Get("Authorization"), "Bearer "); ok && strings.HasPrefix(rs[i].Path, "/v2/bot/") {
				return tok
			}
		}
		t.Fatal("the fake saw no Bearer token")
		return ""
	}

	resp, b := send("push, key in the placeholder", pushReq(bearer(one+"/"+w.allKey)))
	checkPushed(t, format+": push, key in the placeholder", resp, b)
	resp, b = send("push, key in the header", pushReq(bearer(one, "X-Linetoken-Key", w.allKey)))
	checkPushed(t, format+": push, key in the header", resp, b)
	tok := lastToken()

	// Retries: a send accepted then answered 500, a GET answered 503.
	w.srv.FaultSends(func(_ string, n int) (oauthtest.Fault, bool) {
		return oauthtest.Fault{Status: http.StatusInternalServerError, Body: `{"message":"Internal Server Error"}`, AfterAccept: true}, n == 1
	})
	resp, b = send("push accepted then 500", pushReq(bearer(one+"/"+w.allKey)))
	checkPushed(t, format+": push accepted then 500", resp, b)
	if resp.Header.Get("X-Line-Accepted-Request-Id") == "" {
		t.Errorf("%s: the push after an accepted 500 was not answered from LINE's 409", format)
	}
	w.srv.FaultSends(nil)
	w.srv.InjectFault(1, oauthtest.Fault{Path: "/v2/bot/info", Status: http.StatusServiceUnavailable, Body: `{"message":"busy"}`})
	if resp, b := send("bot info after a 503", req{path: "/v2/bot/info", header: bearer(one + "/" + w.allKey)}); resp.StatusCode != http.StatusOK {
		t.Errorf("%s: GET /v2/bot/info after a 503: %d %s", format, resp.StatusCode, b)
	}

	// A 401 healed: the fake revokes the token the proxy uses.
	if err := w.srv.Client(t, w.ch.ID).RevokeToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	resp, b = send("push after a revocation", pushReq(bearer(one+"/"+w.allKey)))
	checkPushed(t, format+": push after a revocation", resp, b)
	if healed := lastToken(); healed == tok {
		t.Errorf("%s: the push after a revocation was not sent with a new token", format)
	}
	resp, b = send("LINE's 400", req{method: http.MethodPost, path: "/v2/bot/message/push", header: bearer(one+"/"+w.allKey, "Content-Type", "application/json"),
		body: `{"to":"` + testUserID + `","messages":[]}`})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"details"`) {
		t.Errorf("%s: LINE's 400 did not pass through: %d %s", format, resp.StatusCode, b)
	}

	// Refused, with secrets where they do not belong.
	tok = lastToken()
	for _, c := range []apiCase{
		{name: "the real token as the Bearer token", req: req{path: "/v2/bot/info", header: bearer(tok)}, code: 401, err: "missing_placeholder"},
		{name: "the real token as the caller key", req: req{path: "/v2/bot/info", header: bearer("linetoken/" + tok)}, code: 401, err: "missing_placeholder"},
		{name: "the real token in X-Linetoken-Key", req: req{path: "/v2/bot/info", header: bearer(one, "X-Linetoken-Key", tok)}, code: 401, err: "invalid_caller_key"},
		{name: "a wrong caller key", req: req{path: "/v2/bot/info", header: bearer(one + "/" + w.allKey + "x")}, code: 401, err: "invalid_caller_key"},
		{name: "two different caller keys", req: req{path: "/v2/bot/info", header: bearer(one+"/"+w.allKey, "X-Linetoken-Key", w.secondKey)}, code: 401, err: "invalid_caller_key"},
		{name: "another channel's caller key", req: req{path: "/v2/bot/info", header: bearer(one + "/" + w.secondKey)}, code: 403, err: "channel_not_allowed"},
		{name: "no channel named", req: req{path: "/v2/bot/info", header: bearer("linetoken/" + w.allKey)}, code: 400, err: "ambiguous_channel"},
		{name: "no kind named", req: req{path: "/v2/bot/info", header: bearer("linetoken:" + w.ch.ID + "/" + w.allKey)}, code: 400, err: "ambiguous_kind"},
		{name: "foreign Host", req: req{path: "/v2/bot/info", host: "api.line.me", header: bearer(one + "/" + w.allKey)}, code: 403, err: "bad_host"},
		{name: "token endpoint with the secret", req: req{method: http.MethodPost, path: "/v2/oauth/accessToken?client_secret=" + w.ch.Secret,
			header: bearer(one+"/"+w.allKey, "Content-Type", "application/x-www-form-urlencoded"),
			body:   "grant_type=client_credentials&client_id=" + w.ch.ID + "&client_secret=" + w.ch.Secret}, code: 403, err: "token_endpoint_refused"},
	} {
		resp, b := send(c.name, c.req)
		c.name = format + ": " + c.name
		checkAnswer(t, c, resp, b)
	}
	for _, path := range []string{"/metrics", "/readyz"} {
		_, b := p.get(p.client, p.base, path, nil)
		scan.add(true, format+": "+path, b)
	}
	p.stopClean(syscall.SIGTERM)
	stderr := p.stderr.String()
	level := map[string]string{"text": "level=DEBUG", "json": `"level":"DEBUG"`}[format]
	for _, want := range []string{level, "agent: proxy request", "all-bot", "agent: proxy: retrying", "an earlier attempt of this send was accepted",
		"token dropped after LINE answered 401"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("%s: stderr lacks %q: the audit did not see what it drives", format, want)
		}
	}
	scan.add(true, format+": stdout", []byte(p.stdout.String()))
	scan.add(true, format+": stderr", []byte(stderr))
}
