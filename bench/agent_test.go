package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// This file holds what the agent's token-endpoint comparison shares: the
// agent (package internal/agent, importable here because this module's
// path, github.com/linetoken/linetoken/bench, lies under the tree that
// holds internal/), the floor (a bare net/http handler serving a constant
// body), the clients, and TestAgentAndFloorAnswer, which checks that both
// serve well-formed answers of one size (no timing).

// agentClients is how many clients hit the token endpoint at once, each
// on its own kept-alive connection (the issue's figure).
const agentClients = 64

// runningAgent is an agent serving one v2.1 channel of an oauthtest fake
// on 127.0.0.1, running until tb ends.
type runningAgent struct {
	fake *oauthtest.Server
	ch   oauthtest.Channel
	url  string // the channel's token endpoint
}

func startAgent(tb testing.TB) *runningAgent {
	tb.Helper()
	srv := oauthtest.NewServer()
	tb.Cleanup(srv.Close)
	ch := srv.NewChannel(tb)
	cfg := &agent.Config{
		Listen: "127.0.0.1:0", BaseURL: srv.URL(),
		Channels: []agent.Channel{{ID: ch.ID, Kind: oauth.KindV21, Secret: agent.Secret(ch.Secret), Key: ch.Key}},
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	return &runningAgent{fake: srv, ch: ch, url: runAgent(tb, cfg, srv).url}
}

// startFloor serves body, with the agent's answer headers, on every
// request to a 127.0.0.1 port, with the agent's server settings, until tb
// ends. It returns the URL to ask (the agent's path, which it ignores).
func startFloor(tb testing.TB, body []byte) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	// The agent's own server settings (agent.NewHTTPServer): only the
	// handler differs.
	srv := agent.NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}), slog.New(slog.DiscardHandler))
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	tb.Cleanup(func() { _ = srv.Close(); <-done })
	return "http://" + l.Addr().String() + "/v1/channels/floor/token"
}

// newAgentHTTPClient is every client's HTTP client: one kept-alive
// connection per client goroutine.
func newAgentHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        agentClients,
		MaxIdleConnsPerHost: agentClients,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// tokenClient asks one URL for a token, as a bot does (the guard header
// set), reusing its request and body buffer.
type tokenClient struct {
	hc   *http.Client
	req  *http.Request
	body bytes.Buffer
}

func newTokenClient(hc *http.Client, url string) (*tokenClient, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(agent.HeaderRequest, "1")
	return &tokenClient{hc: hc, req: req}, nil
}

// get makes one request and returns the answer's body (valid until the
// next get) when it is a 200 of size bytes.
func (c *tokenClient) get(size int) ([]byte, error) {
	resp, err := c.hc.Do(c.req)
	if err != nil {
		return nil, err
	}
	c.body.Reset()
	_, err = c.body.ReadFrom(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return nil, err
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("status %d: %.200s", resp.StatusCode, c.body.Bytes())
	case c.body.Len() != size:
		return nil, fmt.Errorf("a body of %d bytes, want %d", c.body.Len(), size)
	}
	return c.body.Bytes(), nil
}

