package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// This file holds what the proxy comparison (proxy_bench_test.go) shares:
// the agent's proxy and the floor, httputil.ReverseProxy setting a static
// Authorization header, forwarding to one upstream in one process; the
// clients; and TestProxyAllocsNearFloor, which checks that both answer
// alike and holds the proxy's allocations near the floor's (no timing).

// The proxy comparison's wire and server settings.
const (
	botInfoPath = "/v2/bot/info"
	pushPath    = "/v2/bot/message/push"
	// pushJSON is a valid push of one text message (the agent's proxy
	// tests' pushBody).
	pushJSON = `{"to":"U4af4980629a7c1a7f2b3c4d5e6f7a8b9","messages":[{"type":"text","text":"hello"}]}`
	// barePushAnswer is what the bare upstream answers a push: LINE's
	// documented shape, one sent message.
	barePushAnswer = `{"sentMessages":[{"id":"461230966842064897","quoteToken":"IStG5h1Tz7b"}]}`
	// placeholderAuth is what a bot's SDK sends the proxy.
	placeholderAuth = "Bearer linetoken"
	// Both handlers are served with the agent's proxy server settings
	// (internal/agent newProxyServer): only the handler differs.
	proxyServerReadHeaderTimeout = 10 * time.Second
	proxyServerIdleTimeout       = 2 * time.Minute
	proxyServerMaxHeaderBytes    = 64 << 10
	// floorIdleConnsPerHost is the floor's upstream pool, the agent's
	// proxyTransport's (a serial client needs one connection).
	floorIdleConnsPerHost = 64
	// maxAnswer caps what a client or the bare upstream reads of a body:
	// every answer here is a few hundred bytes.
	maxAnswer = 64 << 10
	// proxyWarmup is how many requests each path makes before it is
	// measured: connections dialled, pools filled.
	proxyWarmup = 50
)

// The upstreams both paths forward to: the oauthtest fake of LINE, or
// bare, a minimal handler that checks the Authorization header and
// answers constant bodies (the fake's own bot info), so that its cost
// does not dilute the comparison.
const (
	upstreamFake = "fake"
	upstreamBare = "bare"
)

// proxyRig is the agent's proxy and the floor, both forwarding to one
// upstream, with the token the floor sends.
type proxyRig struct {
	fake    *oauthtest.Server // issues the agent's token (and is the upstream for upstreamFake)
	ch      oauthtest.Channel
	token   string // the agent's v2.1 token, which the floor sends as a static header
	botInfo []byte // the fake's GET /v2/bot/info body for the channel
	proxy   string // the agent's proxy handler, http://host:port
	floor   string // the ReverseProxy with a BufferPool, http://host:port
	floorNP string // the ReverseProxy without one, http://host:port
}

// bareUpstream answers GET /v2/bot/info and POST push with constant
// bodies to requests carrying auth, 401 to others, once set; 503 before.
type bareUpstream struct {
	answers atomic.Pointer[bareAnswers]
}

type bareAnswers struct {
	auth    string // the Authorization header value it takes
	botInfo []byte
}

