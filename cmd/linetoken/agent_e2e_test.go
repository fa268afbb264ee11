package main

// End-to-end tests of `linetoken agent`: the binary, built once, runs as a
// separate process against an in-process fake LINE on a real loopback
// port, and is driven over HTTP (TCP and a unix socket) and signals. A
// separate process cannot follow the fake's Advance, so these tests use
// real time only; internal/agent's tests drive time with the fake's clock.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
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

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// Bounds of the binary tests: generous, for a loaded 2-core machine.
const (
	// agentStartLimit bounds the wait for "listening on" and for a ready
	// agent (a token issued, sinks written).
	agentStartLimit = 20 * time.Second
	// agentStopLimit is the issue's bound on a shutdown (20 s), plus slack
	// for the process to be reaped.
	agentStopLimit = 25 * time.Second
	// agentRunLimit kills an agent process that outlives its test.
	agentRunLimit = 2 * time.Minute
	// agentBuildLimit bounds `go build` of the binary.
	agentBuildLimit = 5 * time.Minute
	// listeningPrefix starts the line the agent prints per listener.
	listeningPrefix = "linetoken agent: listening on "
)

// agentBin is the binary, built once per test binary by agentBinary and
// removed by TestMain.
var agentBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if agentBin.dir != "" {
		_ = os.RemoveAll(agentBin.dir)
	}
	os.Exit(code)
}

// agentBinary builds the linetoken binary (once) and returns its path.
func agentBinary(t testing.TB) string {
	t.Helper()
	agentBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "linetoken-e2e-")
		if err != nil {
			agentBin.err = err
			return
		}
		agentBin.dir = dir
		ctx, cancel := context.WithTimeout(context.Background(), agentBuildLimit)
		defer cancel()
		path := filepath.Join(dir, "linetoken")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", path, ".").CombinedOutput()
		if err != nil {
			agentBin.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		agentBin.path = path
	})
	if agentBin.err != nil {
		t.Fatalf("building linetoken: %v", agentBin.err)
	}
	return agentBin.path
}

// envList turns env into a process environment: the agent sees exactly
// these variables, none of the test's.
func envList(env map[string]string) []string {
	var l []string
	for k, v := range env {
		l = append(l, k+"="+v)
	}
	return l
}

// agentProc is one running `linetoken agent` process.
type agentProc struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdout, stderr testkit.SyncBuffer
	done           chan struct{} // closed when the process exited
	code           int           // its exit code, once done
	addrs          []string      // the addresses printed, in order
	base           string        // http://ADDR of the TCP listener, if any
	client         *http.Client  // to the TCP listener
}

// startAgent starts `linetoken agent args...` with env as its whole
// environment and waits until it printed one "listening on" line per
// listener (listeners of them). It fails t if the agent exits first.
func startAgent(t *testing.T, listeners int, env map[string]string, args ...string) *agentProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), agentRunLimit)
	p := &agentProc{t: t, done: make(chan struct{}),
		client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{}}}
	p.cmd = exec.CommandContext(ctx, agentBinary(t), append([]string{"agent"}, args...)...)
	p.cmd.Env = envList(env)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.client.CloseIdleConnections()
		cancel() // kills the process if it still runs
		<-p.done
	})
	testkit.Eventually(t, agentStartLimit, "the agent printing its listening lines", func() bool {
		return p.exited() || len(p.listening()) >= listeners
	})
	if p.exited() {
		t.Fatalf("the agent exited before listening: exit %d\n--- stdout:\n%s--- stderr:\n%s", p.code, p.stdout.String(), p.stderr.String())
	}
	p.addrs = p.listening()
	if !strings.HasPrefix(p.addrs[0], "/") {
		p.base = "http://" + p.addrs[0]
	}
	return p
}

