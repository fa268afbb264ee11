package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/internal/testredis"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// refreshes reads an agent's linetoken_token_refreshes_total for the v2.1
// channel id and result (0 when absent).
func (p *agentProc) refreshes(id, result string) float64 {
	p.t.Helper()
	v, _ := metricValue(p.scrape(), "linetoken_token_refreshes_total", map[string]string{"channel": id, "kind": "v2.1", "result": result})
	return v
}

// TestAgentFleet: three agent processes on one real redis-server. The
// first two, started one right after the other (racing for the store's
// lock or loading what the first saved), make one issue between them and
// serve the same token; a third started later serves the token already in Redis
// without issuing. The token is then revoked at LINE and reported to
// agents 1 and 2 at once: exactly one more issue, and both serve the new
// token. Agent 3, not told, keeps serving the token it holds (nothing
// makes a TokenSource re-read the store while its token is fresh) until
// its own bots report it: then it loads the new token from Redis, still
// without issuing. At SIGTERM the shared token is left valid (other
// agents may serve it): only the memory store revokes at exit.
func TestAgentFleet(t *testing.T) {
	f := newFixture(t)
	r := testredis.Start(t)
	args := []string{"--listen", "127.0.0.1:0", "--redis", "redis://" + r.Addr() + "/0"}
	a1 := startAgent(t, 1, f.env, args...)
	a2 := startAgent(t, 1, f.env, args...)
	a1.waitReady()
	a2.waitReady()
	id := f.ch.ID
	tok := a1.token(a1.client, a1.base, id, "", "", f.srv)
	if t2 := a2.token(a2.client, a2.base, id, "", "", f.srv); t2.AccessToken != tok.AccessToken {
		t.Errorf("agents 1 and 2 serve different tokens")
	}
	if n := f.srv.IssueCount(oauthtest.KindV21); n != 1 {
		t.Errorf("%d issues for two agents' first token, want 1", n)
	}
	if issued := a1.refreshes(id, "issued") + a2.refreshes(id, "issued"); issued != 1 {
		t.Errorf("agents 1 and 2 report %v issues between them, want 1", issued)
	}

	a3 := startAgent(t, 1, f.env, args...)
	a3.waitReady()
	if t3 := a3.token(a3.client, a3.base, id, "", "", f.srv); t3.AccessToken != tok.AccessToken {
		t.Errorf("agent 3, started later, serves another token than the one in Redis")
	}
	if n := f.srv.IssueCount(oauthtest.KindV21); n != 1 {
		t.Errorf("%d issues after agent 3 started, want 1: it should load the token from Redis", n)
	}
	if issued, loaded := a3.refreshes(id, "issued"), a3.refreshes(id, "loaded"); issued != 0 || loaded != 1 {
		t.Errorf("agent 3 reports %v issued and %v loaded, want 0 and 1", issued, loaded)
	}

	// One invalidation, reported to agents 1 and 2 at once.
	if err := f.srv.Client(t, id).RevokeToken(context.Background(), tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"access_token": tok.AccessToken})
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, a := range []*agentProc{a1, a2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hr, _ := http.NewRequest(http.MethodPost, a.base+"/v1/channels/"+id+"/token/invalidate", strings.NewReader(string(body)))
			hr.Header.Set("X-Linetoken-Request", "1")
			if resp, err := a.client.Do(hr); err == nil {
				codes[i] = resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if codes[0] != http.StatusNoContent || codes[1] != http.StatusNoContent {
		t.Fatalf("invalidate answered %v, want 204 from both", codes)
	}
	newTok := a1.token(a1.client, a1.base, id, "", "", f.srv)
	if newTok.AccessToken == tok.AccessToken {
		t.Fatal("agent 1 still serves the revoked token after its invalidation")
	}
	if t2 := a2.token(a2.client, a2.base, id, "", "", f.srv); t2.AccessToken != newTok.AccessToken {
		t.Errorf("agent 2 serves another token than agent 1 after the invalidation")
	}
	if n := f.srv.IssueCount(oauthtest.KindV21); n != 2 {
		t.Errorf("%d issues after one invalidation reported to two agents, want 2", n)
	}

	// Agent 3 was not told.
	_, b := a3.get(a3.client, a3.base, tokenPath(id, ""), v1(""))
	var held tokenAnswer
	_ = json.Unmarshal(b, &held)
	if held.AccessToken != tok.AccessToken {
		t.Errorf("agent 3, not told of the invalidation, changed its token: the account of this behaviour above (and in the README) is out of date")
	}
	invalidate(t, a3, id, "", "", tok.AccessToken)
	testkit.Eventually(t, agentStartLimit, "agent 3 serving the new token", func() bool {
		_, b := a3.get(a3.client, a3.base, tokenPath(id, ""), v1(""))
		var ta tokenAnswer
		return json.Unmarshal(b, &ta) == nil && ta.AccessToken == newTok.AccessToken
	})
	a3.token(a3.client, a3.base, id, "", "", f.srv)
	if n := f.srv.IssueCount(oauthtest.KindV21); n != 2 {
		t.Errorf("%d issues after agent 3's invalidation, want still 2", n)
	}
	if issued := a3.refreshes(id, "issued"); issued != 0 {
		t.Errorf("agent 3 issued %v tokens, want 0", issued)
	}

	for i, a := range []*agentProc{a1, a2, a3} {
		if code, _ := a.stop(syscall.SIGTERM); code != exitOK {
			t.Errorf("agent %d: exit %d after SIGTERM\n%s", i+1, code, a.output())
		}
	}
	if _, ok := f.srv.Lookup(newTok.AccessToken); !ok {
		t.Errorf("the token shared through Redis was revoked at exit")
	}
}

// TestAgentRedisPassword: with a redis-server that requires a password,
// the agent authenticates with LINE_REDIS_PASSWORD or
// LINE_REDIS_PASSWORD_FILE and shares the token through it. Without the
// password (or with a wrong one) it does not exit and does not issue: it
// answers 503 token_unavailable (cause store_unavailable) and /readyz
// says why. A password inside --redis is refused with exit 2, saying
// why, and is never printed.
func TestAgentRedisPassword(t *testing.T) {
	f := newFixture(t)
	r := testredis.Start(t)
	pw := "redispw-" + strings.Repeat("Z9", 12)
	if err := r.Client(t).ConfigSet(context.Background(), "requirepass", pw).Err(); err != nil {
		t.Fatal(err)
	}
	url := "redis://" + r.Addr() + "/0"
	args := []string{"--listen", "127.0.0.1:0", "--redis", url}

	p := startAgent(t, 1, with(f.env, envRedisPassword, pw), args...)
	p.waitReady()
	tok := p.token(p.client, p.base, f.ch.ID, "", "", f.srv)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: pw})
	defer rc.Close()
	if keys, err := rc.Keys(context.Background(), "*").Result(); err != nil || len(keys) == 0 {
		t.Errorf("Redis holds keys %q (%v): the agent saved nothing", keys, err)
	}

	pwFile := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p2 := startAgent(t, 1, with(f.env, envRedisPasswordFile, pwFile), args...)
	p2.waitReady()
	if t2 := p2.token(p2.client, p2.base, f.ch.ID, "", "", f.srv); t2.AccessToken != tok.AccessToken {
		t.Errorf("the agent given LINE_REDIS_PASSWORD_FILE serves another token")
	}

	for name, env := range map[string]map[string]string{
		"no password":    f.env,
		"wrong password": with(f.env, envRedisPassword, "wrong-"+pw[:8]),
	} {
		np := startAgent(t, 1, env, args...)
		resp, b := np.do(np.client, np.base, req{path: tokenPath(f.ch.ID, ""), header: v1("")})
		var e apiErrorBody
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode != http.StatusServiceUnavailable || e.Error != "token_unavailable" || e.Cause != "store_unavailable" ||
			resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: %d %s (Retry-After %q), want 503 token_unavailable, cause store_unavailable",
				name, resp.StatusCode, b, resp.Header.Get("Retry-After"))
		}
		code, rb := np.get(np.client, np.base, "/readyz", nil)
		if code != http.StatusServiceUnavailable || !strings.Contains(string(rb), "store_unavailable") {
			t.Errorf("%s: /readyz %d %s, want 503 naming store_unavailable", name, code, rb)
		}
		if code, _ := np.stop(syscall.SIGTERM); code != exitOK {
			t.Errorf("%s: exit %d after SIGTERM\n%s", name, code, np.output())
		}
		if strings.Contains(np.output(), pw) {
			t.Errorf("%s: the Redis password was printed", name)
		}
	}
	if n := f.srv.IssueCount(oauthtest.KindV21); n != 1 {
		t.Errorf("%d issues, want 1: agents that cannot reach the store must not issue", n)
	}

	res := runAgentToExit(t, f.env, "--listen", "127.0.0.1:0", "--redis", "redis://:"+pw+"@"+r.Addr()+"/0")
	if res.code != exitUsage || !strings.Contains(res.stderr, "--redis: a password inside the Redis URL is refused") ||
		!strings.Contains(res.stderr, envRedisPassword) {
		t.Errorf("a password inside --redis: want exit 2 saying why and naming %s, got %s", envRedisPassword, res)
	}
	for _, out := range []string{res.stdout + res.stderr, p.output(), p2.output()} {
		if strings.Contains(out, pw) || strings.Contains(out, pw[8:]) {
			t.Errorf("the Redis password was printed")
		}
	}
}
