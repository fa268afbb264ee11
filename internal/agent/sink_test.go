package agent_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

func TestSinkContentModeAndAtomicReplacement(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	dir := t.TempDir()
	raw, js := filepath.Join(dir, "raw.token"), filepath.Join(dir, "token.json")
	r := startAgent(t, srv, newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21,
		agent.Sink{Path: raw, Format: "raw", Mode: 0o640}, agent.Sink{Path: js, Format: "json"})}))
	tok := r.token(ch.ID, "")
	sinkHolds(t, raw, tok.AccessToken) // no newline: the exact token
	checkSinkJSON(t, js, tok.AccessToken, ch.ID)
	assertMode(t, raw, 0o640)
	assertMode(t, js, 0o600)

	// A reader sees the old file or the new one, never a torn one, while
	// invalidations replace it.
	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	seen := map[string]bool{} // every content read; the reader's own until Wait
	wg.Go(func() {
		for !stop.Load() {
			b, err := os.ReadFile(raw)
			if err != nil {
				t.Errorf("reading the sink during a rotation: %v", err)
				return
			}
			seen[string(b)] = true
			reads.Add(1)
		}
	})
	served := map[string]bool{tok.AccessToken: true}
	prev, _ := os.Stat(raw)
	const rotations = 3
	for range rotations {
		revokeAndReport(t, r, srv, ch.ID, tok.AccessToken)
		next := r.token(ch.ID, "")
		if next.AccessToken == tok.AccessToken {
			t.Fatal("no new token after the invalidation")
		}
		tok = next
		served[tok.AccessToken] = true
		sinkHolds(t, raw, tok.AccessToken)
		checkSinkJSON(t, js, tok.AccessToken, ch.ID)
		cur, _ := os.Stat(raw)
		if os.SameFile(prev, cur) {
			t.Error("the sink was rewritten in place, not replaced")
		}
		if cur.Mode().Perm() != 0o640 {
			t.Errorf("mode after replacement %v", cur.Mode().Perm())
		}
		prev = cur
		srv.Advance(31 * time.Second) // past the invalidation limit
	}
	stop.Store(true)
	wg.Wait()
	if reads.Load() == 0 || len(seen) < 2 {
		t.Errorf("the reader read %d times and saw %d tokens", reads.Load(), len(seen))
	}
	for content := range seen {
		if !served[content] {
			t.Errorf("the sink held %d bytes that are no token served (torn?)", len(content))
		}
	}
	// No temp file is left behind.
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"raw.token", "token.json"}) {
		t.Errorf("the sink directory holds %v", names)
	}
	if got := r.metric("linetoken_sink_writes_total", labels("channel", ch.ID, "result", "ok")); got != 2*(rotations+1) {
		t.Errorf("sink writes ok %v, want %d", got, 2*(rotations+1))
	}
}

// checkSinkJSON waits until the json sink holds the API object of tok.
func checkSinkJSON(t *testing.T, path, tok, id string) {
	t.Helper()
	testkit.Eventually(t, waitLimit, "the json sink to hold the token", func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		var tr tokenReply
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		return dec.Decode(&tr) == nil && tr.AccessToken == tok && tr.TokenType == "Bearer" && tr.Kind == "v2.1" &&
			tr.KeyID != nil && tr.ExpiresIn > 0 && tr.Expiry != ""
	})
}

func TestSinkFailureRetriedAndShown(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	dir := filepath.Join(t.TempDir(), "later")
	path := filepath.Join(dir, "token")
	r := startAgent(t, srv, newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21, agent.Sink{Path: path})}))
	tok := r.token(ch.ID, "")
	errs := labels("channel", ch.ID, "kind", "v2.1", "result", "error")
	testkit.Eventually(t, waitLimit, "failed sink writes counted and retried", func() bool {
		return r.metric("linetoken_sink_writes_total", errs) >= 3
	})
	code, st := r.readyz()
	if code != http.StatusServiceUnavailable || len(st.NotReady) != 1 || !slices.Contains(st.NotReady[0].StaleSinks, path) ||
		st.NotReady[0].Channel != ch.ID {
		t.Errorf("/readyz does not name the failing sink: %d %+v", code, st)
	}
	if !strings.Contains(r.logs.String(), "sink write failed") || !strings.Contains(r.logs.String(), path) {
		t.Errorf("the failure is not logged with its path:\n%s", r.logs)
	}
	// Tokens are served meanwhile.
	if got := r.token(ch.ID, ""); got.AccessToken != tok.AccessToken {
		t.Error("a failing sink changed the token served")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sinkHolds(t, path, tok.AccessToken)
	testkit.Eventually(t, waitLimit, "/readyz 200 once the sink is written", func() bool {
		code, _ := r.readyz()
		return code == http.StatusOK
	})
	if r.metric("linetoken_sink_writes_total", labels("channel", ch.ID, "result", "ok")) != 1 {
		t.Error("the successful write is not counted once")
	}
	if strings.Contains(r.logs.String(), tok.AccessToken) {
		t.Error("the access token shows in the log")
	}
}

func TestShutdownMemoryStoreRevokesAndRemovesSinks(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	dir := t.TempDir()
	v21Sink, slSink := filepath.Join(dir, "v21"), filepath.Join(dir, "sl")
	r := startAgent(t, srv, newConfig(t, srv, []agent.Channel{
		chanCfg(ch, oauth.KindV21, agent.Sink{Path: v21Sink}),
		chanCfg(ch, oauth.KindShortLived, agent.Sink{Path: slSink}),
	}))
	v21 := r.token(ch.ID, "?kind=v2.1")
	sl := r.token(ch.ID, "?kind=short-lived")
	sinkHolds(t, v21Sink, v21.AccessToken)
	sinkHolds(t, slSink, sl.AccessToken)
	if err := r.stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if n := srv.ActiveTokens(ch.ID); n != 0 {
		t.Errorf("%d v2.1 tokens left active at the fake", n)
	}
	if _, ok := srv.Lookup(sl.AccessToken); ok {
		t.Error("the short-lived token was not revoked")
	}
	assertGone(t, v21Sink) // their tokens were revoked
	assertGone(t, slSink)
	// The listener is closed.
	if _, err := r.try("GET", "/healthz", ""); err == nil {
		t.Error("the agent still answers after Run returned")
	}
}

func TestShutdownSharedFileStoreKeepsSink(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	dir := t.TempDir()
	sink := filepath.Join(dir, "token")
	cfg := newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21, agent.Sink{Path: sink})}, func(c *agent.Config) {
		c.Store.File = filepath.Join(testkit.MemDir(t), "tokens.json")
	})
	r := startAgent(t, srv, cfg)
	tok := r.token(ch.ID, "")
	sinkHolds(t, sink, tok.AccessToken)
	if err := r.stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if _, ok := srv.Lookup(tok.AccessToken); !ok {
		t.Error("a token in a shared store was revoked at exit")
	}
	if got := readFile(t, sink); got != tok.AccessToken {
		t.Error("the sink of a shared token changed at exit")
	}
	// A second agent on the same store serves the same token, issuing none.
	r2 := startAgent(t, srv, cfg)
	if got := r2.token(ch.ID, ""); got.AccessToken != tok.AccessToken || srv.IssueCount(oauthtest.KindV21) != 1 {
		t.Errorf("the restarted agent did not reuse the stored token (issued %d)", srv.IssueCount(oauthtest.KindV21))
	}
}