// listening lists the addresses of the "listening on" lines printed.
func (p *agentProc) listening() []string {
	var addrs []string
	sc := bufio.NewScanner(strings.NewReader(p.stdout.String()))
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), listeningPrefix); ok {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

func (p *agentProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// output is what the process printed, for failure messages.
func (p *agentProc) output() string {
	return "--- stdout:\n" + p.stdout.String() + "--- stderr:\n" + p.stderr.String()
}

// stop sends sig and waits for the exit: its code and how long it took.
func (p *agentProc) stop(sig os.Signal) (int, time.Duration) {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signalling the agent: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(agentStopLimit):
		p.t.Fatalf("the agent did not exit within %v of %v\n%s", agentStopLimit, sig, p.output())
	}
	return p.code, time.Since(start)
}

// stopClean sends sig and fails t unless the agent exits 0 within the
// issue's 20 s.
func (p *agentProc) stopClean(sig os.Signal) {
	p.t.Helper()
	code, took := p.stop(sig)
	if code != exitOK {
		p.t.Errorf("exit %d after %v, want 0\n%s", code, sig, p.output())
	}
	if took > 20*time.Second {
		p.t.Errorf("the shutdown took %v, more than 20s", took)
	}
}

// waitReady waits until /readyz answers 200: every channel holds a token
// and every sink is current.
func (p *agentProc) waitReady() {
	p.t.Helper()
	testkit.Eventually(p.t, agentStartLimit, "the agent's /readyz answering 200", func() bool {
		if p.exited() {
			return true
		}
		code, _ := p.get(p.client, p.base, "/readyz", nil)
		return code == http.StatusOK
	})
	if p.exited() {
		p.t.Fatalf("the agent exited: %d\n%s", p.code, p.output())
	}
}

// req is one HTTP request to the agent.
type req struct {
	method, path string
	host         string // the Host header; "": the URL's
	header       map[string]string
	body         string
}

// do sends r through c to base and returns the answer and its body.
func (p *agentProc) do(c *http.Client, base string, r req) (*http.Response, []byte) {
	p.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(cmpStr(r.method, http.MethodGet), base+r.path, body)
	if err != nil {
		p.t.Fatal(err)
	}
	if r.host != "" {
		hr.Host = r.host
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := c.Do(hr)
	if err != nil {
		p.t.Fatalf("%s %s: %v\n%s", hr.Method, r.path, err, p.output())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("%s %s: reading the body: %v", hr.Method, r.path, err)
	}
	return resp, b
}

// get is a GET with header through c: the status and the body.
func (p *agentProc) get(c *http.Client, base, path string, header map[string]string) (int, []byte) {
	p.t.Helper()
	resp, b := p.do(c, base, req{path: path, header: header})
	return resp.StatusCode, b
}

func cmpStr(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

// v1 is the header of an authorised /v1/ request: the guard header and,
// when key is set, the caller key.
func v1(key string) map[string]string {
	h := map[string]string{"X-Linetoken-Request": "1"}
	if key != "" {
		h["X-Linetoken-Key"] = key
	}
	return h
}

// tokenAnswer is the token endpoint's JSON object.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Expiry      string `json:"expiry"`
	KeyID       string `json:"key_id"`
	Kind        string `json:"kind"`
}

// token GETs channel id's token (kind "" for the only one) and checks the
// answer's shape against the fake: a valid token of the channel and kind,
// expires_in and expiry consistent with it, key_id for v2.1 only.
func (p *agentProc) token(c *http.Client, base, id, kind, key string, srv *oauthtest.Server) tokenAnswer {
	p.t.Helper()
	return p.tokenAt(c, base, tokenPath(id, kind), id, kind, key, srv)
}

// tokenPath is channel id's token route, with ?kind= unless kind is "".
func tokenPath(id, kind string) string {
	if kind == "" {
		return "/v1/channels/" + id + "/token"
	}
	return "/v1/channels/" + id + "/token?kind=" + kind
}

// tokenAt is token with the path given: kind is the kind wanted ("" for
// v2.1), whatever the path asks.
func (p *agentProc) tokenAt(c *http.Client, base, path, id, kind, key string, srv *oauthtest.Server) tokenAnswer {
	p.t.Helper()
	resp, b := p.do(c, base, req{path: path, header: v1(key)})
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("GET %s: %d %s\n%s", path, resp.StatusCode, b, p.output())
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		p.t.Errorf("GET %s: Cache-Control %q, want no-store", path, cc)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		p.t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	return checkTokenJSON(p.t, b, id, kind, srv)
}

// checkTokenJSON decodes a token object (the API's answer or a json sink)
// strictly and checks it against the fake.
func checkTokenJSON(t *testing.T, b []byte, id, kind string, srv *oauthtest.Server) tokenAnswer {
	t.Helper()
	var ta tokenAnswer
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ta); err != nil {
		t.Fatalf("token object %s: %v", b, err)
	}
	kind = cmpStr(kind, "v2.1")
	info, ok := srv.Lookup(ta.AccessToken)
	switch {
	case !ok:
		t.Errorf("the token served is not valid at the fake")
	case info.ChannelID != id:
		t.Errorf("the token served is channel %s's, want %s", info.ChannelID, id)
	}
	exp, err := time.Parse(time.RFC3339, ta.Expiry)
	if err != nil || !strings.HasSuffix(ta.Expiry, "Z") {
		t.Errorf("expiry %q is not RFC 3339 UTC: %v", ta.Expiry, err)
	}
	if ok && !exp.Equal(info.Expiry.Truncate(time.Second)) {
		t.Errorf("expiry %v, the fake says %v", exp, info.Expiry)
	}
	if left := time.Until(exp); ta.ExpiresIn <= 0 || time.Duration(ta.ExpiresIn)*time.Second > left+2*time.Second {
		t.Errorf("expires_in %d does not match expiry %s", ta.ExpiresIn, ta.Expiry)
	}
	if ta.TokenType != "Bearer" || ta.Kind != kind {
		t.Errorf("token_type %q kind %q, want Bearer %s", ta.TokenType, ta.Kind, kind)
	}
	if kind == "v2.1" && (ta.KeyID == "" || ok && ta.KeyID != info.KeyID) {
		t.Errorf("key_id %q, the fake says %q", ta.KeyID, info.KeyID)
	}
	if kind != "v2.1" && ta.KeyID != "" {
		t.Errorf("a %s token has key_id %q", kind, ta.KeyID)
	}
	return ta
}

// apiError is an error answer's body.
type apiErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Cause   string `json:"cause"`
}

// agentWorld is a fake LINE with the channels and caller keys of the
// multi-channel config: channel one as v2.1 and short-lived (so a GET
// without ?kind= is ambiguous), channel two short-lived; caller "all"
// reads both, caller "second" only channel two.
type agentWorld struct {
	*fixture
	dir                 string
	secretFile          string
	two, twoSecret      string
	twoSecretFile       string
	allKey, secondKey   string
	allFile, secondFile string
	baseURL             string // LINE's API for the agent: the fake, or a proxy in front of it
}

func newAgentWorld(t *testing.T) *agentWorld {
	t.Helper()
	w := &agentWorld{fixture: newFixture(t), dir: t.TempDir()}
	w.baseURL = w.srv.URL()
	first := "9" // channel two's ID: channel one's with another first digit
	if w.ch.ID[0] == '9' {
		first = "8"
	}
	w.two, w.twoSecret = first+w.ch.ID[1:], "twosecret-"+rand.Text()
	w.srv.AddChannel(w.two, w.twoSecret)
	w.allKey, w.secondKey = "ck-"+rand.Text(), "ck-"+rand.Text()
	w.secretFile = w.file(t, "one.secret", w.ch.Secret+"\n")
	w.twoSecretFile = w.file(t, "two.secret", w.twoSecret)
	w.allFile = w.file(t, "all.key", w.allKey+"\n")
	w.secondFile = w.file(t, "second.key", w.secondKey)
	return w
}