func (u *bareUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := u.answers.Load()
	if a == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if r.Header.Get("Authorization") != a.auth {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	n, err := io.Copy(io.Discard, io.LimitReader(r.Body, maxAnswer))
	var body []byte
	switch {
	case err != nil:
		w.WriteHeader(http.StatusBadRequest)
		return
	case r.Method == http.MethodGet && r.URL.Path == botInfoPath:
		body = a.botInfo
	case r.Method == http.MethodPost && r.URL.Path == pushPath && n > 0:
		body = []byte(barePushAnswer)
	default:
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// serveLoopback serves h on a 127.0.0.1 port with the agent's proxy
// server settings until tb ends, and returns its http://host:port.
func serveLoopback(tb testing.TB, h http.Handler) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: proxyServerReadHeaderTimeout,
		IdleTimeout: proxyServerIdleTimeout, MaxHeaderBytes: proxyServerMaxHeaderBytes,
		ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	tb.Cleanup(func() { _ = srv.Close(); <-done })
	return "http://" + l.Addr().String()
}

// startProxyRig runs an agent for one v2.1 channel of a new fake with its
// proxy on, forwarding to the upstream named (upstreamFake or
// upstreamBare), and the floor to the same upstream with the agent's
// token, until tb ends.
func startProxyRig(tb testing.TB, upstreamName string) *proxyRig {
	tb.Helper()
	fake := oauthtest.NewServer()
	tb.Cleanup(fake.Close)
	rig := &proxyRig{fake: fake, ch: fake.NewChannel(tb)}
	apiURL, dataURL := fake.URL(), fake.DataURL()
	var bare *bareUpstream
	if upstreamName == upstreamBare {
		bare = &bareUpstream{}
		apiURL = serveLoopback(tb, bare)
		dataURL = apiURL
	}
	cfg := &agent.Config{
		Listen: "127.0.0.1:0", BaseURL: fake.URL(),
		Channels: []agent.Channel{{ID: rig.ch.ID, Kind: oauth.KindV21, Secret: agent.Secret(rig.ch.Secret), Key: rig.ch.Key}},
		// Run binds the proxy's own listener too (unused: both handlers
		// are served alike by serveLoopback); localhost keeps it apart
		// from the token API's address.
		Proxy: &agent.ProxyConfig{Listen: "localhost:0", APIURL: apiURL, DataURL: dataURL},
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	tokenAPI := runAgent(tb, cfg, fake)
	hc := newAgentHTTPClient()
	defer hc.CloseIdleConnections()
	_, body := fetch(tb, hc, tokenAPI.url)
	var tok tokenAnswer
	if err := json.Unmarshal(body, &tok); err != nil {
		tb.Fatalf("token answer is not JSON: %v", err)
	}
	if info, ok := fake.Lookup(tok.AccessToken); !ok || info.ChannelID != rig.ch.ID || info.Kind != oauthtest.KindV21 {
		tb.Fatal("the agent's token is not the channel's valid v2.1 token at the fake")
	}
	rig.token = tok.AccessToken
	rig.botInfo = rig.direct(tb, hc, fake.URL())
	if bare != nil {
		bare.answers.Store(&bareAnswers{auth: "Bearer " + rig.token, botInfo: rig.botInfo})
	}
	rig.proxy = serveLoopback(tb, tokenAPI.a.ProxyHandler())
	rig.floor = serveLoopback(tb, newFloor(tb, apiURL, rig.token, &floorBuffers{}))
	rig.floorNP = serveLoopback(tb, newFloor(tb, apiURL, rig.token, nil))
	return rig
}

// direct is the channel's bot info, asked of base with the token itself.
func (rig *proxyRig) direct(tb testing.TB, hc *http.Client, base string) []byte {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, base+botInfoPath, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+rig.token)
	resp, err := hc.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil || resp.StatusCode != http.StatusOK || len(body) == 0 {
		tb.Fatalf("bot info from the fake: %d %.200s %v", resp.StatusCode, body, err)
	}
	return body
}

// agentRun is a running agent and its token endpoint.
type agentRun struct {
	a   *agent.Agent
	url string // the channel's token endpoint
}

// runAgent runs an agent for cfg (one channel of fake) until tb ends and
// returns it once its token API listens.
func runAgent(tb testing.TB, cfg *agent.Config, fake *oauthtest.Server) agentRun {
	tb.Helper()
	addrs := make(chan string, 1)
	a, err := agent.New(cfg, agent.Options{Clock: fake.Now, OnListen: func(addr string) { addrs <- addr }})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-runErr:
			if err != nil {
				tb.Errorf("agent: %v", err)
			}
		case <-time.After(time.Minute): // Run's own bound is 20s
			tb.Error("the agent did not stop within a minute")
		}
	})
	select {
	case addr := <-addrs:
		return agentRun{a: a, url: "http://" + addr + "/v1/channels/" + cfg.Channels[0].ID + "/token"}
	case err := <-runErr:
		tb.Fatalf("the agent stopped before listening: %v", err)
	case <-time.After(time.Minute):
		tb.Fatal("the agent did not listen within a minute")
	}
	return agentRun{}
}

