package main

// End-to-end tests of the agent's LINE API endpoint (the proxy): the
// built binary as a separate process, driven over HTTP, against the fake
// LINE in the test process (or --dev's own).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/prism"
	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// testUserID is a push target: the fake takes any user ID.
const testUserID = "U0123456789abcdef0123456789abcdef"

// probeHeader marks a test's requests, so the fake's log tells which of
// them reached it (the proxy forwards every header but its own).
const probeHeader = "X-Test-Probe"

// proxyBase waits for the proxy's "LINE API endpoint on" line and returns
// http://ADDR.
func (p *agentProc) proxyBase() string {
	p.t.Helper()
	var addr string
	testkit.Eventually(p.t, agentStartLimit, "the agent printing its LINE API endpoint", func() bool {
		for _, line := range strings.Split(p.stdout.String(), "\n") {
			if a, ok := strings.CutPrefix(line, proxyListeningPrefix); ok {
				addr = a
			}
		}
		return addr != "" || p.exited()
	})
	if addr == "" {
		p.t.Fatalf("the agent printed no LINE API endpoint\n%s", p.output())
	}
	return "http://" + addr
}

// bearer is the header of a proxied request with placeholder ph and more
// header lines (name, value, ...).
func bearer(ph string, kv ...string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + ph}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return h
}

// pushReq is a push of one text message through the proxy.
func pushReq(header map[string]string) req {
	header["Content-Type"] = "application/json"
	return req{method: http.MethodPost, path: "/v2/bot/message/push", header: header,
		body: `{"to":"` + testUserID + `","messages":[{"type":"text","text":"hello"}]}`}
}

// pushAnswer is a push's 200 body.
type pushAnswer struct {
	SentMessages []oauthtest.SentMessage `json:"sentMessages"`
}

// checkPushed fails t unless resp and b are a push's 200 with one sent
// message.
func checkPushed(t *testing.T, what string, resp *http.Response, b []byte) {
	t.Helper()
	var pa pushAnswer
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &pa) != nil || len(pa.SentMessages) != 1 || pa.SentMessages[0].ID == "" {
		t.Fatalf("%s: %d %s, want 200 with one sentMessages entry", what, resp.StatusCode, b)
	}
}

var (
	devProxyCurlRE = regexp.MustCompile(`(?m)^\s*curl -s -X POST (http://\S+/v2/bot/message/push) -H '(Authorization): ([^']*)' -H '(Content-Type): ([^']*)' -d '([^']*)'$`)
	devNodeRE      = regexp.MustCompile(`new messagingApi\.MessagingApiClient\(\{channelAccessToken: "linetoken", baseURL: "([^"]+)"\}\)`)
	devPythonRE    = regexp.MustCompile(`Configuration\(host="([^"]+)", access_token="linetoken"\)`)
	devSendLogRE   = regexp.MustCompile(`the fake LINE accepted a send" channel=(\d+) path=/v2/bot/message/push retry_key=[0-9a-f-]{36} request_id=[0-9a-f]{32}`)
)