// drive makes n requests to url from agentClients goroutines at once, each
// expecting a 200 of size bytes, and returns each request's latency. before
// runs once every client has made one request (its connection dialled);
// the n requests follow. Every loop is bounded by n and by limit.
func drive(hc *http.Client, url string, size, n int, limit time.Duration, before func()) ([]time.Duration, error) {
	clients := make([]*tokenClient, agentClients)
	for i := range clients {
		c, err := newTokenClient(hc, url)
		if err != nil {
			return nil, err
		}
		clients[i] = c
	}
	var (
		wg       sync.WaitGroup
		firstErr atomic.Pointer[error]
		failed   = func(err error) { firstErr.CompareAndSwap(nil, &err) }
	)
	// Warm-up: every client at once, so that each dials its connection.
	for _, c := range clients {
		wg.Go(func() {
			if _, err := c.get(size); err != nil {
				failed(err)
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return nil, *p
	}
	lat := make([][]time.Duration, agentClients)
	var next atomic.Int64
	before()
	deadline := time.Now().Add(limit)
	for i, c := range clients {
		wg.Go(func() {
			l := make([]time.Duration, 0, n/agentClients+1)
			for next.Add(1) <= int64(n) {
				t := time.Now()
				if _, err := c.get(size); err != nil {
					failed(err)
					break
				}
				l = append(l, time.Since(t))
				if t.After(deadline) {
					failed(fmt.Errorf("%d requests not done within %v", n, limit))
					break
				}
			}
			lat[i] = l
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return nil, *p
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return all, nil
}

// tokenAnswer is the agent's token object.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Expiry      string `json:"expiry"`
	KeyID       string `json:"key_id"`
	Kind        string `json:"kind"`
}

// firstAnswer fetches the agent's answer once, checks it is the channel's
// valid v2.1 token at the fake, and returns its body: the floor serves the
// same bytes.
func (ra *runningAgent) firstAnswer(tb testing.TB, hc *http.Client) []byte {
	tb.Helper()
	_, body := fetch(tb, hc, ra.url)
	ra.checkAnswer(tb, body)
	return body
}

// fetch asks url for a token as a bot does and returns the answer's
// headers and body, failing tb unless it is a 200.
func fetch(tb testing.TB, hc *http.Client, url string) (http.Header, []byte) {
	tb.Helper()
	c, err := newTokenClient(hc, url)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := hc.Do(c.req)
	if err != nil {
		tb.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s: %d %.200s %v", url, resp.StatusCode, body, err)
	}
	return resp.Header, body
}

// checkAnswer fails tb unless body is the channel's valid v2.1 token
// object.
func (ra *runningAgent) checkAnswer(tb testing.TB, body []byte) {
	tb.Helper()
	var v tokenAnswer
	if err := json.Unmarshal(body, &v); err != nil {
		tb.Fatalf("token answer is not JSON: %v", err)
	}
	info, ok := ra.fake.Lookup(v.AccessToken)
	if !ok || info.ChannelID != ra.ch.ID || info.Kind != oauthtest.KindV21 || info.KeyID != v.KeyID ||
		v.TokenType != "Bearer" || v.ExpiresIn <= 0 || v.Kind != "v2.1" || v.Expiry == "" {
		tb.Fatalf("token answer (token_type %q, expires_in %d, expiry %q, key_id %q, kind %q) is not the channel's valid v2.1 token at the fake (%v)",
			v.TokenType, v.ExpiresIn, v.Expiry, v.KeyID, v.Kind, ok)
	}
}

// TestAgentAndFloorAnswer checks what BenchmarkAgentToken compares, under
// -race too: the agent answers 64 concurrent clients with the channel's
// one valid token (one issue at the fake), and the floor answers them with
// a body of the same size and the same headers. It asserts no time.
func TestAgentAndFloorAnswer(t *testing.T) {
	ra := startAgent(t)
	hc := newAgentHTTPClient()
	defer hc.CloseIdleConnections()
	want := ra.firstAnswer(t, hc)
	floor := startFloor(t, want)
	const perClient = 4
	for _, u := range []string{ra.url, floor} {
		lat, err := drive(hc, u, len(want), agentClients*perClient, time.Minute, func() {})
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if len(lat) != agentClients*perClient {
			t.Errorf("%s: %d requests timed, want %d", u, len(lat), agentClients*perClient)
		}
	}
	// The agent's answer, once more after the load, is still the one token;
	// the floor's is byte for byte the agent's first, with its headers.
	c, err := newTokenClient(hc, ra.url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := c.get(len(want))
	if err != nil {
		t.Fatal(err)
	}
	ra.checkAnswer(t, body)
	var first, last tokenAnswer
	if json.Unmarshal(want, &first) != nil || json.Unmarshal(body, &last) != nil || first.AccessToken != last.AccessToken {
		t.Error("the agent served two different tokens")
	}
	if n := ra.fake.IssueCount(oauthtest.KindV21); n != 1 {
		t.Errorf("the fake issued %d v2.1 tokens, want 1", n)
	}
	for _, u := range []string{ra.url, floor} {
		h, b := fetch(t, hc, u)
		if ct, cc := h.Get("Content-Type"), h.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
			t.Errorf("%s: Content-Type %q, Cache-Control %q", u, ct, cc)
		}
		if u == floor && !bytes.Equal(b, want) {
			t.Error("the floor's body is not the agent's first answer")
		}
	}
}