// newFloor is the floor for a Go proxy: httputil.ReverseProxy to
// upstream, setting a static Authorization header, on its own transport
// (Go's default one, with the agent's idle pool per host). Without a
// BufferPool (pool nil), ReverseProxy makes a 32 KiB copy buffer for
// every answer.
func newFloor(tb testing.TB, upstream, token string, pool httputil.BufferPool) *httputil.ReverseProxy {
	tb.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		tb.Fatal(err)
	}
	auth := "Bearer " + token
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = floorIdleConnsPerHost
	tb.Cleanup(t.CloseIdleConnections)
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set("Authorization", auth)
		},
		Transport:  t,
		BufferPool: pool,
		ErrorLog:   log.New(io.Discard, "", 0),
	}
}

// floorBufferSize is ReverseProxy's own copy buffer size.
const floorBufferSize = 32 << 10

// floorBuffers is the floor's BufferPool: ReverseProxy's copy buffers,
// reused.
type floorBuffers struct{ p sync.Pool }

func (f *floorBuffers) Get() []byte {
	if b, ok := f.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, floorBufferSize)
}

func (f *floorBuffers) Put(b []byte) { f.p.Put(&b) }

// proxyCall is one client's request, made again and again: GET bot info
// or a push, with the placeholder (which the floor ignores and replaces).
type proxyCall struct {
	hc      *http.Client
	req     *http.Request
	payload []byte // the body of each request; nil for none
	out     bytes.Buffer
}

func newProxyCall(hc *http.Client, method, url string, payload []byte) (*proxyCall, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", placeholderAuth)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = int64(len(payload))
	}
	return &proxyCall{hc: hc, req: req, payload: payload}, nil
}

// do makes the request once and returns the answer's body (valid until
// the next do) when it is a 200 with a body.
func (c *proxyCall) do() ([]byte, error) {
	if c.payload != nil {
		c.req.Body = io.NopCloser(bytes.NewReader(c.payload))
	}
	resp, err := c.hc.Do(c.req)
	if err != nil {
		return nil, err
	}
	c.out.Reset()
	_, err = c.out.ReadFrom(io.LimitReader(resp.Body, maxAnswer))
	resp.Body.Close()
	switch {
	case err != nil:
		return nil, err
	case resp.StatusCode != http.StatusOK || c.out.Len() == 0:
		return nil, fmt.Errorf("%s %s: status %d: %.200s", c.req.Method, c.req.URL.Path, resp.StatusCode, c.out.Bytes())
	}
	return c.out.Bytes(), nil
}

// warm makes n calls, failing tb on the first error.
func (c *proxyCall) warm(tb testing.TB, n int) {
	tb.Helper()
	for range n {
		if _, err := c.do(); err != nil {
			tb.Fatal(err)
		}
	}
}