// file writes content to name in w's directory, 0600, and returns its path.
func (w *agentWorld) file(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(w.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// config writes the multi-channel config with top (more top-level YAML,
// such as store: or log_format:) and sinks (the YAML list of channel
// one's v2.1 sinks, "" for none), and returns its path.
func (w *agentWorld) config(t *testing.T, top, sinks string) string {
	t.Helper()
	if sinks != "" {
		sinks = "    sinks:\n" + sinks
	}
	return w.file(t, "agent.yaml", fmt.Sprintf(`listen: 127.0.0.1:0
base_url: %s
log_level: debug
%s
callers:
  - name: all-bot
    key_file: %s
  - name: second-bot
    key_file: %s
    channels: ["%s"]
channels:
  - id: "%s"
    kind: v2.1
    secret_file: %s
    private_key_file: %s
    key_id: %s
    lifetime: 1h
%s  - id: "%s"
    kind: short-lived
    secret_file: %s
  - id: "%s"
    kind: short-lived
    secret_file: %s
`, w.baseURL, top, w.allFile, w.secondFile, w.two, w.ch.ID, w.secretFile, w.keyFile, w.ch.KeyID, sinks,
		w.ch.ID, w.secretFile, w.two, w.twoSecretFile))
}

// apiCase is one request of the route and error table and its answer.
type apiCase struct {
	name  string
	req   req
	code  int
	err   string // the error code of an error answer
	allow string // the Allow header of a 405
}

// apiCases is every route and every error code but token_unavailable, for
// the multi-channel config at addr (host:port, for Host headers).
func (w *agentWorld) apiCases(addr string) []apiCase {
	_, port, _ := net.SplitHostPort(addr)
	one, two := "/v1/channels/"+w.ch.ID, "/v1/channels/"+w.two
	all := v1(w.allKey)
	with := func(h map[string]string, kv ...string) map[string]string {
		c := map[string]string{}
		for k, v := range h {
			c[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			c[kv[i]] = kv[i+1]
		}
		return c
	}
	return []apiCase{
		{name: "token v2.1", req: req{path: one + "/token?kind=v2.1", header: all}, code: 200},
		{name: "token short-lived", req: req{path: one + "/token?kind=short-lived", header: all}, code: 200},
		{name: "token of the only kind", req: req{path: two + "/token", header: v1(w.secondKey)}, code: 200},
		{name: "HEAD token", req: req{method: "HEAD", path: two + "/token", header: all}, code: 200},
		{name: "invalidate a token not served", req: req{method: "POST", path: one + "/token/invalidate?kind=v2.1", header: all, body: `{"access_token":"not-the-current-token"}`}, code: 204},
		{name: "healthz", req: req{path: "/healthz"}, code: 200},
		{name: "readyz", req: req{path: "/readyz"}, code: 200},
		{name: "metrics", req: req{path: "/metrics"}, code: 200},
		{name: "Host localhost with port", req: req{path: two + "/token", host: "localhost:" + port, header: all}, code: 200},
		{name: "Host [::1]", req: req{path: "/healthz", host: "[::1]:" + port}, code: 200},
		{name: "Host 127.0.0.1 without port", req: req{path: "/healthz", host: "127.0.0.1"}, code: 200},

		{name: "bad Host on a token", req: req{path: one + "/token?kind=v2.1", host: "rebound.example:" + port, header: all}, code: 403, err: "bad_host"},
		{name: "bad Host on healthz", req: req{path: "/healthz", host: "rebound.example"}, code: 403, err: "bad_host"},
		{name: "bad Host on metrics", req: req{path: "/metrics", host: "10.0.0.1:" + port}, code: 403, err: "bad_host"},
		{name: "Origin on a token", req: req{path: one + "/token?kind=v2.1", header: with(all, "Origin", "http://127.0.0.1:"+port)}, code: 403, err: "bad_host"},
		{name: "Origin null on readyz", req: req{path: "/readyz", header: map[string]string{"Origin": "null"}}, code: 403, err: "bad_host"},
		{name: "no guard header", req: req{path: one + "/token?kind=v2.1", header: map[string]string{"X-Linetoken-Key": w.allKey}}, code: 403, err: "missing_request_header"},
		{name: "guard header not 1", req: req{path: one + "/token?kind=v2.1", header: with(all, "X-Linetoken-Request", "true")}, code: 403, err: "missing_request_header"},
		{name: "no caller key", req: req{path: one + "/token?kind=v2.1", header: v1("")}, code: 401, err: "invalid_caller_key"},
		{name: "wrong caller key", req: req{path: one + "/token?kind=v2.1", header: v1(w.allKey + "x")}, code: 401, err: "invalid_caller_key"},
		{name: "unknown route", req: req{path: "/v1/tokens", header: all}, code: 404, err: "not_found"},
		{name: "route with a tail", req: req{path: one + "/token/extra", header: all}, code: 404, err: "not_found"},
		{name: "POST token", req: req{method: "POST", path: one + "/token", header: all}, code: 405, err: "method_not_allowed", allow: "GET"},
		{name: "GET invalidate", req: req{path: one + "/token/invalidate", header: all}, code: 405, err: "method_not_allowed", allow: "POST"},
		{name: "DELETE healthz", req: req{method: "DELETE", path: "/healthz"}, code: 405, err: "method_not_allowed", allow: "GET, HEAD"},
		{name: "large invalidate body", req: req{method: "POST", path: one + "/token/invalidate?kind=v2.1", header: all,
			body: `{"access_token":"` + strings.Repeat("x", 5000) + `"}`}, code: 413, err: "body_too_large"},
		{name: "caller key of another channel", req: req{path: one + "/token?kind=v2.1", header: v1(w.secondKey)}, code: 403, err: "channel_not_allowed"},
		{name: "limited caller key, unknown channel", req: req{path: "/v1/channels/999/token", header: v1(w.secondKey)}, code: 403, err: "channel_not_allowed"},
		{name: "unknown channel", req: req{path: "/v1/channels/999/token", header: all}, code: 404, err: "unknown_channel"},
		{name: "kind the channel lacks", req: req{path: two + "/token?kind=v2.1", header: all}, code: 404, err: "unknown_channel"},
		{name: "no kind, several kinds", req: req{path: one + "/token", header: all}, code: 400, err: "ambiguous_kind"},
		{name: "bad kind", req: req{path: one + "/token?kind=v3", header: all}, code: 400, err: "bad_request"},
		{name: "invalidate body not JSON", req: req{method: "POST", path: one + "/token/invalidate?kind=v2.1", header: all, body: "access_token=x"}, code: 400, err: "bad_request"},
		{name: "invalidate without a token", req: req{method: "POST", path: two + "/token/invalidate", header: all, body: `{"access_token":""}`}, code: 400, err: "bad_request"},
	}
}

// check sends c's request and checks the answer: status, error code,
// JSON body, Allow. It returns the body.
func (p *agentProc) check(cl *http.Client, base string, c apiCase) []byte {
	p.t.Helper()
	resp, b := p.do(cl, base, c.req)
	checkAnswer(p.t, c, resp, b)
	return b
}

// checkAnswer checks an answer to c's request: status, Allow, and for an
// error its JSON body (the code and a message) and Content-Type. It
// returns the error body.
func checkAnswer(t *testing.T, c apiCase, resp *http.Response, b []byte) apiErrorBody {
	t.Helper()
	var e apiErrorBody
	if resp.StatusCode != c.code {
		t.Errorf("%s: status %d, want %d: %s", c.name, resp.StatusCode, c.code, b)
		return e
	}
	if c.allow != "" && resp.Header.Get("Allow") != c.allow {
		t.Errorf("%s: Allow %q, want %q", c.name, resp.Header.Get("Allow"), c.allow)
	}
	if c.err == "" {
		return e
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error != c.err || e.Message == "" {
		t.Errorf("%s: body %s, want error %q with a message", c.name, b, c.err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", c.name, ct)
	}
	return e
}

// TestAgentRoutesAndErrors: every route and every error code of the HTTP
// API but token_unavailable (TestAgentNoSecretPrinted causes that one),
// over the real binary serving the multi-channel config with caller keys.
func TestAgentRoutesAndErrors(t *testing.T) {
	w := newAgentWorld(t)
	p := startAgent(t, 1, nil, "--config", w.config(t, "", ""))
	p.waitReady()
	for _, c := range w.apiCases(p.addrs[0]) {
		b := p.check(p.client, p.base, c)
		switch c.name {
		case "no guard header":
			if !bytes.Contains(b, []byte("X-Linetoken-Request")) {
				t.Errorf("missing_request_header does not name the header: %s", b)
			}
		case "no kind, several kinds":
			if !bytes.Contains(b, []byte("v2.1")) || !bytes.Contains(b, []byte("short-lived")) {
				t.Errorf("ambiguous_kind does not name the kinds: %s", b)
			}
		case "readyz":
			if !bytes.Contains(b, []byte(`"ready"`)) {
				t.Errorf("readyz: %s", b)
			}
		case "metrics":
			if !bytes.Contains(b, []byte("linetoken_token_refreshes_total")) {
				t.Errorf("metrics lack linetoken_token_refreshes_total")
			}
		}
	}
	// The 200s' shape, against the fake.
	v21 := p.token(p.client, p.base, w.ch.ID, "v2.1", w.allKey, w.srv)
	p.token(p.client, p.base, w.ch.ID, "short-lived", w.allKey, w.srv)
	p.tokenAt(p.client, p.base, tokenPath(w.two, ""), w.two, "short-lived", w.secondKey, w.srv)
	if time.Duration(v21.ExpiresIn)*time.Second > time.Hour {
		t.Errorf("the v2.1 token lives %ds, the config says lifetime 1h", v21.ExpiresIn)
	}
	// The access log names the caller, never its key.
	testkit.Eventually(t, agentStartLimit, "the access log naming second-bot", func() bool {
		return strings.Contains(p.stderr.String(), "second-bot")
	})
	if code, _ := p.stop(syscall.SIGTERM); code != exitOK {
		t.Errorf("exit %d after SIGTERM\n%s", code, p.output())
	}
	for _, k := range []string{w.allKey, w.secondKey} {
		if strings.Contains(p.stdout.String()+p.stderr.String(), k) {
			t.Errorf("a caller key was printed")
		}
	}
}

// unixClient is an HTTP client that reaches the agent's socket at path.
func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// TestAgentSocketAndSIGTERM: one channel from the LINE_* variables (no
// config file), served on TCP and on a unix socket (0660, the same API and
// guards), with a raw sink and the memory store. SIGTERM makes it exit 0
// within 20 s, having removed the socket, revoked its token at the fake
// (no slot left in use) and removed the sink of the revoked token.
func TestAgentSocketAndSIGTERM(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	sock, sinkPath := filepath.Join(dir, "agent.sock"), filepath.Join(dir, "token")
	p := startAgent(t, 2, f.env, "--listen", "127.0.0.1:0", "--socket", sock, "--sink", sinkPath)
	if p.addrs[1] != sock {
		t.Fatalf("listening lines %q, want the TCP address then %s", p.addrs, sock)
	}
	p.waitReady()
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want a socket with 0660", fi.Mode())
	}
	uc := unixClient(sock)
	defer uc.CloseIdleConnections()
	const ub = "http://localhost"
	tok := p.token(uc, ub, f.ch.ID, "", "", f.srv)
	if tcp := p.token(p.client, p.base, f.ch.ID, "", "", f.srv); tcp.AccessToken != tok.AccessToken {
		t.Errorf("the socket and TCP serve different tokens")
	}
	path := "/v1/channels/" + f.ch.ID + "/token"
	for _, c := range []apiCase{
		{name: "socket: healthz", req: req{path: "/healthz"}, code: 200},
		{name: "socket: readyz", req: req{path: "/readyz"}, code: 200},
		{name: "socket: metrics", req: req{path: "/metrics"}, code: 200},
		{name: "socket: no guard header", req: req{path: path}, code: 403, err: "missing_request_header"},
		{name: "socket: bad Host", req: req{path: path, host: "rebound.example", header: v1("")}, code: 403, err: "bad_host"},
		{name: "socket: Origin", req: req{path: "/healthz", header: map[string]string{"Origin": "https://evil.example"}}, code: 403, err: "bad_host"},
		{name: "socket: unknown channel", req: req{path: "/v1/channels/42/token", header: v1("")}, code: 404, err: "unknown_channel"},
		{name: "socket: POST token", req: req{method: "POST", path: path, header: v1("")}, code: 405, err: "method_not_allowed", allow: "GET"},
		{name: "socket: invalidate not served", req: req{method: "POST", path: path + "/invalidate", header: v1(""), body: `{"access_token":"other"}`}, code: 204},
	} {
		p.check(uc, ub, c)
	}
	if got, err := os.ReadFile(sinkPath); err != nil || string(got) != tok.AccessToken {
		t.Errorf("the sink holds %d bytes (%v), want the token served", len(got), err)
	}
	if n := f.srv.ActiveTokens(f.ch.ID); n != 1 {
		t.Errorf("%d active v2.1 tokens at the fake before SIGTERM, want 1", n)
	}

	p.stopClean(syscall.SIGTERM)
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket is still there after exit: %v", err)
	}
	if _, err := os.Lstat(sinkPath); !os.IsNotExist(err) {
		t.Errorf("the sink of the revoked token is still there after exit: %v", err)
	}
	if n := f.srv.ActiveTokens(f.ch.ID); n != 0 {
		t.Errorf("%d active v2.1 tokens at the fake after exit, want 0 (the memory store revokes at exit)", n)
	}
	if _, ok := f.srv.Lookup(tok.AccessToken); ok {
		t.Errorf("the token served is still valid at the fake after exit")
	}
	if n := f.srv.IssueCount(oauthtest.KindV21); n != 1 {
		t.Errorf("%d v2.1 tokens issued, want 1", n)
	}
}

// TestAgentSinks: a raw sink (default mode 0600) and a json sink (mode
// "0640") hold the token served; after the token is revoked at LINE and a
// caller reports it, both files are replaced (new inode, same mode, no
// temp file left) with the new token.
func TestAgentSinks(t *testing.T) {
	w := newAgentWorld(t)
	sinkDir := t.TempDir()
	raw, js := filepath.Join(sinkDir, "one.token"), filepath.Join(sinkDir, "one.json")
	cfg := w.config(t, "", fmt.Sprintf(`      - path: %s
      - path: %s
        format: json
        mode: "0640"
`, raw, js))
	p := startAgent(t, 1, nil, "--config", cfg)
	p.waitReady()
	tok := p.token(p.client, p.base, w.ch.ID, "v2.1", w.allKey, w.srv)
	checkSinks(t, raw, js, tok, w)
	ino := inode(t, raw)
	jsIno := inode(t, js)

	rotateByInvalidation(t, p, w, tok.AccessToken, raw)
	tok2 := p.token(p.client, p.base, w.ch.ID, "v2.1", w.allKey, w.srv)
	if tok2.AccessToken == tok.AccessToken {
		t.Fatal("the agent still serves the revoked token")
	}
	checkSinks(t, raw, js, tok2, w)
	if inode(t, raw) == ino || inode(t, js) == jsIno {
		t.Errorf("a sink was rewritten in place (same inode), not replaced")
	}
	ents, err := os.ReadDir(sinkDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("the sink directory holds %q, want the two sinks only", names)
	}
}

// rotateByInvalidation revokes accessToken, channel one's v2.1 token, at
// LINE, reports it to p, and waits until the raw sink holds another token
// and p is ready again.
func rotateByInvalidation(t *testing.T, p *agentProc, w *agentWorld, accessToken, raw string) {
	t.Helper()
	if err := w.srv.Client(t, w.ch.ID).RevokeToken(context.Background(), accessToken); err != nil {
		t.Fatal(err)
	}
	invalidate(t, p, w.ch.ID, "v2.1", w.allKey, accessToken)
	testkit.Eventually(t, agentStartLimit, "the raw sink holding a new token", func() bool {
		b, err := os.ReadFile(raw)
		return err == nil && len(b) > 0 && string(b) != accessToken
	})
	p.waitReady()
}

// checkSinks checks the raw and json sinks' content and modes for tok.
func checkSinks(t *testing.T, raw, js string, tok tokenAnswer, w *agentWorld) {
	t.Helper()
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != tok.AccessToken {
		t.Errorf("the raw sink holds %d bytes, not exactly the token (%d bytes, no newline)", len(b), len(tok.AccessToken))
	}
	jb, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	jt := checkTokenJSON(t, jb, w.ch.ID, "v2.1", w.srv)
	if jt.AccessToken != tok.AccessToken || jt.Expiry != tok.Expiry || jt.KeyID != tok.KeyID {
		t.Errorf("the json sink holds another token than the one served")
	}
	for path, want := range map[string]os.FileMode{raw: 0o600, js: 0o640} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("sink %s: mode %v (%v), want %v", filepath.Base(path), fi.Mode().Perm(), err, want)
		}
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// invalidate reports accessToken refused to the agent and wants 204.
func invalidate(t *testing.T, p *agentProc, id, kind, key, accessToken string) {
	t.Helper()
	path := "/v1/channels/" + id + "/token/invalidate"
	if kind != "" {
		path += "?kind=" + kind
	}
	body, _ := json.Marshal(map[string]string{"access_token": accessToken})
	resp, b := p.do(p.client, p.base, req{method: "POST", path: path, header: v1(key), body: string(body)})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("invalidate: %d %s", resp.StatusCode, b)
	}
}

// scrape GETs /metrics and parses it with expfmt.
func (p *agentProc) scrape() map[string]*dto.MetricFamily {
	p.t.Helper()
	code, b := p.get(p.client, p.base, "/metrics", nil)
	if code != http.StatusOK {
		p.t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		p.t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// metricValue is the value of the sample of name whose labels are exactly
// labels, and whether there is one.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	fam, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// wantMetric fails t unless the sample exists with value want.
func wantMetric(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) {
	t.Helper()
	got, ok := metricValue(fams, name, labels)
	if !ok {
		t.Errorf("%s%v: no such sample", name, labels)
	} else if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// TestAgentMetrics: /metrics parsed with expfmt, values checked against
// what the test did and what the fake says: one issue, the token's expiry,
// request counts by route and code, one sink write, the v2.1 slots in use
// (two tokens issued outside the agent make it 3), then after an
// invalidation: the invalidation, a second issue and a second sink write.
func TestAgentMetrics(t *testing.T) {
	f := newFixture(t)
	other := f.srv.Client(t, f.ch.ID)
	for range 2 {
		if _, err := other.IssueToken(context.Background(), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	sinkPath := filepath.Join(t.TempDir(), "token")
	p := startAgent(t, 1, f.env, "--listen", "127.0.0.1:0", "--sink", sinkPath, "--lifetime", "2h")
	p.waitReady()
	id := f.ch.ID
	ck := map[string]string{"channel": id, "kind": "v2.1"}
	var tok tokenAnswer
	for range 3 {
		tok = p.token(p.client, p.base, id, "", "", f.srv)
	}
	for range 2 {
		p.get(p.client, p.base, "/v1/channels/"+id+"/token", nil) // 403: no guard header
	}
	p.get(p.client, p.base, "/v1/nowhere", v1(""))
	p.get(p.client, p.base, "/healthz", nil)

	fams := p.scrape()
	exp, _ := time.Parse(time.RFC3339, tok.Expiry)
	wantMetric(t, fams, "linetoken_token_refreshes_total", map[string]string{"channel": id, "kind": "v2.1", "result": "issued"}, 1)
	wantMetric(t, fams, "linetoken_token_expiry_timestamp_seconds", ck, float64(exp.Unix()))
	wantMetric(t, fams, "linetoken_token_ready", ck, 1)
	wantMetric(t, fams, "linetoken_http_requests_total", map[string]string{"route": "/v1/channels/{id}/token", "code": "200"}, 3)
	// A request refused before routing (bad_host, missing_request_header,
	// invalid_caller_key) counts under route "other".
	wantMetric(t, fams, "linetoken_http_requests_total", map[string]string{"route": "other", "code": "403"}, 2)
	wantMetric(t, fams, "linetoken_http_requests_total", map[string]string{"route": "other", "code": "404"}, 1)
	wantMetric(t, fams, "linetoken_http_requests_total", map[string]string{"route": "/healthz", "code": "200"}, 1)
	wantMetric(t, fams, "linetoken_sink_writes_total", map[string]string{"channel": id, "kind": "v2.1", "result": "ok"}, 1)
	if _, ok := metricValue(fams, "linetoken_token_invalidations_total", ck); ok {
		t.Errorf("an invalidation is counted before any")
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("/metrics lacks %s (the Go and process collectors)", name)
		}
	}
	// The slots gauge follows the key-ID list, polled after each refresh.
	waitSlots := func() {
		t.Helper()
		testkit.Eventually(t, agentStartLimit, "linetoken_v21_slots_in_use matching the fake", func() bool {
			v, ok := metricValue(p.scrape(), "linetoken_v21_slots_in_use", map[string]string{"channel": id})
			return ok && v == float64(f.srv.ActiveTokens(id))
		})
	}
	waitSlots()
	if n := f.srv.ActiveTokens(id); n != 3 {
		t.Errorf("%d active tokens at the fake, want 3", n)
	}

	if err := other.RevokeToken(context.Background(), tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	invalidate(t, p, id, "", "", tok.AccessToken)
	testkit.Eventually(t, agentStartLimit, "a second sink write", func() bool {
		v, _ := metricValue(p.scrape(), "linetoken_sink_writes_total", map[string]string{"channel": id, "kind": "v2.1", "result": "ok"})
		return v == 2
	})
	tok2 := p.token(p.client, p.base, id, "", "", f.srv)
	fams = p.scrape()
	exp2, _ := time.Parse(time.RFC3339, tok2.Expiry)
	wantMetric(t, fams, "linetoken_token_invalidations_total", ck, 1)
	wantMetric(t, fams, "linetoken_token_refreshes_total", map[string]string{"channel": id, "kind": "v2.1", "result": "issued"}, 2)
	wantMetric(t, fams, "linetoken_token_expiry_timestamp_seconds", ck, float64(exp2.Unix()))
	wantMetric(t, fams, "linetoken_http_requests_total", map[string]string{"route": "/v1/channels/{id}/token/invalidate", "code": "204"}, 1)
	waitSlots()
	if n := f.srv.IssueCount(oauthtest.KindV21); n != 4 {
		t.Errorf("%d v2.1 issues at the fake, want 4 (2 outside the agent, 2 by it)", n)
	}
}

// TestAgentExitCodes: 1 when LINE refuses the credentials at the first
// issue (with the CLI's hint), 2 for a bad config or flags (FILE:LINE for
// a config file, the proxy: section's included; the reason for a
// non-loopback listen or proxy listen without callers, named by flag in
// env mode; an inline secret named and never echoed), 3 when a listener,
// the proxy's included, cannot be bound.
func TestAgentExitCodes(t *testing.T) {
	w := newAgentWorld(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	notSocket := w.file(t, "not-a-socket", "x")
	unregistered := newFixture(t)
	unregistered.srv.UnregisterKey(unregistered.ch.KeyID)

	yaml := func(name, body string) string { return w.file(t, name, body) }
	chanYAML := fmt.Sprintf(`channels:
  - id: "%s"
    secret_file: %s
    private_key_file: %s
    key_id: %s
`, w.ch.ID, w.secretFile, w.keyFile, w.ch.KeyID)
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want []string // in stderr
	}{
		{"key unregistered at LINE", unregistered.env, []string{"--listen", "127.0.0.1:0"}, exitAPI,
			[]string{"hint: LINE knows no key with this key ID"}},
		{"wrong secret, short-lived", with(w.env, oauth.EnvChannelSecret, strings.Repeat("0", 32)), []string{"--listen", "127.0.0.1:0", "--type", "short-lived"}, exitAPI,
			[]string{"hint: check LINE_CHANNEL_ID and LINE_CHANNEL_SECRET"}},
		{"unknown key in the config", nil, []string{"--config", yaml("unknown.yaml", "listen: 127.0.0.1:0\n"+chanYAML+"    sinkz: []\n")}, exitUsage,
			[]string{filepath.Join(w.dir, "unknown.yaml") + ":7: "}},
		{"bad duration", nil, []string{"--config", yaml("duration.yaml", "listen: 127.0.0.1:0\n"+chanYAML+"    lifetime: 1 day\n")}, exitUsage,
			[]string{filepath.Join(w.dir, "duration.yaml") + ":7: channels[0].lifetime: "}},
		{"unquoted mode", nil, []string{"--config", yaml("mode.yaml", "listen: 127.0.0.1:0\n"+chanYAML+"    sinks:\n      - path: /tmp/x\n        mode: 0600\n")}, exitUsage,
			[]string{filepath.Join(w.dir, "mode.yaml") + ":9: channels[0].sinks[0].mode: must be a quoted octal"}},
		{"inline secret", nil, []string{"--config", yaml("inline.yaml", fmt.Sprintf("listen: 127.0.0.1:0\nchannels:\n  - id: \"%s\"\n    secret: %s\n    private_key_file: %s\n    key_id: %s\n",
			w.ch.ID, w.ch.Secret, w.keyFile, w.ch.KeyID))}, exitUsage,
			[]string{filepath.Join(w.dir, "inline.yaml") + ":4: channels[0].secret: an inline channel secret is refused: use secret_file or secret_env"}},
		{"non-loopback listen without callers, config", nil, []string{"--config", yaml("public.yaml", "listen: 0.0.0.0:0\n"+chanYAML)}, exitUsage,
			[]string{filepath.Join(w.dir, "public.yaml") + ":1: listen: a non-loopback address", "needs callers"}},
		{"non-loopback listen with callers, without tls", nil, []string{"--config", yaml("plain.yaml",
			"listen: 0.0.0.0:0\ncallers:\n  - name: bot\n    key_file: "+w.allFile+"\n"+chanYAML)}, exitUsage,
			[]string{filepath.Join(w.dir, "plain.yaml") + ":1: listen: a non-loopback address needs tls", "insecure_plaintext: true"}},
		{"non-loopback listen without callers, flags", w.env, []string{"--listen", "0.0.0.0:0"}, exitUsage,
			[]string{"--listen: a non-loopback address", "needs callers"}},
		{"listen port taken", w.env, []string{"--listen", taken.Addr().String()}, exitFailure,
			[]string{"cannot listen on " + taken.Addr().String()}},
		{"socket path not a socket", w.env, []string{"--listen", "", "--socket", notSocket}, exitFailure,
			[]string{"cannot listen on " + notSocket}},
		{"unknown socket_group", nil, []string{"--config", yaml("group.yaml", "listen: 127.0.0.1:0\nsocket: "+filepath.Join(w.dir, "g.sock")+
			"\nsocket_group: linetoken-no-such-group\n"+chanYAML)}, exitFailure,
			[]string{"cannot listen on " + filepath.Join(w.dir, "g.sock"), "socket_group"}},
		{"proxy api_url not https", nil, []string{"--config", yaml("proxyurl.yaml", "listen: 127.0.0.1:0\n"+chanYAML+"proxy:\n  listen: 127.0.0.1:0\n  api_url: http://example.com\n")}, exitUsage,
			[]string{filepath.Join(w.dir, "proxyurl.yaml") + ":9: proxy.api_url: must be an https:// URL"}},
		{"proxy send_retry out of range", nil, []string{"--config", yaml("proxyretry.yaml", "listen: 127.0.0.1:0\n"+chanYAML+"proxy:\n  send_retry:\n    attempts: 0\n    max_elapsed: soon\n")}, exitUsage,
			[]string{filepath.Join(w.dir, "proxyretry.yaml") + ":9: proxy.send_retry.attempts: must be from 1", filepath.Join(w.dir, "proxyretry.yaml") + ":10: proxy.send_retry.max_elapsed: "}},
		{"non-loopback proxy without callers, config", nil, []string{"--config", yaml("proxypublic.yaml", "listen: 127.0.0.1:0\n"+chanYAML+"proxy:\n  listen: 0.0.0.0:0\n")}, exitUsage,
			[]string{filepath.Join(w.dir, "proxypublic.yaml") + ":8: proxy.listen: a non-loopback address", "needs callers"}},
		{"non-loopback proxy without callers, flags", w.env, []string{"--listen", "127.0.0.1:0", "--proxy-listen", "0.0.0.0:0"}, exitUsage,
			[]string{"--proxy-listen: a non-loopback address", "needs callers"}},
		{"--proxy-listen with --config", nil, []string{"--config", yaml("proxyflag.yaml", "listen: 127.0.0.1:0\n"+chanYAML), "--proxy-listen", "127.0.0.1:0"}, exitUsage,
			[]string{"--proxy-listen cannot be combined with --config"}},
		{"proxy port taken", w.env, []string{"--listen", "127.0.0.1:0", "--proxy-listen", taken.Addr().String()}, exitFailure,
			[]string{"cannot listen on " + taken.Addr().String()}},
		{"store.file not creatable", nil, []string{"--config", yaml("store.yaml", "listen: 127.0.0.1:0\nstore:\n  file: "+filepath.Join(notSocket, "tokens.json")+"\n"+chanYAML)}, exitUsage,
			[]string{filepath.Join(w.dir, "store.yaml") + ":3: store.file: "}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runAgentToExit(t, c.env, c.args...)
			if r.code != c.code {
				t.Fatalf("want exit %d, got %s", c.code, r)
			}
			for _, s := range c.want {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r)
				}
			}
			if strings.Contains(r.stdout+r.stderr, w.ch.Secret) {
				t.Errorf("the channel secret was printed")
			}
		})
	}
}

// runAgentToExit runs `linetoken agent args...` until it exits by itself.
func runAgentToExit(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), agentRunLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, agentBinary(t), append([]string{"agent"}, args...)...)
	cmd.Env = envList(env)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("running the agent: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the agent did not exit within %v\n--- stderr:\n%s", agentRunLimit, errb.String())
	}
	return result{cmd.ProcessState.ExitCode(), out.String(), errb.String()}
}

// devPrinted is what `linetoken agent --dev` prints once it listens.
type devPrinted struct {
	header, value string // the header of the curl command
	tokenURL      string
	channel       string
	sink          string
	metricsURL    string
}

var (
	devCurlRE    = regexp.MustCompile(`(?m)^\s*curl -s -H '([^:']+): ([^']*)' (http://\S+/v1/channels/(\d+)/token)$`)
	devSinkRE    = regexp.MustCompile(`(?m)^The sink file \(replaced at every rotation\): (\S+)$`)
	devMetricsRE = regexp.MustCompile(`(?m)^Metrics: (http://\S+/metrics)\s`)
)

// TestAgentDev: `linetoken agent --dev --listen 127.0.0.1:0` prints a curl
// command, a sink path and a metrics URL that work: the command's URL and
// header fetch a token, the sink holds that token, the metrics URL serves
// the agent's metrics. SIGINT makes it exit 0 within 20 s, its sink's
// temp directory removed.
func TestAgentDev(t *testing.T) {
	p := startAgent(t, 1, nil, "--dev", "--listen", "127.0.0.1:0", "--proxy-listen", "127.0.0.1:0")
	testkit.Eventually(t, agentStartLimit, "the --dev instructions printed", func() bool {
		return p.exited() || devMetricsRE.MatchString(p.stdout.String())
	})
	out := p.stdout.String()
	curl, sink, metrics := devCurlRE.FindStringSubmatch(out), devSinkRE.FindStringSubmatch(out), devMetricsRE.FindStringSubmatch(out)
	if curl == nil || sink == nil || metrics == nil {
		t.Fatalf("--dev did not print a curl command, the sink path and the metrics URL\n%s", p.output())
	}
	d := devPrinted{header: curl[1], value: curl[2], tokenURL: curl[3], channel: curl[4], sink: sink[1], metricsURL: metrics[1]}
	if !strings.HasPrefix(d.tokenURL, p.base+"/") || !strings.HasPrefix(d.metricsURL, p.base+"/") {
		t.Errorf("the printed URLs %s and %s are not on the listener %s", d.tokenURL, d.metricsURL, p.base)
	}
	p.waitReady()

	code, b := p.get(p.client, d.tokenURL, "", map[string]string{d.header: d.value})
	if code != http.StatusOK {
		t.Fatalf("the printed curl command: %d %s", code, b)
	}
	var tok tokenAnswer
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tok); err != nil || tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.Kind != "v2.1" || tok.ExpiresIn <= 0 {
		t.Fatalf("the printed curl command got no token (%v): %s", err, b)
	}
	if got, err := os.ReadFile(d.sink); err != nil || string(got) != tok.AccessToken {
		t.Errorf("the printed sink holds %d bytes (%v), not the token served", len(got), err)
	}

	code, b = p.get(p.client, d.metricsURL, "", nil)
	if code != http.StatusOK {
		t.Fatalf("the printed metrics URL: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the printed metrics URL serves no Prometheus text: %v", err)
	}
	wantMetric(t, fams, "linetoken_token_refreshes_total", map[string]string{"channel": d.channel, "kind": "v2.1", "result": "issued"}, 1)
	wantMetric(t, fams, "linetoken_sink_writes_total", map[string]string{"channel": d.channel, "kind": "v2.1", "result": "ok"}, 1)

	dir := filepath.Dir(d.sink)
	if !strings.HasPrefix(filepath.Base(dir), "linetoken-agent-dev-") {
		t.Fatalf("the sink %s is not in a --dev temp directory", d.sink)
	}
	p.stopClean(os.Interrupt)
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("the --dev sink directory is left after exit: %v", err)
		_ = os.RemoveAll(dir)
	}
}

