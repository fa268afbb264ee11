package agent_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// FuzzProxy settings.
const (
	// fuzzAttemptTimeout is FuzzProxy's attempt_timeout and send
	// max_elapsed: the fake answers at once (no faults), so this only
	// bounds a stuck execution.
	fuzzAttemptTimeout = 2 * time.Second
	// maxFuzzContent caps the test-only content size (bytes-<N>) an
	// input may ask the fake for, so an execution stays fast.
	maxFuzzContent = 1 << 20
	// fuzzExecHeader marks each execution's request, so the fake's log
	// tells what this one sent from a late record of an earlier one.
	fuzzExecHeader = "X-Fuzz-Exec"
	// fuzzRemoteAddr is the client address a server would set.
	fuzzRemoteAddr = "127.0.0.1:54321"
)

// proxyErrorStatus is each documented proxy error code's status.
var proxyErrorStatus = map[string]int{
	"bad_host": 403, "not_a_proxy": 400, "upgrade_refused": 400, "bad_path": 400,
	"token_endpoint_refused": 403, "missing_placeholder": 401, "invalid_caller_key": 401,
	"unknown_channel": 404, "ambiguous_kind": 400, "ambiguous_channel": 400,
	"channel_not_allowed": 403, "token_unavailable": 503, "upstream_unreachable": 502,
	"upstream_timeout": 504, "bad_request": 400,
}

// contentIDRE finds the test-only content IDs in a path.
var contentIDRE = regexp.MustCompile(`bytes-([0-9]+)`)

// fuzzProxy is FuzzProxy's agent with its proxy, and the hosts the
// proxy connected to during the current execution.
type fuzzProxy struct {
	*fuzzAgent
	h       http.Handler
	allowed map[string]bool // the fake's two host:ports
	exec    atomic.Int64

	mu    sync.Mutex
	hosts []string
}

func newFuzzProxy(tb testing.TB) *fuzzProxy {
	tb.Helper()
	fa := newFuzzAgent(tb, func(srv *oauthtest.Server, cfg *agent.Config, opts *agent.Options) {
		cfg.Proxy = &agent.ProxyConfig{Listen: "127.0.0.1:0", APIURL: srv.URL(), DataURL: srv.DataURL(),
			AttemptTimeout: fuzzAttemptTimeout, SendRetry: agent.SendRetry{Attempts: 2, MaxElapsed: fuzzAttemptTimeout}}
		opts.SendBackoff = time.Millisecond
	})
	fp := &fuzzProxy{fuzzAgent: fa, h: fa.a.ProxyHandler(), allowed: map[string]bool{}}
	for _, raw := range []string{fa.srv.URL(), fa.srv.DataURL()} {
		u, err := url.Parse(raw)
		if err != nil {
			tb.Fatal(err)
		}
		fp.allowed[u.Host] = true
	}
	agent.ObserveUpstream(fa.a, func(hostPort string) {
		fp.mu.Lock()
		fp.hosts = append(fp.hosts, hostPort)
		fp.mu.Unlock()
	})
	return fp
}

// takeHosts returns and forgets the host:ports connected to so far.
func (fp *fuzzProxy) takeHosts() []string {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	h := fp.hosts
	fp.hosts = nil
	return h
}

// rawHTTP is a request's text: the request line, then header name and
// value pairs, then body.
func rawHTTP(line string, hdr []string, body string) []byte {
	var b strings.Builder
	b.WriteString(line + "\r\n")
	for i := 0; i+1 < len(hdr); i += 2 {
		b.WriteString(hdr[i] + ": " + hdr[i+1] + "\r\n")
	}
	b.WriteString("\r\n" + body)
	return []byte(b.String())
}