// TestAgentDevProxy: `linetoken agent --dev` runs the proxy against its
// fake: the printed curl command pushes (200 with sentMessages), the Node
// and Python snippets name the proxy's address with the placeholder, a
// GET /v2/bot/info through it answers the channel's bot, and the fake's
// accepted send is logged on stderr (channel, path, retry key, request
// ID) with no token.
func TestAgentDevProxy(t *testing.T) {
	p := startAgent(t, 1, nil, "--dev", "--listen", "127.0.0.1:0", "--proxy-listen", "127.0.0.1:0")
	proxy := p.proxyBase()
	testkit.Eventually(t, agentStartLimit, "the --dev proxy snippet printed", func() bool {
		return p.exited() || strings.Contains(p.stdout.String(), "the fake LINE accepted a send")
	})
	out := p.stdout.String()
	curl, node, py, tokenCurl := devProxyCurlRE.FindStringSubmatch(out), devNodeRE.FindStringSubmatch(out), devPythonRE.FindStringSubmatch(out), devCurlRE.FindStringSubmatch(out)
	if curl == nil || node == nil || py == nil || tokenCurl == nil {
		t.Fatalf("--dev printed no push curl command, Node or Python snippet, or token command\n%s", p.output())
	}
	if node[1] != proxy || py[1] != proxy || !strings.HasPrefix(curl[1], proxy+"/") {
		t.Errorf("the snippets name %s, %s and %s, not the proxy %s", curl[1], node[1], py[1], proxy)
	}
	if !strings.Contains(out, `push_message(PushMessageRequest(to="`+devUserID+`"`) || !strings.Contains(out, `client.pushMessage({to: "`+devUserID+`"`) {
		t.Errorf("the Node and Python snippets do not push to %s\n%s", devUserID, out)
	}
	channel := tokenCurl[4]
	p.waitReady()

	// The printed curl command, sent as it is.
	resp, b := p.do(p.client, curl[1], req{method: http.MethodPost, header: map[string]string{curl[2]: curl[3], curl[4]: curl[5]}, body: curl[6]})
	checkPushed(t, "the printed curl command", resp, b)

	code, b := p.get(p.client, proxy, "/v2/bot/info", bearer("linetoken"))
	var bot oauthtest.Bot
	if code != http.StatusOK || json.Unmarshal(b, &bot) != nil || bot != oauthtest.BotFor(channel) {
		t.Errorf("GET /v2/bot/info through the proxy: %d %s, want channel %s's bot", code, b, channel)
	}

	// The printed Node snippet, run as it is with LINE's Node SDK: a
	// second push through the proxy.
	runDevNodeSnippet(t, out)
	checkDevPythonSnippet(t, out)

	var logged []string
	testkit.Eventually(t, agentStartLimit, "both accepted sends logged on stderr", func() bool {
		all := devSendLogRE.FindAllStringSubmatch(p.stderr.String(), -1)
		if len(all) > 0 {
			logged = all[0]
		}
		return len(all) == 2
	})
	if logged[1] != channel {
		t.Errorf("the send was logged for channel %s, want %s", logged[1], channel)
	}
	_, b = p.get(p.client, p.base, tokenPath(channel, ""), v1(""))
	var tok tokenAnswer
	if err := json.Unmarshal(b, &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("no token from the token API: %s", b)
	}
	p.stopClean(os.Interrupt)
	if strings.Contains(p.stdout.String()+p.stderr.String(), tok.AccessToken) {
		t.Error("--dev printed the access token")
	}
}

// runDevNodeSnippet runs the Node lines --dev printed (out) with node,
// @line/bot-sdk resolved from contract/node_modules; the push must print
// LINE's sentMessages.
func runDevNodeSnippet(t *testing.T, out string) {
	t.Helper()
	node := prism.Node(t)
	sdk := prism.Package(t, filepath.Join("..", ".."), "@line/bot-sdk")
	_, rest, ok := strings.Cut(out, "Node (@line/bot-sdk):\n")
	snippet, _, ok2 := strings.Cut(rest, "Python (line-bot-sdk v3):")
	if !ok || !ok2 {
		t.Fatalf("no Node snippet in --dev's output\n%s", out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), agentStartLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "-e", snippet)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Dir(filepath.Dir(sdk)))
	got, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(got), "sentMessages") {
		t.Errorf("the printed Node snippet: %v\n%s\nsnippet:\n%s", err, got, snippet)
	}
}

