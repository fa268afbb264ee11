package agent_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// readFile reads a sink, failing t.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sinkHolds waits until the sink file holds want.
func sinkHolds(t *testing.T, path, want string) {
	t.Helper()
	testkit.Eventually(t, waitLimit, "the sink to hold the served token", func() bool {
		b, err := os.ReadFile(path)
		return err == nil && string(b) == want
	})
}

// rotationFixture is an agent serving one v2.1 channel of 24h tokens
// refreshed 2h before expiry, with a raw sink.
type rotationFixture struct {
	*running
	srv  *oauthtest.Server
	ch   oauthtest.Channel
	sink string
}

func newRotationFixture(t *testing.T) *rotationFixture {
	t.Helper()
	srv := newFake(t)
	ch := srv.NewChannel(t)
	sink := filepath.Join(t.TempDir(), "token")
	cc := chanCfg(ch, oauth.KindV21, agent.Sink{Path: sink})
	cc.RefreshBefore = 2 * time.Hour
	r := startAgent(t, srv, newConfig(t, srv, []agent.Channel{cc}))
	return &rotationFixture{running: r, srv: srv, ch: ch, sink: sink}
}

func TestRotationByExpiry(t *testing.T) {
	f := newRotationFixture(t)
	t1 := f.token(f.ch.ID, "")
	sinkHolds(t, f.sink, t1.AccessToken)
	before, _ := os.Stat(f.sink)

	f.srv.Advance(22*time.Hour + time.Minute) // inside the refresh window
	var t2 tokenReply
	testkit.Eventually(t, waitLimit, "a new token served", func() bool {
		t2 = f.token(f.ch.ID, "")
		return t2.AccessToken != t1.AccessToken
	})
	sinkHolds(t, f.sink, t2.AccessToken)
	after, _ := os.Stat(f.sink)
	if os.SameFile(before, after) {
		t.Error("the sink was rewritten in place, not replaced")
	}
	if *t2.KeyID == *t1.KeyID {
		t.Error("the new token has the old key_id")
	}
	if got := f.srv.IssueCount(oauthtest.KindV21); got != 2 {
		t.Errorf("the fake issued %d tokens, want 2", got)
	}
	if got := f.metric("linetoken_token_refreshes_total", labels("channel", f.ch.ID, "result", "issued")); got != 2 {
		t.Errorf("refreshes issued %v, want 2", got)
	}
	info, _ := f.srv.Lookup(t2.AccessToken)
	if got := f.metric("linetoken_token_expiry_timestamp_seconds", labels("channel", f.ch.ID)); got != float64(info.Expiry.Unix()) {
		t.Errorf("expiry metric %v, want %d", got, info.Expiry.Unix())
	}
	// The old token, with ~2h left, is revoked after the grace (10m).
	if _, ok := f.srv.Lookup(t1.AccessToken); !ok {
		t.Fatal("the old token was revoked before the grace")
	}
	f.srv.Advance(11 * time.Minute)
	testkit.Eventually(t, waitLimit, "the old token revoked at the fake", func() bool {
		_, ok := f.srv.Lookup(t1.AccessToken)
		return !ok
	})
	if n := f.srv.Stats().Revoked[oauthtest.KindV21]; n != 1 {
		t.Errorf("revoked %d v2.1 tokens, want 1", n)
	}
	if f.srv.ActiveTokens(f.ch.ID) != 1 {
		t.Errorf("active tokens %d, want 1", f.srv.ActiveTokens(f.ch.ID))
	}
}