// proxySeeds are FuzzProxy's seeds: what a bot sends, and every request
// the guard refuses.
func proxySeeds() [][]byte {
	phA := "Bearer linetoken:" + fuzzChanA + ":v2.1/" + keyAll
	phAS := "Bearer linetoken:" + fuzzChanA + ":short-lived"
	host := "127.0.0.1:7879"
	std := func(extra ...string) []string { return append([]string{"Host", host, "Authorization", phA}, extra...) }
	post := func(path, body string, extra ...string) []byte {
		return rawHTTP("POST "+path+" HTTP/1.1",
			std(append([]string{"Content-Type", "application/json", "Content-Length", strconv.Itoa(len(body))}, extra...)...), body)
	}
	get := func(target string, hdr ...string) []byte { return rawHTTP("GET "+target+" HTTP/1.1", hdr, "") }
	chunked := "1d\r\n" + pushBody[:29] + "\r\n" + strconv.FormatInt(int64(len(pushBody)-29), 16) + "\r\n" + pushBody[29:] + "\r\n0\r\n\r\n"
	form := "grant_type=client_credentials&client_id=" + fuzzChanA + "&client_secret=x"
	return [][]byte{
		post("/v2/bot/message/push", pushBody),
		post("/v2/bot/message/push", pushBody, "X-Line-Retry-Key", "123e4567-e89b-12d3-a456-426614174000"),
		post("/v2/bot/message/multicast", `{"to":["U1"],"messages":[{"type":"text","text":"hi"}]}`),
		post("/v2/bot/message/narrowcast", `{"messages":[{"type":"text","text":"hi"}]}`),
		post("/v2/bot/message/broadcast", `{"messages":[{"type":"text","text":"hi"}]}`),
		post("/v2/bot/message/reply", `{"replyToken":"r","messages":[{"type":"text","text":"hi"}]}`),
		post("/v2/bot/message/push", `{"to":"U1","messages":[]}`),
		post("/v2/bot/richmenu/richmenu-1/content", "\x89PNG", "Content-Type", "image/png"),
		rawHTTP("POST /v2/bot/message/push HTTP/1.1", std("Content-Type", "application/json", "Transfer-Encoding", "chunked"), chunked),
		rawHTTP("POST /v2/bot/message/push HTTP/1.1", std("Content-Type", "application/json", "Content-Length", "2000000"), pushBody),
		rawHTTP("POST /v2/bot/message/push HTTP/1.1", std("Content-Type", "application/json", "Expect", "100-continue",
			"Content-Length", strconv.Itoa(len(pushBody))), pushBody),
		get("/v2/bot/info", std()...),
		get("/v2/bot/info?x=1", std("X-Line-Retry-Key", "123e4567-e89b-12d3-a456-426614174000")...),
		get("/v2/bot/info", "Host", "agent.internal", "Authorization", phAS, agent.HeaderKey, keyAll),
		get("/v2/bot/info", std("Connection", "X-Hop, Keep-Alive", "X-Hop", "1", "Keep-Alive", "timeout=5", "Te", "trailers",
			"X-Linetoken-Debug", "1", "Proxy-Authorization", "Basic eDp5")...),
		get("/v2/bot/message/"+oauthtest.ContentMessageID(1000)+"/content", std()...),
		get("/v2/bot/message/"+oauthtest.ContentMessageID(1<<20)+"/content", std()...),
		get("/v2/bot/message/"+oauthtest.ContentMessageID(5)+"/content/preview", std()...),
		rawHTTP("HEAD /v2/bot/message/"+oauthtest.ContentMessageID(70000)+"/content HTTP/1.1", std(), ""),
		rawHTTP("DELETE /v2/bot/richmenu/richmenu-1 HTTP/1.1", std(), ""),
		// Refused by the guard.
		get("http://api.line.me/v2/bot/info", std()...),
		get("http://127.0.0.1:1/v2/bot/info", std()...),
		get("*", std()...),
		rawHTTP("CONNECT api.line.me:443 HTTP/1.1", std(), ""),
		get("/v2/bot/info", std("Connection", "Upgrade", "Upgrade", "websocket")...),
		get("/v2/bot/info", std("Connection", "Upgrade, HTTP2-Settings", "Upgrade", "h2c", "HTTP2-Settings", "AAMAAABkAAQAAP__")...),
		get("/v2/bot/../oauth/accessToken", std()...),
		get("/v2/bot/%2e%2e/info", std()...),
		get("/v2/bot/message%2Fpush", std()...),
		get("/v2/bot/message%5cpush", std()...),
		get("/v2/bot/./info", std()...),
		rawHTTP("POST /v2/oauth/accessToken HTTP/1.1", std("Content-Type", "application/x-www-form-urlencoded",
			"Content-Length", strconv.Itoa(len(form))), form),
		rawHTTP("POST /oauth2/v2.1/token HTTP/1.1", std(), ""),
		rawHTTP("POST /oauth2/v3/token HTTP/1.1", std(), ""),
		get("/OAuth2/v2.1/verify?access_token=x", std()...),
		get("/v2/bot/info", "Host", host),
		get("/v2/bot/info", "Host", host, "Authorization", "Basic linetoken"),
		get("/v2/bot/info", "Host", host, "Authorization", "Bearer "+strings.Repeat("x", 40)),
		get("/v2/bot/info", "Host", host, "Authorization", "Bearer linetoken:12ab/"+keyAll),
		get("/v2/bot/info", "Host", host, "Authorization", "Bearer linetoken:"+fuzzChanA+":long-lived/"+keyAll),
		get("/v2/bot/info", "Host", host, "Authorization", "Bearer linetoken"),
		get("/v2/bot/info", "Host", host, "Authorization", "Bearer linetoken/"+keyAll),
		get("/v2/bot/info", "Host", host, "Authorization", "Bearer linetoken:"+fuzzChanA+"/"+keyAll),
		get("/v2/bot/info", "Host", host, "Authorization", "Bearer linetoken:42/"+keyAll),
		get("/v2/bot/info", "Host", host, "Authorization", "Bearer linetoken:"+fuzzChanB+":short-lived/"+keyAll),
		get("/v2/bot/info", "Host", host, "Authorization", "Bearer linetoken:"+fuzzChanB+"/"+keyAll),
		get("/v2/bot/info", "Host", host, "Authorization", "Bearer linetoken:"+fuzzChanB+"/"+keyOnlyA),
		get("/v2/bot/info", "Host", host, "Authorization", "Bearer linetoken:"+fuzzChanA+":v2.1/wrong-key"),
		get("/v2/bot/info", "Host", host, "Authorization", phAS),
		get("/v2/bot/info", "Host", host, "Authorization", phA, agent.HeaderKey, keyOnlyA),
		get("/v2/bot/info", "Host", host, "Authorization", phAS+"/"+keyOnlyA, agent.HeaderKey, keyOnlyA),
		get("/v2/bot/info", std("Origin", "https://evil.example")...),
		get("/v2/bot/info", "Host", "evil.example:7879", "Authorization", phA),
		get("/v2/bot/info", std("X-Big", strings.Repeat("a", 16<<10))...),
		rawHTTP("GET /v2/bot/info HTTP/1.0", []string{"Authorization", phA}, ""),
	}
}

