package agent_test

import (
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/internal/testredis"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// TestFleetRotatesOncePerExpiry runs three agents on one real redis-server
// and the fake's clock: every rotation by expiry, however many agents see
// their token go stale at once, is one issue at LINE, and all three then
// serve the same token. (The binary fleet test, on real time, rotates by
// invalidation; only an in-process agent can follow the fake's clock.)
func TestFleetRotatesOncePerExpiry(t *testing.T) {
	rs := testredis.Start(t)
	srv := newFake(t)
	ch := srv.NewChannel(t)
	cc := chanCfg(ch, oauth.KindV21)
	cc.RefreshBefore = 2 * time.Hour
	fleet := make([]*running, 3)
	for i := range fleet {
		fleet[i] = startAgent(t, srv, newConfig(t, srv, []agent.Channel{cc}, func(c *agent.Config) {
			c.Store.Redis = "redis://" + rs.Addr() + "/0"
		}))
	}
	// sameToken waits until every agent serves one token other than old,
	// and returns it.
	sameToken := func(old string) string {
		t.Helper()
		var tok string
		testkit.Eventually(t, waitLimit, "all three agents to serve one new token", func() bool {
			tok = fleet[0].token(ch.ID, "").AccessToken
			for _, r := range fleet[1:] {
				if r.token(ch.ID, "").AccessToken != tok {
					return false
				}
			}
			return tok != old
		})
		return tok
	}
	tok := sameToken("")
	if got := srv.IssueCount(oauthtest.KindV21); got != 1 {
		t.Fatalf("three agents starting on one store issued %d tokens, want 1", got)
	}
	for rotation := 2; rotation <= 3; rotation++ {
		srv.Advance(22*time.Hour + time.Minute) // the token is stale for all three at once
		tok = sameToken(tok)
		if got := srv.IssueCount(oauthtest.KindV21); got != rotation {
			t.Fatalf("after rotation %d the fake issued %d tokens, want %d: one per rotation", rotation, got, rotation)
		}
		issued := 0.0
		for _, r := range fleet {
			issued += r.metric("linetoken_token_refreshes_total", labels("channel", ch.ID, "kind", "v2.1", "result", "issued"))
		}
		if issued != float64(rotation) {
			t.Errorf("the agents' refreshes_total{result=issued} add up to %v, want %d", issued, rotation)
		}
	}
}

// TestFleetProxyHealsOnce: three agents' proxies share one redis-server;
// LINE revokes the token they all send. Every agent's next push heals
// its 401 and succeeds, with one issue at LINE for the whole fleet.
func TestFleetProxyHealsOnce(t *testing.T) {
	rs := testredis.Start(t)
	srv := newFake(t)
	ch := srv.NewChannel(t)
	fleet := make([]*running, 3)
	for i := range fleet {
		fleet[i] = startProxy(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}, func(c *agent.Config) {
			c.Store.Redis = "redis://" + rs.Addr() + "/0"
		})
	}
	old := fleet[0].token(ch.ID, "").AccessToken
	for _, r := range fleet {
		if got := r.token(ch.ID, "").AccessToken; got != old {
			t.Fatal("the agents do not share one token")
		}
	}
	issued := srv.IssueCount(oauthtest.KindV21)
	if err := srv.Client(t, ch.ID).RevokeToken(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	for i, r := range fleet {
		if rep := r.push(); rep.status != 200 {
			t.Errorf("agent %d: push after the revocation: %d %s", i, rep.status, rep.body)
		}
	}
	if got := srv.IssueCount(oauthtest.KindV21) - issued; got != 1 {
		t.Errorf("the fleet issued %d tokens after the revocation, want 1", got)
	}
	if n := len(srv.Sends()); n != len(fleet) {
		t.Errorf("%d sends accepted, want %d", n, len(fleet))
	}
}