func TestReadyzPastExpiryAndBack(t *testing.T) {
	f := newRotationFixture(t)
	t1 := f.token(f.ch.ID, "")
	testkit.Eventually(t, waitLimit, "/readyz 200", func() bool { code, _ := f.readyz(); return code == http.StatusOK })

	f.srv.InjectFault(100000, oauthtest.Fault{Path: v21Issue, Status: http.StatusInternalServerError, Body: `{"message":"Internal Server Error"}`})
	f.srv.Advance(24*time.Hour + time.Minute)
	testkit.Eventually(t, waitLimit, "/readyz 503 naming the channel and line_unreachable", func() bool {
		code, st := f.readyz()
		return code == http.StatusServiceUnavailable && st.Status == "not_ready" && len(st.NotReady) == 1 &&
			st.NotReady[0].Channel == f.ch.ID && st.NotReady[0].Kind == "v2.1" && st.NotReady[0].Cause == "line_unreachable"
	})
	wantUnavailable(t, f.running, f.ch.ID, "line_unreachable", t1.AccessToken)
	if f.metric("linetoken_token_refreshes_total", labels("channel", f.ch.ID, "result", "failed")) < 1 {
		t.Error("no failed refresh counted")
	}
	if f.metric("linetoken_token_ready", labels("channel", f.ch.ID)) != 0 {
		t.Error("linetoken_token_ready is not 0")
	}

	// LINE recovers: past the source's backoff (at most 5 minutes) a
	// refresh succeeds.
	f.srv.ClearFaults()
	f.srv.Advance(6 * time.Minute)
	testkit.Eventually(t, waitLimit, "/readyz 200 again", func() bool { code, _ := f.readyz(); return code == http.StatusOK })
	t2 := f.token(f.ch.ID, "")
	if t2.AccessToken == t1.AccessToken {
		t.Fatal("the expired token is served")
	}
	sinkHolds(t, f.sink, t2.AccessToken)
}

func TestReadyzLineRefused(t *testing.T) {
	f := newRotationFixture(t)
	f.token(f.ch.ID, "")
	f.srv.UnregisterKey(f.ch.KeyID)
	f.srv.Advance(24*time.Hour + time.Minute)
	testkit.Eventually(t, waitLimit, "/readyz 503 naming line_refused", func() bool {
		code, st := f.readyz()
		return code == http.StatusServiceUnavailable && len(st.NotReady) == 1 && st.NotReady[0].Channel == f.ch.ID &&
			st.NotReady[0].Cause == "line_refused"
	})
}

func TestInvalidate(t *testing.T) {
	f := newRotationFixture(t)
	t1 := f.token(f.ch.ID, "")
	sinkHolds(t, f.sink, t1.AccessToken)
	inode1, _ := os.Stat(f.sink)

	// LINE refuses t1 (revoked): the report drops it.
	revokeAndReport(t, f.running, f.srv, f.ch.ID, t1.AccessToken)
	t2 := f.token(f.ch.ID, "")
	if t2.AccessToken == t1.AccessToken {
		t.Fatal("the refused token is still served")
	}
	sinkHolds(t, f.sink, t2.AccessToken)
	if inode2, _ := os.Stat(f.sink); os.SameFile(inode1, inode2) {
		t.Error("the sink was not replaced")
	}
	if got := f.metric("linetoken_token_invalidations_total", labels("channel", f.ch.ID, "kind", "v2.1")); got != 1 {
		t.Errorf("invalidations %v, want 1", got)
	}

	// A report of a token LINE still accepts keeps it.
	f.srv.Advance(31 * time.Second)
	f.invalidate(f.ch.ID, t2.AccessToken)
	if got := f.token(f.ch.ID, ""); got.AccessToken != t2.AccessToken {
		t.Fatal("a token LINE accepts was dropped")
	}
	// A report of an old token is ignored: the token served, the issues
	// and the invalidations count stay as they were.
	issued := f.srv.IssueCount(oauthtest.KindV21)
	f.invalidate(f.ch.ID, t1.AccessToken)
	if got := f.token(f.ch.ID, ""); got.AccessToken != t2.AccessToken {
		t.Fatal("a report of an old token changed the token served")
	}
	if got := f.srv.IssueCount(oauthtest.KindV21); got != issued {
		t.Errorf("a report of an old token made %d issues", got-issued)
	}
	if got := f.metric("linetoken_token_invalidations_total", labels("channel", f.ch.ID, "kind", "v2.1")); got != 1 {
		t.Errorf("invalidations %v after a report of an old token, want still 1", got)
	}

	// The report LINE refuted holds back further verifies for 5s only,
	// not 30s: 6s later, a report of the token, now revoked, drops it.
	f.srv.Advance(6 * time.Second)
	revokeAndReport(t, f.running, f.srv, f.ch.ID, t2.AccessToken)
	t3 := f.token(f.ch.ID, "")
	if t3.AccessToken == t2.AccessToken || f.srv.IssueCount(oauthtest.KindV21) != issued+1 {
		t.Fatal("a true report 6s after a false one was ignored")
	}
	sinkHolds(t, f.sink, t3.AccessToken)

	// Two drops are at least 30s apart: 6s after the last (past the 5s
	// verify limit), a refused token is kept.
	f.srv.Advance(6 * time.Second)
	revokeAndReport(t, f.running, f.srv, f.ch.ID, t3.AccessToken)
	if got := f.token(f.ch.ID, ""); got.AccessToken != t3.AccessToken || f.srv.IssueCount(oauthtest.KindV21) != issued+1 {
		t.Fatal("a second drop within 30s of the last was not refused")
	}
	// 31s after the last drop it is accepted again.
	f.srv.Advance(25 * time.Second)
	f.invalidate(f.ch.ID, t3.AccessToken)
	t4 := f.token(f.ch.ID, "")
	if t4.AccessToken == t3.AccessToken || f.srv.IssueCount(oauthtest.KindV21) != issued+2 {
		t.Fatal("an invalidation 31s after the last drop was ignored")
	}
	sinkHolds(t, f.sink, t4.AccessToken)
	if got := f.metric("linetoken_token_invalidations_total", labels("channel", f.ch.ID)); got != 3 {
		t.Errorf("invalidations %v, want 3", got)
	}
}