// TestAgentRequestInFlightAtSIGTERM: a request whose handler is at work
// when SIGTERM arrives still gets its answer, and the agent then exits 0.
// The request is an invalidation: its handler asks LINE's verify
// endpoint, which the fake holds, so the fake tells when the handler runs.
// (A GET waiting for a token joins the keeper's refresh and gives no such
// signal; a request merely written by the client may not have been read
// yet, and net/http drops those at Shutdown.)
func TestAgentRequestInFlightAtSIGTERM(t *testing.T) {
	f := newFixture(t)
	p := startAgent(t, 1, f.env, "--listen", "127.0.0.1:0")
	p.waitReady()
	tok := p.token(p.client, p.base, f.ch.ID, "", "", f.srv)
	// Shorter than the 5 s the handler gives the verify, long enough for
	// SIGTERM to arrive while the fake holds it.
	const verifyDelay = 4 * time.Second
	const verifyPath = "/oauth2/v2.1/verify"
	faulted := f.srv.Stats().Faulted
	f.srv.InjectFault(1, oauthtest.Fault{Path: verifyPath, Delay: verifyDelay})

	type answer struct {
		code int
		body []byte
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		body, _ := json.Marshal(map[string]string{"access_token": tok.AccessToken})
		hr, _ := http.NewRequest(http.MethodPost, p.base+"/v1/channels/"+f.ch.ID+"/token/invalidate", bytes.NewReader(body))
		hr.Header.Set("X-Linetoken-Request", "1")
		resp, err := p.client.Do(hr)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- answer{resp.StatusCode, b, err}
	}()
	testkit.Eventually(t, agentStartLimit, "the handler's verify request held at the fake", func() bool {
		return f.srv.Stats().Faulted == faulted+1
	})
	select {
	case a := <-answered:
		t.Fatalf("the request was answered before SIGTERM (%d %s %v): the machine took longer than %v", a.code, a.body, a.err, verifyDelay)
	default:
	}

	p.stopClean(syscall.SIGTERM)
	var a answer
	select {
	case a = <-answered:
	case <-time.After(agentStopLimit):
		t.Fatal("the request in flight was never answered")
	}
	if a.err != nil || a.code != http.StatusNoContent {
		t.Fatalf("the request in flight at SIGTERM: %d %s (%v), want 204", a.code, a.body, a.err)
	}
	// The handler finished its work: LINE's verify was answered (the
	// token is valid, so the agent kept it).
	verified := false
	for _, r := range f.srv.Requests() {
		if r.Path == verifyPath && r.Fault && r.Status == http.StatusOK {
			verified = true
		}
	}
	if !verified {
		t.Error("the verify of the request in flight was cut off")
	}
}

