package agent_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// Load test (issue 8, "Load"): 64 concurrent clients, each on a kept-alive
// connection (MaxIdleConnsPerHost 64), make 100,000 token requests in all
// to a running agent (New + Run on 127.0.0.1:0) that serves one v2.1
// channel of an oauthtest fake. Every answer must be a 200 with the one
// token the fake issued (0 errors), and the fake must have issued exactly
// one token. It asserts no time; it only reports the rate.
//
// Full size runs without -race (`make load`); under -race (`make race`) it
// runs loadRequestsRace requests, since the race runtime is several times
// slower.

const (
	loadClients = 64
	// loadRequests is the issue's figure; loadRequestsRace keeps `make
	// race` within a few seconds.
	loadRequests     = 100_000
	loadRequestsRace = 10_000
	// loadLimit bounds the run: 100,000 requests take a few seconds on a
	// loaded 2-core machine; past this the test stops and fails.
	loadLimit = 3 * time.Minute
	// loadRequestTimeout bounds one request (the agent answers from its
	// cache; only the first request may wait for the issue).
	loadRequestTimeout = 30 * time.Second
)

// raceEnabled reports whether the test binary was built with -race, from
// its build settings (this file cannot add build-tagged files to the
// package's tests).
func raceEnabled(t *testing.T) bool {
	t.Helper()
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build info: cannot tell whether -race is on")
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

func TestLoadTokenEndpoint(t *testing.T) {
	total := loadRequests
	if raceEnabled(t) {
		total = loadRequestsRace
	}
	srv := newFake(t)
	ch := srv.NewChannel(t)
	cfg := newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)})
	// No log (the access log would hold 100,000 lines) and the default
	// poll: the requests are what is measured.
	r := startAgent(t, srv, cfg, func(o *agent.Options) { o.Logger, o.PollInterval = nil, 0 })
	if !strings.HasPrefix(r.base, "http://127.0.0.1:") {
		t.Fatalf("listening on %q, want a 127.0.0.1 port", r.base)
	}

	tr := &http.Transport{MaxIdleConns: loadClients, MaxIdleConnsPerHost: loadClients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: loadRequestTimeout}
	url := r.base + "/v1/channels/" + ch.ID + "/token"

	var (
		next, done, errs atomic.Int64
		firstErr         atomic.Pointer[string]
		wg               sync.WaitGroup
		tokMu            sync.Mutex
		tokens           = map[served]int{} // answers by token and key ID
	)
	fail := func(format string, args ...any) {
		errs.Add(1)
		msg := fmt.Sprintf(format, args...)
		firstErr.CompareAndSwap(nil, &msg)
	}
	start := time.Now()
	deadline := start.Add(loadLimit)
	for range loadClients {
		wg.Go(func() {
			// One request per client, reused once each answer is read.
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				fail("%v", err)
				return
			}
			req.Header.Set(agent.HeaderRequest, "1")
			seen := map[served]int{}
			defer func() {
				tokMu.Lock()
				for k, n := range seen {
					tokens[k] += n
				}
				tokMu.Unlock()
			}()
			for next.Add(1) <= int64(total) && time.Now().Before(deadline) {
				s, err := getToken(hc, req)
				done.Add(1)
				if err != nil {
					fail("%v", err)
					continue
				}
				seen[s]++
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d clients, %d requests in %v: %.0f requests/s, %d errors",
		loadClients, done.Load(), elapsed.Round(time.Millisecond), float64(done.Load())/elapsed.Seconds(), errs.Load())

	if n := done.Load(); n != int64(total) {
		t.Errorf("%d of %d requests made within %v", n, total, loadLimit)
	}
	if n := errs.Load(); n != 0 {
		t.Errorf("%d errors; the first: %s", n, *firstErr.Load())
	}
	if n := srv.IssueCount(oauthtest.KindV21); n != 1 {
		t.Errorf("the fake issued %d v2.1 tokens, want 1", n)
	}
	if len(tokens) != 1 {
		t.Errorf("the answers carried %d distinct tokens, want 1", len(tokens))
	}
	for s, n := range tokens {
		info, ok := srv.Lookup(s.token)
		if !ok || info.ChannelID != ch.ID || info.Kind != oauthtest.KindV21 || info.KeyID != s.keyID {
			t.Errorf("a token served %d times with key_id %q is not the channel's valid v2.1 token at the fake (%+v, %v)", n, s.keyID, info, ok)
		}
	}
	if err := r.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if n := srv.ActiveTokens(ch.ID); n != 0 {
		t.Errorf("%d v2.1 tokens active at the fake after the agent stopped, want 0 (the memory store revokes)", n)
	}
}

// served is what a token answer carried.
type served struct{ token, keyID string }

// getToken makes one token request and checks the answer: 200, no-store,
// and a v2.1 token object.
func getToken(hc *http.Client, req *http.Request) (served, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return served{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return served{}, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return served{}, fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		return served{}, fmt.Errorf("Cache-Control %q, want no-store", cc)
	}
	var v tokenReply
	if err := json.Unmarshal(body, &v); err != nil {
		return served{}, fmt.Errorf("the answer is not JSON: %w", err)
	}
	if v.AccessToken == "" || v.TokenType != "Bearer" || v.ExpiresIn <= 0 || v.Kind != "v2.1" || v.KeyID == nil {
		return served{}, fmt.Errorf("answer with token_type %q, expires_in %d, kind %q, access_token empty: %v, key_id missing: %v",
			v.TokenType, v.ExpiresIn, v.Kind, v.AccessToken == "", v.KeyID == nil)
	}
	return served{v.AccessToken, *v.KeyID}, nil
}