// checkDevPythonSnippet parses the Python lines --dev printed (out) with
// python3's own parser: line-bot-sdk cannot be installed offline, so the
// snippet is checked for syntax (and its names against the SDK's by
// reading, in review), not run.
func checkDevPythonSnippet(t *testing.T, out string) {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		prism.Unavailable(t, "python3 is not on PATH")
	}
	_, rest, ok := strings.Cut(out, "Python (line-bot-sdk v3):\n")
	snippet, _, ok2 := strings.Cut(rest, "The fake accepts")
	if !ok || !ok2 {
		t.Fatalf("no Python snippet in --dev's output\n%s", out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(snippet, "\n"), "\n") {
		lines = append(lines, strings.TrimPrefix(l, "  "))
	}
	cmd := exec.CommandContext(t.Context(), python, "-c", "import ast, sys; ast.parse(sys.stdin.read())")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if got, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the printed Python snippet does not parse: %v\n%s\nsnippet:\n%s", err, got, strings.Join(lines, "\n"))
	}
}

// TestAgentProxyEnvMode: env mode's --proxy-listen. A push through the
// proxy is accepted once at the fake, under the channel, with a retry key
// the proxy added and the probe header passed through. Requests refused
// before anything is sent upstream (no placeholder, a real-looking token,
// a foreign Host, an Origin, LINE's token endpoints, a .. path, an unknown
// channel) answer the proxy's JSON errors, and none of them reaches the
// fake.
func TestAgentProxyEnvMode(t *testing.T) {
	f := newFixture(t)
	p := startAgent(t, 1, f.env, "--listen", "127.0.0.1:0", "--proxy-listen", "127.0.0.1:0")
	proxy := p.proxyBase()
	p.waitReady()

	resp, b := p.do(p.client, proxy, pushReq(bearer("linetoken", probeHeader, "push")))
	checkPushed(t, "push", resp, b)
	sends := f.srv.Sends()
	if len(sends) != 1 || sends[0].ChannelID != f.ch.ID || sends[0].Path != "/v2/bot/message/push" || len(sends[0].RetryKey) != 36 {
		t.Fatalf("the fake accepted %+v, want one push of channel %s with a retry key", sends, f.ch.ID)
	}

	_, port, _ := net.SplitHostPort(strings.TrimPrefix(proxy, "http://"))
	for i, c := range []apiCase{
		{name: "no Authorization", req: req{path: "/v2/bot/info"}, code: 401, err: "missing_placeholder"},
		{name: "a real-looking token", req: req{path: "/v2/bot/info", header: bearer("eyJhbGciOiJIUzI1NiJ9.e30.c2ln")}, code: 401, err: "missing_placeholder"},
		{name: "Basic auth", req: req{path: "/v2/bot/info", header: map[string]string{"Authorization": "Basic bGluZXRva2Vu"}}, code: 401, err: "missing_placeholder"},
		{name: "foreign Host", req: req{path: "/v2/bot/info", host: "api.line.me", header: bearer("linetoken")}, code: 403, err: "bad_host"},
		{name: "rebinding Host with the port", req: req{path: "/v2/bot/info", host: "rebound.example:" + port, header: bearer("linetoken")}, code: 403, err: "bad_host"},
		{name: "Origin", req: req{path: "/v2/bot/info", header: bearer("linetoken", "Origin", "http://127.0.0.1:"+port)}, code: 403, err: "bad_host"},
		{name: "v2 token endpoint", req: req{method: http.MethodPost, path: "/v2/oauth/accessToken", header: bearer("linetoken", "Content-Type", "application/x-www-form-urlencoded"),
			body: "grant_type=client_credentials&client_id=" + f.ch.ID + "&client_secret=" + f.ch.Secret}, code: 403, err: "token_endpoint_refused"},
		{name: "v2.1 token endpoint", req: req{method: http.MethodPost, path: "/oauth2/v2.1/token", header: bearer("linetoken")}, code: 403, err: "token_endpoint_refused"},
		{name: "dot-dot path", req: req{path: "/v2/bot/../../oauth2/v2.1/verify", header: bearer("linetoken")}, code: 400, err: "bad_path"},
		{name: "unknown channel", req: req{path: "/v2/bot/info", header: bearer("linetoken:999")}, code: 404, err: "unknown_channel"},
		{name: "kind the channel lacks", req: req{path: "/v2/bot/info", header: bearer("linetoken:" + f.ch.ID + ":stateless")}, code: 404, err: "unknown_channel"},
	} {
		if c.req.header == nil {
			c.req.header = map[string]string{}
		}
		c.req.header[probeHeader] = fmt.Sprint("refused-", i)
		resp, b := p.do(p.client, proxy, c.req)
		e := checkAnswer(t, c, resp, b)
		if c.err == "missing_placeholder" && !strings.Contains(e.Message, `"linetoken"`) {
			t.Errorf("%s: the message does not say how to configure the SDK: %s", c.name, e.Message)
		}
		if strings.Contains(string(b), f.ch.Secret) {
			t.Errorf("%s: the answer echoes the channel secret", c.name)
		}
	}

	// Only the push reached the fake (the probe header passes the proxy,
	// so the check can fail).
	pushed := 0
	for _, r := range f.srv.Requests() {
		switch v := r.Header.Get(probeHeader); {
		case v == "push":
			pushed++
		case v != "":
			t.Errorf("refused request %s reached the fake: %s %s", v, r.Method, r.Path)
		}
		if r.Path == "/v2/oauth/accessToken" {
			t.Errorf("the fake was asked for a short-lived token")
		}
	}
	if pushed != 1 {
		t.Errorf("the fake saw the push %d times, want 1", pushed)
	}
	p.stopClean(syscall.SIGTERM)
}