// TestAgentEnvModeStoreFileJSONSinkLifetime: env mode's --store-file (the
// file holds the token's entry; a second agent started later on the same
// file serves that token without an issue), --sink-format json (the sink
// holds the API's object) and --lifetime 2h (the token lives 2 h, at the
// agent and at the fake).
func TestAgentEnvModeStoreFileJSONSinkLifetime(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	store, sink := filepath.Join(dir, "state", "tokens.json"), filepath.Join(dir, "token.json")
	p := startAgent(t, 1, f.env, "--listen", "127.0.0.1:0", "--store-file", store,
		"--sink", sink, "--sink-format", "json", "--lifetime", "2h")
	p.waitReady()
	tok := p.token(p.client, p.base, f.ch.ID, "", "", f.srv)

	const lifetime, slack = 2 * time.Hour, 2 * time.Minute
	if d := time.Duration(tok.ExpiresIn) * time.Second; d > lifetime || d < lifetime-slack {
		t.Errorf("expires_in %d, want about %d (--lifetime 2h)", tok.ExpiresIn, int(lifetime.Seconds()))
	}
	if info, ok := f.srv.Lookup(tok.AccessToken); !ok {
		t.Error("the token served is not valid at the fake")
	} else if left := time.Until(info.Expiry); left > lifetime || left < lifetime-slack {
		t.Errorf("the fake says the token expires in %v, want about 2h", left)
	}

	b, err := os.ReadFile(sink)
	if err != nil {
		t.Fatal(err)
	}
	if jt := checkTokenJSON(t, b, f.ch.ID, "v2.1", f.srv); jt.AccessToken != tok.AccessToken || jt.Expiry != tok.Expiry || jt.KeyID != tok.KeyID {
		t.Errorf("the json sink holds another token than the one served")
	}

	b, err = os.ReadFile(store)
	if err != nil {
		t.Fatalf("--store-file made no file: %v", err)
	}
	var file struct {
		Entries map[string]json.RawMessage `json:"entries"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatalf("the store file is not the FileStore's JSON: %v", err)
	}
	if e := file.Entries[oauth.StoreKey(f.ch.ID, oauth.KindV21)]; !bytes.Contains(e, []byte(tok.AccessToken)) {
		t.Errorf("the store file has no entry holding the token for %s", oauth.StoreKey(f.ch.ID, oauth.KindV21))
	}
	if code, _ := p.stop(syscall.SIGTERM); code != exitOK {
		t.Errorf("exit %d after SIGTERM\n%s", code, p.output())
	}
	if _, ok := f.srv.Lookup(tok.AccessToken); !ok {
		t.Fatal("the agent revoked a token kept in a shared --store-file at exit")
	}

	p2 := startAgent(t, 1, f.env, "--listen", "127.0.0.1:0", "--store-file", store)
	p2.waitReady()
	if tok2 := p2.token(p2.client, p2.base, f.ch.ID, "", "", f.srv); tok2.AccessToken != tok.AccessToken {
		t.Error("a second agent on the same --store-file serves another token")
	}
	if n := f.srv.IssueCount(oauthtest.KindV21); n != 1 {
		t.Errorf("%d v2.1 tokens issued, want 1 (the second agent should load the first's)", n)
	}
	if code, _ := p2.stop(syscall.SIGTERM); code != exitOK {
		t.Errorf("the second agent: exit %d after SIGTERM\n%s", code, p2.output())
	}
}