// FuzzProxy: any HTTP/1.1 request a server would hand the proxy gets
// LINE's answer (from the fake, for a request this execution sent) or
// one of the proxy's documented JSON errors with its status; a refused
// request never reaches the fake; nothing but the fake's two hosts is
// ever contacted; no token the agent sent upstream shows in an answer;
// never a panic.
func FuzzProxy(f *testing.F) {
	fp := newFuzzProxy(f)
	for _, s := range proxySeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil || !servable(req) {
			return
		}
		mark := strconv.FormatInt(fp.exec.Add(1), 10)
		req.Header.Set(fuzzExecHeader, mark)
		req.RemoteAddr = fuzzRemoteAddr
		req = req.WithContext(t.Context())
		fp.srv.ResetRequests()
		fp.takeHosts()

		rec := httptest.NewRecorder()
		fp.h.ServeHTTP(rec, req)
		res := rec.Result()
		body, _ := io.ReadAll(res.Body)

		for _, hp := range fp.takeHosts() {
			if !fp.allowed[hp] {
				t.Fatalf("the proxy connected to %q, not one of the two upstreams", hp)
			}
		}
		var sent []oauthtest.Request // what this execution sent upstream
		for _, q := range fp.srv.Requests() {
			if q.Header.Get(fuzzExecHeader) == mark {
				sent = append(sent, q)
			}
		}
		toks := fp.tokens
		for _, q := range sent {
			if tok, ok := strings.CutPrefix(q.Header.Get("Authorization"), "Bearer "); ok && len(tok) > len("linetoken") {
				toks = append(toks, tok)
			}
			for k := range q.Header {
				if strings.HasPrefix(k, "X-Linetoken-") {
					t.Fatalf("%s reached upstream", k)
				}
			}
		}
		hdr := fmt.Sprint(res.Header)
		for _, tok := range toks {
			if bytes.Contains(body, []byte(tok)) || strings.Contains(hdr, tok) {
				t.Fatalf("a real token reached the client: %d %s", res.StatusCode, body)
			}
		}

		if id := res.Header.Get("X-Line-Request-Id"); id != "" {
			for _, q := range sent {
				if q.RequestID == id {
					return // LINE's answer to one of this request's attempts
				}
			}
			t.Fatalf("%d with X-Line-Request-Id %q, which the fake gave none of this request's %d attempts", res.StatusCode, id, len(sent))
		}
		var e apiErr
		fuzzJSON(t, res.Header.Get("Content-Type"), body, &e)
		if want, ok := proxyErrorStatus[e.Error]; !ok || want != res.StatusCode || e.Message == "" {
			t.Fatalf("%d is not a documented proxy answer: %s", res.StatusCode, body)
		}
		switch e.Error {
		case "upstream_unreachable", "upstream_timeout": // an attempt may have been sent
		case "token_unavailable":
			if res.Header.Get("Retry-After") == "" || e.Cause == "" {
				t.Fatalf("token_unavailable without Retry-After or a cause: %s", body)
			}
			fallthrough
		default:
			if len(sent) != 0 {
				t.Fatalf("refused with %s, yet %d attempts reached the fake: %v", e.Error, len(sent), sent)
			}
		}
	})
}