// TestHostileCaller: 1,000 GET/invalidate loops, LINE's verify unreachable
// (so every report would drop the token), cause at most one
// invalidation-driven refresh per 30s of the agent's clock.
func TestHostileCaller(t *testing.T) {
	f := newRotationFixture(t)
	f.token(f.ch.ID, "")
	f.srv.InjectFault(100000, oauthtest.Fault{Path: "/oauth2/v2.1/verify", Status: http.StatusInternalServerError, Body: `{}`})
	const loops, workers = 1000, 8
	var next atomic.Int64
	var advanced sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				n := next.Add(1)
				if n > loops || t.Failed() {
					return
				}
				if n == loops/2 {
					advanced.Do(func() { f.srv.Advance(31 * time.Second) })
				}
				if err := hostileLoop(f.running, f.ch.ID); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	// The agent's clock moved took plus 31s: at most two 30s windows
	// began, unless the loops took more than 29s of real time.
	windows := 1 + int((took+31*time.Second)/(30*time.Second))
	// Each drop is followed by one issue (the keeper refreshes at once).
	var issued, dropped int
	testkit.Eventually(t, waitLimit, "one issue per invalidation", func() bool {
		issued = f.srv.IssueCount(oauthtest.KindV21) - 1
		dropped = int(f.metric("linetoken_token_invalidations_total", labels("channel", f.ch.ID)))
		return issued == dropped
	})
	t.Logf("%d loops in %v: %d invalidation-driven issues (at most %d)", loops, took, issued, windows)
	if issued < 1 || issued > windows {
		t.Errorf("%d invalidation-driven issues, want 1 to %d", issued, windows)
	}
	if n := f.srv.ActiveTokens(f.ch.ID); n > 30 {
		t.Errorf("%d active v2.1 tokens at the fake: over the cap", n)
	}
}

// hostileLoop GETs the channel's token and reports it refused.
func hostileLoop(r *running, id string) error {
	rep, err := r.try("GET", "/v1/channels/"+id+"/token", "", agent.HeaderRequest, "1")
	if err != nil || rep.status != http.StatusOK {
		return fmt.Errorf("GET token: %v %d %s", err, rep.status, rep.body)
	}
	var tr tokenReply
	if err := json.Unmarshal(rep.body, &tr); err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"access_token": tr.AccessToken})
	rep, err = r.try("POST", "/v1/channels/"+id+"/token/invalidate", string(body), agent.HeaderRequest, "1")
	if err != nil || rep.status != http.StatusNoContent {
		return fmt.Errorf("invalidate: %v %d %s", err, rep.status, rep.body)
	}
	return nil
}