// proxyConfig writes a config file for f's channel (v2.1) with the proxy
// section proxyYAML (indented under proxy:, listen included) and returns
// its path.
func proxyConfig(t *testing.T, f *fixture, name, proxyYAML string) string {
	t.Helper()
	w := &agentWorld{fixture: f, dir: t.TempDir()}
	secret := w.file(t, "secret", f.ch.Secret)
	return w.file(t, name, fmt.Sprintf(`listen: 127.0.0.1:0
base_url: %s
channels:
  - id: "%s"
    secret_file: %s
    private_key_file: %s
    key_id: %s
proxy:
%s`, f.srv.URL(), f.ch.ID, secret, f.keyFile, f.ch.KeyID, proxyYAML))
}

// connectRecorder is an egress proxy that records each request line it
// gets and answers 502: nothing goes further.
type connectRecorder struct {
	ln    net.Listener
	mu    sync.Mutex
	lines []string
}

func newConnectRecorder(t *testing.T) *connectRecorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &connectRecorder{ln: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			r.mu.Lock()
			r.lines = append(r.lines, strings.TrimSpace(line))
			r.mu.Unlock()
			_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return r
}

func (r *connectRecorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// TestAgentProxyHonoursHTTPSProxy: the proxy's upstream client honours
// HTTPS_PROXY. With proxy.api_url https://api.line.me and HTTPS_PROXY
// pointing at a recorder in the test that answers 502 to everything, a
// GET /v2/bot/info through the agent's proxy gets 502
// upstream_unreachable, and the recorder saw CONNECT api.line.me:443 (no
// internet is touched). Tokens still come from the loopback fake, which
// Go never sends through a proxy.
func TestAgentProxyHonoursHTTPSProxy(t *testing.T) {
	f := newFixture(t)
	rec := newConnectRecorder(t)
	cfg := proxyConfig(t, f, "egress.yaml", "  listen: 127.0.0.1:0\n  api_url: https://api.line.me\n  send_retry:\n    attempts: 2\n")
	p := startAgent(t, 1, map[string]string{"HTTPS_PROXY": "http://" + rec.ln.Addr().String()}, "--config", cfg)
	proxy := p.proxyBase()
	p.waitReady()

	resp, b := p.do(p.client, proxy, req{path: "/v2/bot/info", header: bearer("linetoken")})
	checkAnswer(t, apiCase{name: "GET /v2/bot/info through an egress proxy that refuses", code: http.StatusBadGateway, err: "upstream_unreachable"}, resp, b)
	lines := rec.seen()
	if len(lines) == 0 {
		t.Fatal("the egress proxy saw nothing: HTTPS_PROXY was not honoured")
	}
	for _, l := range lines {
		if l != "CONNECT api.line.me:443 HTTP/1.1" {
			t.Errorf("the egress proxy saw %q, want CONNECT api.line.me:443", l)
		}
	}
	if n := f.srv.IssueCount(oauthtest.KindV21); n != 1 {
		t.Errorf("%d v2.1 issues at the loopback fake, want 1 (the token API is not proxied)", n)
	}
	p.stopClean(syscall.SIGTERM)
}

// TestAgentProxyUnusableHTTPSProxy: an HTTPS_PROXY Go cannot use fails
// every attempt before a connection is made; that is LINE being
// unreachable (502), not a token problem (the token API is loopback and
// not proxied, so the agent has its token).
func TestAgentProxyUnusableHTTPSProxy(t *testing.T) {
	f := newFixture(t)
	// api_url's host is under .invalid (RFC 2606): even a Go that tried
	// the connection could reach nothing.
	cfg := proxyConfig(t, f, "egress.yaml", "  listen: 127.0.0.1:0\n  api_url: https://api.line.invalid\n  send_retry:\n    attempts: 2\n")
	p := startAgent(t, 1, map[string]string{"HTTPS_PROXY": "http://%zz"}, "--config", cfg)
	proxy := p.proxyBase()
	p.waitReady()
	resp, b := p.do(p.client, proxy, req{path: "/v2/bot/info", header: bearer("linetoken")})
	checkAnswer(t, apiCase{name: "GET /v2/bot/info with an unusable HTTPS_PROXY", code: http.StatusBadGateway, err: "upstream_unreachable"}, resp, b)
	p.stopClean(syscall.SIGTERM)
}

// contentSize is the download in flight at SIGTERM: far more than the
// socket buffers hold, so the proxy's handler is still writing it.
const contentSize = 64 << 20

// TestAgentProxyDownloadInFlightAtSIGTERM: a content download (from the
// data host, proxy.data_url) is streaming through the proxy when SIGTERM
// arrives; the agent logs its shutdown, the download still completes
// whole and correct, and the agent then exits 0.
func TestAgentProxyDownloadInFlightAtSIGTERM(t *testing.T) {
	f := newFixture(t)
	cfg := proxyConfig(t, f, "data.yaml", fmt.Sprintf("  listen: 127.0.0.1:0\n  api_url: %s\n  data_url: %s\n", f.srv.URL(), f.srv.DataURL()))
	p := startAgent(t, 1, nil, "--config", cfg)
	proxy := p.proxyBase()
	p.waitReady()

	hr, _ := http.NewRequest(http.MethodGet, proxy+"/v2/bot/message/"+oauthtest.ContentMessageID(contentSize)+"/content", nil)
	hr.Header.Set("Authorization", "Bearer linetoken")
	resp, err := p.client.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != contentSize {
		t.Fatalf("the download: %d, Content-Length %d, want 200 and %d", resp.StatusCode, resp.ContentLength, contentSize)
	}
	first := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, agentStartLimit, "the agent logging its shutdown", func() bool {
		return strings.Contains(p.stderr.String(), "agent: shutting down")
	})
	if p.exited() {
		t.Fatalf("the agent exited with the download in flight\n%s", p.output())
	}
	if err := oauthtest.VerifyContent(io.MultiReader(bytes.NewReader(first), resp.Body), contentSize); err != nil {
		t.Fatalf("the download in flight at SIGTERM: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(agentStopLimit):
		t.Fatalf("the agent did not exit after the download\n%s", p.output())
	}
	if p.code != exitOK {
		t.Errorf("exit %d after SIGTERM, want 0\n%s", p.code, p.output())
	}
}