// call is a request to base (rig.proxy, rig.floor or rig.floorNP) on its
// own client.
func (rig *proxyRig) call(tb testing.TB, base, method, path string, payload []byte) *proxyCall {
	tb.Helper()
	hc := newAgentHTTPClient()
	tb.Cleanup(hc.CloseIdleConnections)
	c, err := newProxyCall(hc, method, base+path, payload)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// paths are the ways through to the upstream, by name: the agent's
// proxy, the floor and the floor without a BufferPool.
func (rig *proxyRig) paths() []struct{ name, base string } {
	return []struct{ name, base string }{{"proxy", rig.proxy}, {"floor", rig.floor}, {"floor-nopool", rig.floorNP}}
}

// The allocation bound of TestProxyAllocsNearFloor: the proxy's GET may
// allocate floorAllocRatio times the floor's plus floorAllocSlack.
const (
	// floorAllocRatio is the target (1.1x the floor).
	floorAllocRatio = 1.1
	// floorAllocSlack absorbs a pool refilled after a GC (counts repeat
	// to within one run to run).
	floorAllocSlack = 2
)

// TestProxyAllocsNearFloor checks what BenchmarkProxyGet and
// BenchmarkProxyPush compare, under -race too: the agent's proxy and the
// floor answer GET /v2/bot/info with 200 and the fake's own bot info,
// byte for byte, and a push with 200 and one sent message, both delivered
// by the fake with the channel's token (the proxy's with a retry key it
// added). Then, without -race, it holds the allocation target as a test:
// per GET (client, server, proxy and upstream in one process), the proxy
// allocates at most floorAllocRatio times the floor plus floorAllocSlack,
// against both upstreams. It asserts no time.
func TestProxyAllocsNearFloor(t *testing.T) {
	for _, up := range []string{upstreamFake, upstreamBare} {
		t.Run(up, func(t *testing.T) {
			rig := startProxyRig(t, up)
			var calls []*proxyCall
			for _, p := range rig.paths() {
				calls = append(calls, rig.call(t, p.base, http.MethodGet, botInfoPath, nil))
			}
			for _, c := range calls {
				body, err := c.do()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(body, rig.botInfo) {
					t.Errorf("%s: bot info %.200s, want the fake's %s", c.req.URL.Host, body, rig.botInfo)
				}
			}
			if up == upstreamFake {
				rig.checkPushes(t)
			}
			if raceDetector {
				t.Log("allocation counts differ under -race; make bench-check runs this test without it too")
				return
			}
			proxy, floor := calls[0], calls[1]
			proxy.warm(t, proxyWarmup)
			floor.warm(t, proxyWarmup)
			p, f := allocsPerGet(t, proxy), allocsPerGet(t, floor)
			t.Logf("GET %s via %s upstream: proxy %.1f allocs/op, floor %.1f allocs/op (%.2fx)", botInfoPath, up, p, f, p/f)
			if limit := f*floorAllocRatio + floorAllocSlack; p > limit {
				t.Errorf("the proxy's GET allocates %.1f times per request, more than %.1f (the floor's %.1f x %.1f + %d)",
					p, limit, f, floorAllocRatio, floorAllocSlack)
			}
		})
	}
}

// allocsPerGet is c's allocations per call, every side of the exchange
// in this process counted.
func allocsPerGet(t *testing.T, c *proxyCall) float64 {
	t.Helper()
	const runs = 300 // enough that a pool refill once in a while averages out
	var err error
	n := testing.AllocsPerRun(runs, func() {
		if _, e := c.do(); e != nil && err == nil {
			err = e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkPushes pushes once through each path and checks both answers are
// the fake's, each a delivered send of pushJSON for the channel: the
// proxy's with a retry key (a UUID) it added, the floor's with none.
func (rig *proxyRig) checkPushes(t *testing.T) {
	t.Helper()
	before := len(rig.fake.Sends())
	proxy := rig.call(t, rig.proxy, http.MethodPost, pushPath, []byte(pushJSON))
	floor := rig.call(t, rig.floor, http.MethodPost, pushPath, []byte(pushJSON))
	for _, c := range []*proxyCall{proxy, floor} {
		body, err := c.do()
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			SentMessages []oauthtest.SentMessage `json:"sentMessages"`
		}
		if err := json.Unmarshal(body, &out); err != nil || len(out.SentMessages) != 1 {
			t.Errorf("%s: push answer %.200s is not one sent message", c.req.URL.Host, body)
		}
	}
	sends := rig.fake.Sends()[before:]
	if len(sends) != 2 {
		t.Fatalf("the fake accepted %d pushes, want 2", len(sends))
	}
	for i, s := range sends {
		if s.ChannelID != rig.ch.ID || string(s.Body) != pushJSON {
			t.Errorf("send %d: channel %s, body %.200s", i, s.ChannelID, s.Body)
		}
	}
	if _, err := uuid.Parse(sends[0].RetryKey); err != nil {
		t.Errorf("the proxy's push carried retry key %q, not a UUID", sends[0].RetryKey)
	}
	if sends[1].RetryKey != "" {
		t.Errorf("the floor's push carried retry key %q", sends[1].RetryKey)
	}
}