// servable reports whether Go's HTTP/1 server would hand req to a
// handler, and makes req what it would hand (net/http's conn.readRequest:
// a Host header valid and required from HTTP/1.1 on, valid header names
// and values; serverHandler: OPTIONS *
// answered by the server; an Expect other than 100-continue refused).
// Inputs asking the fake for more than maxFuzzContent bytes are left out
// too.
func servable(req *http.Request) bool {
	if req.ProtoMajor != 1 || req.Method == http.MethodOptions && req.RequestURI == "*" {
		return false
	}
	// ReadRequest has taken Host out of the header: req.Host is the
	// absolute-form target's host, else the Host header.
	if req.ProtoAtLeast(1, 1) && req.Host == "" && req.Method != http.MethodConnect || !validHost(req.Host) {
		return false
	}
	for k, vv := range req.Header {
		if k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) }) {
			return false
		}
		for _, v := range vv {
			if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
				return false
			}
		}
	}
	if exp := req.Header.Get("Expect"); exp != "" && !strings.EqualFold(strings.TrimSpace(exp), "100-continue") {
		return false
	}
	for _, m := range contentIDRE.FindAllStringSubmatch(req.URL.Path, -1) {
		if n, err := strconv.ParseInt(m[1], 10, 64); err != nil || n > maxFuzzContent {
			return false
		}
	}
	return true
}

// validHost is net/http's (httpguts.ValidHostHeader) check of a Host
// header: only bytes of a URI host and port.
func validHost(h string) bool {
	for i := range len(h) {
		c := h[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || strings.IndexByte("!$%&()*+,-.:;=[]'_~", c) >= 0) {
			return false
		}
	}
	return true
}
