package agent_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/oauth"
)

// TestProxyTokenEndpointSpellings: a token endpoint spelled with an empty
// segment or a path parameter, which a server in front of LINE may
// normalise to the token endpoint (nginx merges slashes; servlet
// containers drop ";..."), is refused like the plain spelling, and
// nothing reaches the fake.
func TestProxyTokenEndpointSpellings(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	r := startProxy(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)})
	const mark = "X-Review-Mark"
	for _, path := range []string{
		"//oauth2/v2.1/token",
		"/v2//oauth/accessToken",
		"//v2/oauth/revoke",
		"/oauth2;x/v2.1/token",
		"/v2/oauth;x/accessToken",
		"/OAuth2/v3/token",
	} {
		rep := r.via("POST", path, "grant_type=client_credentials", "Authorization", bearer,
			"Content-Type", "application/x-www-form-urlencoded", mark, "1")
		if rep.status != http.StatusForbidden || !strings.Contains(string(rep.body), `"token_endpoint_refused"`) {
			t.Errorf("%s: %d %s, want 403 token_endpoint_refused", path, rep.status, rep.body)
		}
	}
	for _, q := range srv.Requests() {
		if q.Header.Get(mark) != "" {
			t.Errorf("%s %s reached the fake", q.Method, q.Path)
		}
	}
	// Ordinary paths with the same words further in still pass.
	if rep := r.via("GET", "/v2/bot/info", "", "Authorization", bearer); rep.status != 200 {
		t.Errorf("bot info: %d %s", rep.status, rep.body)
	}
}
